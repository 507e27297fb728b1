"""A BackupSchedule's status under ``slsbot up``: a JSON file per schedule in the state folder
(``<state_dir>/backups/<namespace>/<name>/status.json``), written aside and renamed, so the newest result of each job
survives a restart of the supervisor and the next due job is computed from it (``domain.backup_plan.due_jobs``).
On a cluster the same ``BackupScheduleStatus`` is the object's ``status``."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from slsbot.api.backup import BackupJobKind, BackupScheduleStatus, JobOutcome, JobResult
from slsbot.api.base import Condition, ConditionStatus

FIELDS = {
    BackupJobKind.BACKUP: "last_backup",
    BackupJobKind.CHECK: "last_check",
    BackupJobKind.PRUNE: "last_prune",
    BackupJobKind.DRILL: "last_drill",
}


class BackupStatusFile:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "status.json"

    def read(self) -> tuple[BackupScheduleStatus, datetime | None]:
        """The status and when the schedule was first seen (None: never)."""
        try:
            document = json.loads(self.path.read_text())
            return BackupScheduleStatus.model_validate(document["status"]), datetime.fromisoformat(document["since"])
        except (OSError, ValueError, KeyError, TypeError, ValidationError):
            return BackupScheduleStatus(), None

    def write(self, status: BackupScheduleStatus, since: datetime) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name("status.json.partial")
        partial.write_text(json.dumps({"since": since.isoformat(), "status": status.to_wire()}, indent=2))
        os.replace(partial, self.path)


def with_result(status: BackupScheduleStatus, job: BackupJobKind, result: JobResult) -> BackupScheduleStatus:
    return status.model_copy(update={FIELDS[BackupJobKind(job)]: result})


def last_runs(status: BackupScheduleStatus) -> dict[BackupJobKind, datetime | None]:
    return {
        job: (result.started_at if (result := getattr(status, name)) is not None else None)
        for job, name in FIELDS.items()
    }


def failed_jobs(status: BackupScheduleStatus) -> dict[BackupJobKind, str]:
    """The job kinds whose newest run failed, with its message."""
    return {
        job: result.message
        for job, name in FIELDS.items()
        if (result := getattr(status, name)) is not None and result.outcome == JobOutcome.FAILED
    }


def with_ready(status: BackupScheduleStatus, now: datetime) -> BackupScheduleStatus:
    """Ready=True while the newest run of every job kind that ran succeeded; else False naming the failed kinds."""
    failed = [
        job
        for job, name in FIELDS.items()
        if (r := getattr(status, name)) is not None and r.outcome == JobOutcome.FAILED
    ]
    reason = "".join(job.value.capitalize() for job in failed) + "Failed" if failed else "JobsSucceeded"
    message = "; ".join(f"{job.value}: {getattr(status, FIELDS[job]).message}" for job in failed)[:32768]
    ready = ConditionStatus.FALSE if failed else ConditionStatus.TRUE
    previous = next((c for c in status.conditions if c.type == "Ready"), None)
    since = previous.last_transition_time if previous is not None and previous.status == ready else now
    condition = Condition(type="Ready", status=ready, reason=reason, message=message, last_transition_time=since)
    return status.model_copy(update={"phase": "Failing" if failed else "Ready", "conditions": [condition]})
