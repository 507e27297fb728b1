"""``slsbot restore --kubernetes``: put a Strategy's state back on a cluster (docs/concepts/backups.md, "Restore on a
cluster"). The steps, each observed before the next:

1. Read the Strategy, its state claim and the hold annotation; ``domain.restore_plan.restore_refusal`` says whether
   the restore may begin (the Strategy paused, not held by another restore, with a claim). Refused: nothing changed.
2. Hold it: the annotation ``slsbot.io/restore`` (the operator then takes no step on its runtime), then its
   Deployment scaled to 0 replicas; wait until no runtime pod is left (the claim is free, nothing writes the file).
3. Create the restore Job (``restore_manifests.build_restore_job``) and wait until it succeeded or failed.
4. Release: the Deployment back to 1 replica, the annotation removed. The runtime starts on the restored file (or the
   untouched one, when the Job refused) and reconciles with the exchange before it trades.

A wait that runs out before the Job ended leaves the hold in place (the Job may still be replacing the file): the
error says what to check and how to release by hand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.adapters.kubernetes.manifests import runtime_object_name, selector_labels
from slsbot.adapters.kubernetes.restore_manifests import build_restore_job
from slsbot.api import GROUP, VERSION, BackupSchedule, Strategy
from slsbot.domain.errors import NotFoundError, SlsbotError
from slsbot.domain.restore_plan import ANNOTATION_RESTORE, restore_hold, restore_refusal

log = logging.getLogger(__name__)


class ClusterRestoreRefused(SlsbotError):
    """The restore did not begin (the reason names the fix) or its Job failed; the state file is as it was."""


class ClusterRestoreStuck(SlsbotError):
    """A wait ran out while the runtime is held: the hold stays until a person checks and releases it."""


@dataclass(frozen=True, slots=True)
class ClusterRestoreOutcome:
    job: str
    snapshot: str


@dataclass
class KubernetesRestore:
    api: KubernetesApi
    image: str
    timeout: float = 600.0  # for each wait: the runtime to stop, the Job to end
    poll: float = 1.0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    say: Callable[[str], None] = lambda message: log.info("%s", message)

    def run(self, schedule: BackupSchedule, *, strategy: str, snapshot: str) -> ClusterRestoreOutcome:
        namespace = schedule.namespace
        body = self._strategy(namespace, strategy)
        meta = body.get("metadata") or {}
        refusal = restore_refusal(
            namespace=namespace,
            strategy=strategy,
            paused=bool((body.get("spec") or {}).get("paused")),
            deleting=bool(meta.get("deletionTimestamp")),
            hold=restore_hold(meta.get("annotations")),
            has_claim=self.api.find_metadata(self._path("", "persistentvolumeclaims", namespace, strategy)) is not None,
        )
        if refusal is not None:
            raise ClusterRestoreRefused(refusal)
        stamp = self.clock().strftime("%Y%m%dt%H%M%Sz")
        strategy_path = resource_path(GROUP, VERSION, Strategy.kind_info.plural, namespace=namespace, name=strategy)
        self.api.patch(strategy_path, {"metadata": {"annotations": {ANNOTATION_RESTORE: f"{snapshot}@{stamp}"}}})
        self.say(f"holding {namespace}/{strategy} ({ANNOTATION_RESTORE}); scaling its runtime to 0")
        deployment = self._path("apps", "deployments", namespace, strategy)
        released = False
        try:
            self._scale(deployment, 0)
            self._wait(
                lambda: self._stopped(namespace, strategy, deployment), "the runtime's pods to stop", strategy_path
            )
            job = build_restore_job(
                schedule,
                strategy=strategy,
                strategy_uid=str(meta.get("uid") or ""),
                snapshot=snapshot,
                image=self.image,
                stamp=stamp,
            )
            name = job["metadata"]["name"]
            self.api.create(resource_path("batch", "v1", "jobs", namespace=namespace), job)
            self.say(f"restore Job {name} created; waiting for it (kubectl logs -n {namespace} job/{name})")
            job_path = resource_path("batch", "v1", "jobs", namespace=namespace, name=name)
            outcome = self._wait(
                lambda: _job_outcome(self.api.find(job_path)), f"the restore Job {name} to end", strategy_path
            )
            self._release(strategy_path, deployment)
            released = True
        except ClusterRestoreStuck:
            raise
        except SlsbotError:
            if not released:  # before the Job ran, or it could not be created: nothing was replaced
                self._release(strategy_path, deployment)
            raise
        if outcome != "succeeded":
            raise ClusterRestoreRefused(
                f"the restore Job {name} failed; the state file is as it was (kubectl logs -n {namespace} job/{name} "
                "says why); the runtime was started again on it"
            )
        return ClusterRestoreOutcome(name, snapshot)

    # --- steps ----------------------------------------------------------------------------------------------------

    def _strategy(self, namespace: str, strategy: str) -> dict[str, Any]:
        path = resource_path(GROUP, VERSION, Strategy.kind_info.plural, namespace=namespace, name=strategy)
        try:
            return self.api.get(path)
        except NotFoundError:
            raise ClusterRestoreRefused(f"Strategy {namespace}/{strategy} does not exist") from None

    def _scale(self, deployment: str, replicas: int) -> None:
        try:
            self.api.patch(deployment, {"spec": {"replicas": replicas}})
        except NotFoundError:
            if replicas:  # no Deployment: the operator creates one when the hold goes
                log.info("no Deployment %s to scale up; the operator creates it", deployment)

    def _stopped(self, namespace: str, strategy: str, deployment: str) -> bool:
        pods = self.api.list(
            resource_path("", "v1", "pods", namespace=namespace), label_selector=selector_labels(strategy)
        )
        status = (self.api.find(deployment) or {}).get("status") or {}
        return not pods and not status.get("replicas")

    def _release(self, strategy_path: str, deployment: str) -> None:
        self._scale(deployment, 1)
        self.api.patch(strategy_path, {"metadata": {"annotations": {ANNOTATION_RESTORE: None}}})
        self.say("runtime scaled back to 1 and the hold removed: it reconciles with the exchange before it trades")

    def _wait(self, check: Callable[[], Any], what: str, strategy_path: str) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                namespace, strategy = strategy_path.split("/")[-3], strategy_path.split("/")[-1]
                raise ClusterRestoreStuck(
                    f"waited {self.timeout:.0f}s for {what}; Strategy {namespace}/{strategy} stays held "
                    f"({ANNOTATION_RESTORE}). Check its runtime's pods and the restore Job; once nothing runs, release "
                    f"it: kubectl scale deployment {runtime_object_name(strategy)} -n {namespace} --replicas=1 && "
                    f"kubectl annotate strategy {strategy} -n {namespace} {ANNOTATION_RESTORE}-"
                )
            time.sleep(self.poll)

    @staticmethod
    def _path(group: str, plural: str, namespace: str, strategy: str) -> str:
        return resource_path(group, "v1", plural, namespace=namespace, name=runtime_object_name(strategy))


def _job_outcome(job: dict[str, Any] | None) -> str | None:
    status = (job or {}).get("status") or {}
    if status.get("succeeded"):
        return "succeeded"
    if status.get("failed"):
        return "failed"
    return None
