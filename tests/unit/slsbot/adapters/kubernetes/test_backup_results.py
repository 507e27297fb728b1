"""What a backup job's pod writes on a cluster: its result added to the schedule's status (the other kinds' results
kept), written again from a fresh read when another job's write came first (409), and an Event. The API is an
in-memory stand-in that keeps one object and refuses a write made at an old resourceVersion, as the API server does."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from slsbot.adapters.kubernetes.backup_results import KubernetesBackupReporter
from slsbot.api import BackupSchedule
from slsbot.api.backup import BackupJobKind, JobResult
from slsbot.domain.errors import ConflictError, PermissionDenied

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BODY = {
    "apiVersion": "slsbot.io/v1alpha1",
    "kind": "BackupSchedule",
    "metadata": {"name": "hourly", "namespace": "ops", "uid": "u-1", "resourceVersion": "1"},
    "spec": {"repository": "/srv/restic", "passwordSecretRef": {"name": "restic", "key": "password"}},
}


class OneObjectApi:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = copy.deepcopy(body)
        self.events: list[dict[str, Any]] = []
        self.before_next_patch: dict[str, Any] | None = None  # another writer's status, landing first
        self.refuse: Exception | None = None

    def get(self, path: str) -> dict[str, Any]:
        return copy.deepcopy(self.body)

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert path.endswith("/backupschedules/hourly/status")
        if self.refuse is not None:
            raise self.refuse
        if self.before_next_patch is not None:
            self.body["status"] = {**(self.body.get("status") or {}), **self.before_next_patch}
            self.body["metadata"]["resourceVersion"] = str(int(self.body["metadata"]["resourceVersion"]) + 1)
            self.before_next_patch = None
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != self.body["metadata"]["resourceVersion"]:
            raise ConflictError("the object has been modified")
        self.body["status"] = body["status"]
        self.body["metadata"]["resourceVersion"] = str(int(self.body["metadata"]["resourceVersion"]) + 1)
        return self.body

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert path == "/api/v1/namespaces/ops/events"
        self.events.append(body)
        return body


def result(outcome: str, message: str) -> JobResult:
    return JobResult(started_at=T0, duration_seconds=1.0, outcome=outcome, message=message)


def reporter(api: OneObjectApi) -> KubernetesBackupReporter:
    return KubernetesBackupReporter(api, BackupSchedule.model_validate(BODY), clock=lambda: T0)  # type: ignore[arg-type]


def test_a_result_is_added_to_the_status_again_after_another_jobs_write_came_first() -> None:
    api = OneObjectApi(BODY)
    drill = result("Failed", "orders differ").model_dump(mode="json", by_alias=True, exclude_none=True)
    api.before_next_patch = {"lastDrill": drill}
    reporter(api)(BackupJobKind.BACKUP, result("Succeeded", "1 snapshots"))
    status = api.body["status"]
    assert status["lastBackup"]["outcome"] == "Succeeded"
    assert status["lastDrill"]["message"] == "orders differ"  # not lost to the race
    ready = status["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "DrillFailed")
    assert [(e["type"], e["reason"], e["involvedObject"]["uid"]) for e in api.events] == [
        ("Normal", "BackupSucceeded", "u-1")
    ]


def test_a_result_that_cannot_be_written_is_an_error_and_no_event() -> None:
    api = OneObjectApi(BODY)
    api.refuse = PermissionDenied("PATCH .../status: 403: forbidden")
    report = reporter(api)
    report(BackupJobKind.CHECK, result("Failed", "repository damaged"))
    assert report.error is not None and "403" in report.error and "ops/hourly" in report.error
    assert api.events == [] and "status" not in api.body
