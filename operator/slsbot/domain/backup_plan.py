"""Backups as pure decisions: which of a BackupSchedule's jobs are due and when to look again, which Strategies a
schedule covers, and a restore drill's verdict. No I/O: the service (``services.backups``) and the CronJob builder
(``adapters.kubernetes.backup_manifests``) act on what these return.

A job is due when its cron schedule fired after its last run (or, for a job that never ran, after the schedule was
first seen): one run catches up however many firings were missed, as a CronJob with ``concurrencyPolicy: Forbid``
and a missed-start deadline would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from slsbot.api.backup import (
    BackupJobKind,
    BackupScheduleSpec,
    BackupScheduleStatus,
    JobOutcome,
    JobResult,
    StrategySelector,
)
from slsbot.domain.incident_rules import IncidentSignal, backup_signal

#: Looked at again at least this often, so a changed schedule takes effect without waiting for the old one.
MAX_WAIT = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class KeepRules:
    """restic forget's keep rules; 0 leaves a rule out."""

    hourly: int = 24
    daily: int = 7
    weekly: int = 4
    monthly: int = 6

    def arguments(self) -> list[str]:
        pairs = (("hourly", self.hourly), ("daily", self.daily), ("weekly", self.weekly), ("monthly", self.monthly))
        return [f"--keep-{name}={count}" for name, count in pairs if count > 0]


@dataclass(frozen=True, slots=True)
class BackupResult:
    snapshot_id: str
    bytes_added: int  # new data this backup stored in the repository
    total_bytes: int  # what the backed-up files hold
    duration_seconds: float


def keep_rules(spec: BackupScheduleSpec) -> KeepRules:
    prune = spec.prune
    return KeepRules(prune.keep_hourly, prune.keep_daily, prune.keep_weekly, prune.keep_monthly)


def cron_of(spec: BackupScheduleSpec, job: BackupJobKind) -> str:
    return {
        BackupJobKind.BACKUP: spec.backup.schedule,
        BackupJobKind.CHECK: spec.check.schedule,
        BackupJobKind.PRUNE: spec.prune.schedule,
        BackupJobKind.DRILL: spec.restore_drill.schedule,
    }[BackupJobKind(job)]


def next_fire(cron: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``cron`` (UTC) fires."""
    fire: datetime = croniter(cron, after.astimezone(UTC)).get_next(datetime)
    return fire.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class DuePlan:
    due: tuple[BackupJobKind, ...]  # in the order to run them: backup before drill, prune before check
    look_again_at: datetime


#: Order of runs when several are due at once: a drill tests the newest backup, a check follows a prune.
RUN_ORDER = (BackupJobKind.BACKUP, BackupJobKind.PRUNE, BackupJobKind.CHECK, BackupJobKind.DRILL)


def due_jobs(
    spec: BackupScheduleSpec,
    last_runs: Mapping[BackupJobKind, datetime | None],
    *,
    since: datetime,
    now: datetime,
) -> DuePlan:
    """Which jobs are due at ``now``, and when the next one falls due. ``last_runs``: when each kind last started
    (None or absent: never); ``since``: when the schedule was first seen."""
    due: list[BackupJobKind] = []
    upcoming: list[datetime] = [now + MAX_WAIT]
    for job in RUN_ORDER:
        cron = cron_of(spec, job)
        last = last_runs.get(job) or since
        fire = next_fire(cron, last)
        if fire <= now:
            due.append(job)
            upcoming.append(next_fire(cron, now))
        else:
            upcoming.append(fire)
    return DuePlan(tuple(due), min(upcoming))


def selects(selector: StrategySelector, *, labels: Mapping[str, str], account: str | None) -> bool:
    """Whether a Strategy with these labels and account is covered by ``selector``."""
    if selector.account is not None and selector.account != account:
        return False
    return all(labels.get(key) == value for key, value in selector.match_labels.items())


@dataclass(frozen=True, slots=True)
class DrillVerdict:
    passed: bool
    differences: tuple[str, ...]  # what differed, one line each, naming the database and the table

    @property
    def message(self) -> str:
        return "restored data matches what was backed up" if self.passed else "; ".join(self.differences)


def compare_summaries(name: str, recorded: Mapping[str, Any], restored: Mapping[str, Any]) -> list[str]:
    """What differs between the summary recorded at snapshot time and the one recomputed from the restored copy."""
    differences: list[str] = []
    recorded_tables = recorded.get("tables") or {}
    restored_tables = restored.get("tables") or {}
    for table in sorted(set(recorded_tables) | set(restored_tables)):
        before, after = recorded_tables.get(table), restored_tables.get(table)
        if before is None or after is None:
            where = "restored copy" if after is None else "recorded summary"
            differences.append(f"{name}: table {table} is missing from the {where}")
        elif before.get("rows") != after.get("rows"):
            differences.append(f"{name}: {table} has {after.get('rows')} rows, {before.get('rows')} were backed up")
        elif before.get("digest") != after.get("digest"):
            differences.append(f"{name}: {table} has the same {after.get('rows')} rows count but different contents")
    if recorded.get("lastEquity") != restored.get("lastEquity"):
        differences.append(
            f"{name}: last equity is {restored.get('lastEquity')}, {recorded.get('lastEquity')} was backed up"
        )
    return differences


def drill_verdict(
    checked: Iterable[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None, list[str]]],
) -> DrillVerdict:
    """The drill's verdict over every restored database: (name, recorded summary, restored summary or None when it
    could not be read, integrity_check findings). It passes when every database is sound and matches its record."""
    differences: list[str] = []
    seen = 0
    for name, recorded, restored, problems in checked:
        seen += 1
        if problems:
            differences.append(f"{name}: integrity check failed: {'; '.join(problems[:3])}")
            continue
        if recorded is None:
            differences.append(f"{name}: the snapshot holds no recorded summary to compare with")
            continue
        if restored is None:
            differences.append(f"{name}: the restored copy cannot be read")
            continue
        differences += compare_summaries(name, recorded, restored)
    if seen == 0:
        differences.append("the snapshot restored no database")
    return DrillVerdict(not differences, tuple(differences))


# --- results: what a finished run says, wherever it ran -----------------------------------------------------------

_EVENT_PREFIX = {
    BackupJobKind.BACKUP: "Backup",
    BackupJobKind.CHECK: "Check",
    BackupJobKind.PRUNE: "Prune",
    BackupJobKind.DRILL: "RestoreDrill",
}


def event_reason(job: BackupJobKind | str, *, succeeded: bool) -> str:
    """The Event reason of a finished run: ``BackupSucceeded``, ``RestoreDrillFailed``, ..."""
    return _EVENT_PREFIX[BackupJobKind(job)] + ("Succeeded" if succeeded else "Failed")


def newest_results(status: BackupScheduleStatus | None) -> dict[BackupJobKind, JobResult]:
    """The newest run of each job kind the status records (``lastBackup``, ``lastCheck``, ...)."""
    if status is None:
        return {}
    found = {job: getattr(status, f"last_{job.value}") for job in BackupJobKind}
    return {job: result for job, result in found.items() if result is not None}


def result_signals(
    namespace: str, schedule: str, status: BackupScheduleStatus | None, now: datetime
) -> list[IncidentSignal]:
    """The incident signals a schedule's status calls for: one per job kind whose newest run failed (BackupFailed,
    or RestoreDrillFailed for a drill); none for a kind that succeeded, so its incident clears. The same signals
    ``services.backups`` records under ``slsbot up`` as each run ends; the operator derives them from the status the
    CronJobs' pods write."""
    return [
        backup_signal(namespace, schedule, job.value, result.message, now)
        for job, result in sorted(newest_results(status).items())
        if result.outcome == JobOutcome.FAILED
    ]
