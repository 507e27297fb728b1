"""A BackupSchedule's run on a cluster reports its result, as ``slsbot up``'s ``JobReporter`` does locally: the
CronJob's pod (``slsbot backup run --kubernetes``, with the ServiceAccount ``backup_manifests.build_backup_rbac``
grants) writes the run into the schedule's ``status`` (the newest result of that job kind, and the ``Ready``
condition over all kinds: ``adapters.backup_status``) and records a Kubernetes Event on the schedule
(``BackupSucceeded``, ``RestoreDrillFailed``, ...).

The incident and the metrics are the operator's: it reads the status this writes (``interfaces.operator_steps.
backup_results_once``). The pod needs no right on Incidents, nor the notification receivers' Secrets.

Two jobs of one schedule may end at the same time (each kind has its own CronJob): the status is read, changed and
written with the ``resourceVersion`` it was read at, so a write that raced another is refused (409) and done again
from a fresh read; the other kind's result is never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from slsbot.adapters.backup_status import with_ready, with_result
from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.adapters.kubernetes.events import KubernetesEventRecorder
from slsbot.api import GROUP, VERSION, BackupSchedule
from slsbot.api.backup import BackupJobKind, BackupScheduleStatus, JobOutcome, JobResult
from slsbot.domain.backup_plan import event_reason
from slsbot.domain.errors import ConflictError, SlsbotError

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class BackupEvent:
    type: str
    reason: str
    message: str


class KubernetesBackupReporter:
    """The ``report`` of ``services.backups.BackupService`` in a CronJob's pod. ``error`` holds why the last report
    could not be written (None: written), so the command can exit non-zero: a result nobody can see is a failure."""

    def __init__(
        self,
        api: KubernetesApi,
        schedule: BackupSchedule,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._namespace = schedule.namespace
        self._name = schedule.name
        self._events = KubernetesEventRecorder(api, clock=clock)
        self._clock = clock
        self.error: str | None = None
        self._key = (self._namespace, self._name)

    @property
    def path(self) -> str:
        plural = BackupSchedule.kind_info.plural
        return resource_path(GROUP, VERSION, plural, namespace=self._namespace, name=self._name)

    def __call__(self, job: BackupJobKind, result: JobResult) -> None:
        self.error = None
        try:
            body = self._write_status(BackupJobKind(job), result)
        except SlsbotError as exc:
            self.error = f"the result could not be written to BackupSchedule {self._namespace}/{self._name}: {exc}"
            log.error("%s", self.error)
            return
        succeeded = result.outcome == JobOutcome.SUCCEEDED
        event = BackupEvent(
            "Normal" if succeeded else "Warning", event_reason(job, succeeded=succeeded), result.message[:1024]
        )
        if not self._events.record(body, [event]):
            where = f"{self._namespace}/{self._name}"
            self.error = f"the Event {event.reason} could not be posted on BackupSchedule {where}"

    def _write_status(self, job: BackupJobKind, result: JobResult) -> dict[str, Any]:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            body = self._api.get(self.path)
            status = with_ready(with_result(_status_of(body), job, result), self._clock())
            meta = body.get("metadata") or {}
            patch: dict[str, Any] = {"status": status.to_wire()}
            if meta.get("resourceVersion"):
                patch["metadata"] = {"resourceVersion": meta["resourceVersion"]}  # refused (409) if it moved on
            try:
                self._api.patch(f"{self.path}/status", patch)
                return body
            except ConflictError:
                if attempt == WRITE_ATTEMPTS:
                    raise
                log.info("BackupSchedule %s/%s changed meanwhile; writing its status again", *self._key)
        raise AssertionError("unreachable")


def _status_of(body: dict[str, Any]) -> BackupScheduleStatus:
    """The schedule's status as written so far; an unreadable one (written by another version) starts afresh."""
    try:
        return BackupScheduleStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return BackupScheduleStatus()
