"""Run one BackupSchedule's jobs: backup, check, prune and the restore drill (docs/concepts/backups.md).

- backup: each selected runtime's state file and the control plane's store are copied consistently (SQLite's online
  backup API) into a staging folder with ``summary.json`` (what the copy holds: counts and digests of orders, fills,
  positions and equity), and each folder becomes one restic snapshot tagged ``namespace``, ``account``, ``strategy``
  and ``kind`` (``state`` or ``store``).
- check: ``restic check`` (reading back ``readDataSubset`` of the data when set).
- prune: ``restic forget --prune`` with the keep rules, per strategy and kind.
- drill: the newest snapshot of each strategy and kind is restored into a scratch folder, each database's integrity
  is checked and its summary recomputed and compared with the one recorded at snapshot time.

Each run returns a ``JobResult`` and hands it to ``report`` (metrics, an Event, the schedule's status); a failed run
raises the schedule's ``BackupFailed`` or ``RestoreDrillFailed`` incident (``domain.incident_rules.backup_signal``),
which clears when that job next succeeds. The same code serves ``slsbot up`` (APScheduler) and ``slsbot backup run``
(the operator's CronJobs). The repository and the database copies are reached through the ports below.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from slsbot.api.backup import BackupJobKind, BackupScheduleSpec, JobOutcome, JobResult
from slsbot.domain.backup_plan import BackupResult, KeepRules, drill_verdict, keep_rules
from slsbot.domain.errors import SlsbotError
from slsbot.domain.incident_rules import IncidentSignal, backup_signal
from slsbot.domain.incidents import BACKUP_FAMILY

log = logging.getLogger(__name__)
SUMMARY_FILE = "summary.json"


class BackupRepository(Protocol):
    """A restic repository (``adapters.restic.ResticRepository``). Raises SlsbotError subclasses."""

    def ensure_initialized(self) -> bool: ...
    def backup(self, folder: Path, *, tags: Mapping[str, str], host: str = "slsbot") -> BackupResult: ...
    def snapshots(self, *, tags: Mapping[str, str] | None = None) -> list[dict[str, Any]]: ...
    def forget(self, keep: KeepRules) -> list[str]: ...
    def check(self, *, read_data_subset: str | None = None) -> None: ...
    def restore(self, snapshot_id: str, target: Path) -> None: ...


class DatabaseCopies(Protocol):
    """Consistent copies and summaries of SQLite files (``adapters.sqlite_snapshot``)."""

    def snapshot(self, source: Path, target: Path) -> None: ...
    def summarize(self, path: Path, *, kind: str) -> dict[str, Any]: ...
    def integrity_problems(self, path: Path) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class BackupSource:
    """One database to back up: a runtime's state file (``kind`` state) or the control plane's store (store)."""

    kind: str
    name: str  # the Strategy's name, or "control-plane"
    path: Path
    account: str | None = None

    @property
    def file_name(self) -> str:
        return f"{self.kind}.db"


RecordSignals = Callable[..., object]  # IncidentService.record_signals


@dataclass(slots=True)
class BackupService:
    namespace: str
    schedule: str  # the BackupSchedule's name
    spec: BackupScheduleSpec
    repository: BackupRepository
    databases: DatabaseCopies
    sources: Callable[[], Sequence[BackupSource]]
    work_dir: Path  # staging and scratch folders live under it
    report: Callable[[BackupJobKind, JobResult], None] | None = None
    record_signals: RecordSignals | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    #: The newest outcome of each job kind, so one job's success does not clear another's incident.
    failing: dict[BackupJobKind, str] = field(default_factory=dict)

    def run(self, job: BackupJobKind | str) -> JobResult:
        """Run ``job`` once; never raises for a failure of the job itself (it is the result, and an incident)."""
        job = BackupJobKind(job)
        started_at = self.clock()
        began = time.monotonic()
        snapshot_ids: list[str] = []
        size: int | None = None
        try:
            if job is BackupJobKind.BACKUP:
                snapshot_ids, size, message = self._backup()
            elif job is BackupJobKind.CHECK:
                subset = self.spec.check.read_data_subset
                self.repository.check(read_data_subset=subset)
                message = "repository checked" + (f" (read {subset} of the data)" if subset else "")
            elif job is BackupJobKind.PRUNE:
                removed = self.repository.forget(keep_rules(self.spec))
                snapshot_ids, message = removed, f"forgot {len(removed)} snapshots and pruned their data"
            else:
                snapshot_ids, message = self._drill()
            outcome = JobOutcome.SUCCEEDED
        except SlsbotError as exc:
            outcome, message = JobOutcome.FAILED, str(exc)
        result = JobResult(
            started_at=started_at,
            duration_seconds=round(time.monotonic() - began, 3),
            outcome=outcome,
            snapshot_ids=snapshot_ids[:256],
            size_bytes=size,
            message=message[:4096],
        )
        log.log(
            logging.INFO if outcome is JobOutcome.SUCCEEDED else logging.WARNING,
            "backup schedule %s/%s: %s %s: %s",
            self.namespace,
            self.schedule,
            job.value,
            outcome.value,
            result.message,
        )
        if self.report is not None:
            self.report(job, result)
        self._record_incidents(job, result)
        return result

    # --- jobs -----------------------------------------------------------------------------------------------------

    def _backup(self) -> tuple[list[str], int, str]:
        self.repository.ensure_initialized()
        sources = list(self.sources())
        if not sources:
            raise SlsbotError(
                f"BackupSchedule {self.namespace}/{self.schedule}: no state to back up (no selected Strategy has a "
                "state file yet); check spec.selector"
            )
        staging = self.work_dir / "staging"
        ids: list[str] = []
        added = 0
        failures: list[str] = []
        for source in sources:
            folder = staging / f"{source.kind}-{source.name}"  # a stable path: the snapshots of one source chain
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            try:
                database = folder / source.file_name
                self.databases.snapshot(source.path, database)
                record = {
                    "kind": source.kind,
                    "namespace": self.namespace,
                    "strategy": source.name,
                    "account": source.account,
                    "database": source.file_name,
                    "takenAt": self.clock().isoformat(),
                    "summary": self.databases.summarize(database, kind=source.kind),
                }
                (folder / SUMMARY_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
                result = self.repository.backup(folder, tags=self._tags(source))
                ids.append(result.snapshot_id)
                added += result.bytes_added
            except SlsbotError as exc:
                failures.append(f"{source.kind} {source.name}: {exc}")
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        if failures:
            raise SlsbotError(f"{len(failures)} of {len(sources)} backups failed: " + "; ".join(failures))
        return ids, added, f"{len(ids)} snapshots, {added} bytes added to the repository"

    def _tags(self, source: BackupSource) -> dict[str, str]:
        tags = {"namespace": self.namespace, "kind": source.kind, "strategy": source.name}
        if source.account:
            tags["account"] = source.account
        return tags

    def newest_snapshots(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The newest snapshot of each (kind, strategy) in this namespace."""
        newest: dict[tuple[str, str], dict[str, Any]] = {}
        for snapshot in self.repository.snapshots(tags={"namespace": self.namespace}):  # oldest first
            tags = dict(tag.split("=", 1) for tag in snapshot.get("tags") or [] if "=" in tag)
            newest[(tags.get("kind", "?"), tags.get("strategy", "?"))] = snapshot
        return newest

    def _drill(self) -> tuple[list[str], str]:
        newest = self.newest_snapshots()
        if not newest:
            raise SlsbotError(f"no snapshot of namespace {self.namespace} in the repository to drill; run a backup")
        scratch = self.work_dir / "drill"
        shutil.rmtree(scratch, ignore_errors=True)
        checked: list[tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None, list[str]]] = []
        try:
            for (kind, name), snapshot in sorted(newest.items()):
                label = f"{kind} {name} (snapshot {snapshot.get('short_id') or str(snapshot['id'])[:8]})"
                target = scratch / str(snapshot["id"])
                self.repository.restore(str(snapshot["id"]), target)
                checked.append(self._check_restored(label, kind, target))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        verdict = drill_verdict(checked)
        ids = [str(s.get("short_id") or s["id"]) for s in newest.values()]
        if not verdict.passed:
            raise DrillFailed(verdict.message)
        return ids, f"{len(checked)} databases restored, sound and equal to what was backed up"

    def _check_restored(
        self, label: str, kind: str, target: Path
    ) -> tuple[str, Mapping[str, Any] | None, Mapping[str, Any] | None, list[str]]:
        summaries = list(target.rglob(SUMMARY_FILE))
        if not summaries:
            return label, None, None, []
        record = json.loads(summaries[0].read_text())
        database = summaries[0].parent / str(record.get("database", f"{kind}.db"))
        problems = self.databases.integrity_problems(database)
        if problems:
            return label, record.get("summary"), None, problems
        try:
            restored = self.databases.summarize(database, kind=kind)
        except SlsbotError as exc:
            return label, record.get("summary"), None, [str(exc)]
        return label, record.get("summary"), restored, []

    # --- incidents ------------------------------------------------------------------------------------------------

    def _record_incidents(self, job: BackupJobKind, result: JobResult) -> None:
        if result.outcome == JobOutcome.FAILED:  # the model keeps the value (use_enum_values)
            self.failing[job] = result.message
        else:
            self.failing.pop(job, None)
        if self.record_signals is None:
            return
        now = self.clock()
        signals: list[IncidentSignal] = [
            backup_signal(self.namespace, self.schedule, kind.value, message, now)
            for kind, message in sorted(self.failing.items())
        ]
        self.record_signals(
            signals,
            now,
            evaluated=(BACKUP_FAMILY,),
            namespaces=[self.namespace],
            objects=[f"BackupSchedule/{self.schedule}"],
        )


class DrillFailed(SlsbotError):
    """A restore drill found a restored database damaged or different from what was backed up. The drill's result
    is Failed and the RestoreDrillFailed incident opens (runbooks/restore-drill-failed.md); nothing else changes."""


# --- restore ----------------------------------------------------------------------------------------------------------


class RestoreRefused(SlsbotError):
    """``slsbot restore`` will not put this snapshot back (no such snapshot, a damaged or different copy, the runtime
    still running). Nothing was changed: the state file is as it was."""


@dataclass(frozen=True, slots=True)
class RestoreOutcome:
    snapshot_id: str
    state_file: Path
    kept_aside: tuple[Path, ...]  # the previous state file (and its -wal, -shm), renamed


def pick_snapshot(
    repository: BackupRepository, *, namespace: str, strategy: str, snapshot: str = "latest"
) -> dict[str, Any]:
    """The strategy's state snapshot named by ``snapshot`` (an id or its prefix, or ``latest``)."""
    found = repository.snapshots(tags={"namespace": namespace, "kind": "state", "strategy": strategy})
    if not found:
        raise RestoreRefused(f"no state snapshot of {namespace}/{strategy} in the repository; run a backup first")
    if snapshot == "latest":
        return found[-1]
    matches = [s for s in found if str(s["id"]).startswith(snapshot)]
    if len(matches) != 1:
        ids = ", ".join(str(s.get("short_id") or s["id"])[:8] for s in found[-10:])
        how_many = "more than one" if matches else "no"
        raise RestoreRefused(
            f"--snapshot {snapshot}: {how_many} state snapshot of {namespace}/{strategy} matches; "
            f"pass one of {ids} or latest"
        )
    return matches[0]


def restore_state(
    repository: BackupRepository,
    databases: DatabaseCopies,
    *,
    namespace: str,
    strategy: str,
    state_file: Path,
    snapshot: str = "latest",
    now: datetime,
) -> RestoreOutcome:
    """Put ``state_file`` back from a snapshot: restored into a scratch folder beside it, its integrity checked and its
    summary compared with the one recorded at snapshot time, then the current file (with its -wal and -shm) renamed
    aside as ``state.db.before-restore-<UTC>`` and the restored copy renamed into place. The caller makes sure the
    runtime is stopped. RestoreRefused (nothing changed) when the copy is damaged or differs."""
    chosen = pick_snapshot(repository, namespace=namespace, strategy=strategy, snapshot=snapshot)
    snapshot_id = str(chosen["id"])
    scratch = state_file.parent / f".restore-{snapshot_id[:8]}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        repository.restore(snapshot_id, scratch)
        summaries = list(scratch.rglob(SUMMARY_FILE))
        if not summaries:
            raise RestoreRefused(f"snapshot {snapshot_id[:8]} holds no {SUMMARY_FILE}; it was not made by slsbot")
        record = json.loads(summaries[0].read_text())
        restored = summaries[0].parent / str(record.get("database", "state.db"))
        label = f"state {strategy} (snapshot {snapshot_id[:8]})"
        problems = databases.integrity_problems(restored)
        summary = None if problems else databases.summarize(restored, kind="state")
        verdict = drill_verdict([(label, record.get("summary"), summary, problems)])
        if not verdict.passed:
            raise RestoreRefused(f"the restored copy is not what was backed up: {verdict.message}; nothing changed")
        staged = state_file.with_name(state_file.name + ".restoring")
        shutil.move(restored, staged)  # same folder as the target: the final rename is atomic
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        kept: list[Path] = []
        for suffix in ("-wal", "-shm", ""):  # the journal first: a stale -wal must never meet the restored file
            current = state_file.with_name(state_file.name + suffix)
            if current.exists():
                aside = state_file.with_name(f"{state_file.name}.before-restore-{stamp}{suffix}")
                current.rename(aside)
                kept.append(aside)
        staged.replace(state_file)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return RestoreOutcome(snapshot_id, state_file, tuple(reversed(kept)))
