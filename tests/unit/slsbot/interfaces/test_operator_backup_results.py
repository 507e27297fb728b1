"""The operator's step over a BackupSchedule's status (written by its CronJobs' pods): each new result counted once in
the metrics, the incident signals recorded on every call (so a kind that succeeded clears its incident), and a
deleted schedule's series dropped and its incidents cleared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from slsbot.adapters.control_metrics import ControlMetrics
from slsbot.api.backup import BackupScheduleStatus, JobResult
from slsbot.interfaces.operator_steps import OperatorContext, backup_results_once

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def context(metrics: ControlMetrics, recorded: list[Any]) -> OperatorContext:
    unused: Any = None  # the step reads no object and runs no runtime
    return OperatorContext(
        store=unused,
        backend=unused,
        events=unused,
        credentials=unused,
        clock=lambda: T0 + timedelta(minutes=5),
        backup_metrics=metrics.backups,
        record_backup_signals=lambda signals, now, ns, name: recorded.append((list(signals), now, ns, name)),
    )


def sample(metrics: ControlMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_new_result_is_counted_once_and_a_failure_is_an_incident_signal() -> None:
    metrics, recorded = ControlMetrics(CollectorRegistry()), []
    ctx = context(metrics, recorded)
    failed = JobResult(started_at=T0, duration_seconds=2.0, outcome="Failed", message="restic: unreachable")
    status = BackupScheduleStatus(last_backup=failed)
    backup_results_once(ctx, "ops", "hourly", status)
    backup_results_once(ctx, "ops", "hourly", status)  # the same result seen again (another event, the timer)
    where = {"namespace": "ops", "schedule": "hourly", "kind": "backup"}
    assert sample(metrics, "slsbot_backup_runs_total", **where, outcome="failed") == 1.0
    assert sample(metrics, "slsbot_backup_last_duration_seconds", **where) == 2.0
    assert sample(metrics, "slsbot_backup_last_success_timestamp_seconds", **where) is None
    assert [(len(s), ns, name) for s, _now, ns, name in recorded] == [(1, "ops", "hourly"), (1, "ops", "hourly")]
    assert recorded[0][0][0].cause == "BackupFailed:ops/hourly:backup"

    passed = JobResult(started_at=T0 + timedelta(hours=1), duration_seconds=3.0, outcome="Succeeded", size_bytes=512)
    drill = JobResult(started_at=T0, duration_seconds=9.0, outcome="Succeeded")
    backup_results_once(ctx, "ops", "hourly", BackupScheduleStatus(last_backup=passed, last_drill=drill))
    assert sample(metrics, "slsbot_backup_runs_total", **where, outcome="succeeded") == 1.0
    assert sample(metrics, "slsbot_backup_last_success_timestamp_seconds", **where) == passed.started_at.timestamp()
    assert sample(metrics, "slsbot_backup_last_size_bytes", namespace="ops", schedule="hourly") == 512
    assert sample(metrics, "slsbot_backup_drill_passed", namespace="ops", schedule="hourly") == 1
    assert recorded[-1][0] == []  # nothing failing: the call clears the backup's incident

    backup_results_once(ctx, "ops", "hourly", None)  # the schedule was deleted
    assert sample(metrics, "slsbot_backup_last_size_bytes", namespace="ops", schedule="hourly") is None
    assert sample(metrics, "slsbot_backup_runs_total", **where, outcome="succeeded") is None
    assert recorded[-1][0] == [] and ctx.backup_results_seen == {}
