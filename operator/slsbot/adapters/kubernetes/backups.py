"""``KubernetesBackupCronJobs``: a BackupSchedule's CronJobs on the cluster, as ``backup_manifests`` builds them.

``reconcile(schedule)`` compares what is with what should be and takes the steps: each of the four CronJobs is
created when missing and patched when its spec or labels differ from the built one; a CronJob labelled with the
schedule that is no longer built is deleted. The backup CronJob mounts the state claims of the Strategies the
schedule selects, read from the API at each reconcile (a Strategy added later is picked up at the next one). A
Strategy whose runtime keeps its state in an ``emptyDir`` has no claim to mount and is left out. The jobs'
ServiceAccount, Role and RoleBinding (``build_backup_rbac``, one of each per namespace) are created first when missing.
"""

from __future__ import annotations

import logging
from typing import Any

from slsbot.adapters.kubernetes.backup_manifests import (
    LABEL_SCHEDULE,
    RBAC_GROUP,
    BackedUpRuntime,
    build_backup_cronjobs,
    build_backup_rbac,
)
from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.adapters.kubernetes.manifests import runtime_object_name
from slsbot.adapters.kubernetes.objects import InvalidObjectError, parse_object
from slsbot.api import GROUP, VERSION, BackupSchedule, Strategy
from slsbot.domain.backup_plan import selects

log = logging.getLogger(__name__)


def _cronjobs(namespace: str, name: str | None = None) -> str:
    return resource_path("batch", "v1", "cronjobs", namespace=namespace, name=name)


class KubernetesBackupCronJobs:
    def __init__(self, api: KubernetesApi, *, image: str) -> None:
        self._api = api
        self._image = image

    def selected_runtimes(self, schedule: BackupSchedule) -> list[BackedUpRuntime]:
        found = []
        for body in self._api.list(resource_path(GROUP, VERSION, "strategies", namespace=schedule.namespace)):
            try:
                strategy = parse_object(Strategy, body)
            except InvalidObjectError:
                continue  # a Strategy the API refuses has no runtime, so no state
            account = strategy.spec.account_ref.name
            if selects(schedule.spec.selector, labels=strategy.metadata.labels, account=account):
                found.append(BackedUpRuntime(strategy.name, account, runtime_object_name(strategy.name)))
        return found

    def reconcile(self, schedule: BackupSchedule) -> list[str]:
        """Apply the schedule's CronJobs; returns what changed, e.g. ``["created slsbot-backup-hourly-backup"]``."""
        namespace = schedule.namespace
        runtimes = [r for r in self.selected_runtimes(schedule) if self._has_claim(namespace, r.claim)]
        wanted = build_backup_cronjobs(schedule, image=self._image, runtimes=runtimes)
        changes = self._apply_rbac(namespace)
        for manifest in wanted:
            name = manifest["metadata"]["name"]
            current = self._api.find(_cronjobs(namespace, name))
            if current is None:
                self._api.create(_cronjobs(namespace), manifest)
                changes.append(f"created {name}")
            elif _differs(current, manifest):
                self._api.patch(
                    _cronjobs(namespace, name),
                    {"metadata": {"labels": manifest["metadata"]["labels"]}, "spec": manifest["spec"]},
                )
                changes.append(f"updated {name}")
        built = {m["metadata"]["name"] for m in wanted}
        for body in self._api.list(_cronjobs(namespace), label_selector={LABEL_SCHEDULE: schedule.name}):
            name = (body.get("metadata") or {}).get("name")
            if name and name not in built:
                self._api.delete(_cronjobs(namespace, name), propagation="Background")
                changes.append(f"deleted {name}")
        if changes:
            log.info("BackupSchedule %s/%s: %s", namespace, schedule.name, ", ".join(changes))
        return changes

    def _apply_rbac(self, namespace: str) -> list[str]:
        """The jobs' ServiceAccount, Role and RoleBinding: created when missing, the Role's rules patched when they
        differ (a newer operator may grant another set)."""
        changes = []
        for manifest in build_backup_rbac(namespace):
            group, plural = _RBAC_PATHS[manifest["kind"]]
            name = manifest["metadata"]["name"]
            path = resource_path(group, "v1", plural, namespace=namespace, name=name)
            current = self._api.find(path)
            if current is None:
                self._api.create(resource_path(group, "v1", plural, namespace=namespace), manifest)
                changes.append(f"created {manifest['kind']} {name}")
            elif manifest["kind"] == "Role" and current.get("rules") != manifest["rules"]:
                self._api.patch(path, {"rules": manifest["rules"]})
                changes.append(f"updated Role {name}")
        return changes

    def _has_claim(self, namespace: str, claim: str) -> bool:
        path = resource_path("", "v1", "persistentvolumeclaims", namespace=namespace, name=claim)
        return self._api.find_metadata(path) is not None


_RBAC_PATHS = {
    "ServiceAccount": ("", "serviceaccounts"),
    "Role": (RBAC_GROUP, "roles"),
    "RoleBinding": (RBAC_GROUP, "rolebindings"),
}


def _differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    labels = (current.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in wanted["metadata"]["labels"].items()):
        return True
    return not _contains(current.get("spec") or {}, wanted["spec"])


def _contains(have: Any, want: Any) -> bool:
    """Whether ``have`` holds everything ``want`` says (the API server adds defaults: those are not a difference)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_contains(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(map(_contains, have, want))
    return have == want
