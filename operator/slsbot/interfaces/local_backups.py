"""Backups wired for one machine: ``slsbot up`` runs each BackupSchedule's due jobs on APScheduler, ``slsbot backup
run`` runs one job and exits (the CronJobs of a cluster run the same), ``slsbot restore`` reads the same repository.

Secrets are read from a folder laid out as mounted Secrets, ``<secrets_dir>/<namespace>/<secret>/<key>`` (``slsbot
up``'s ``secrets_dir``, or the CronJob's mounted Secrets): the password from ``passwordSecretRef``, and every key of
``environmentSecretRef`` as one variable of restic's environment. What is backed up: the state file of each selected
Strategy (``<state_root>/<namespace>/<strategy>/state.db`` locally, ``<state_root>/<strategy>/state.db`` in a CronJob)
and, when ``includeControlPlane``, the supervisor's database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session

from slsbot.adapters.backup_status import BackupStatusFile, failed_jobs, last_runs, with_ready, with_result
from slsbot.adapters.control_metrics import BackupMetrics
from slsbot.adapters.restic import ResticRepository
from slsbot.adapters.sqlite_snapshot import SqliteCopies
from slsbot.adapters.store import record_event
from slsbot.api import BackupSchedule, Strategy
from slsbot.api.backup import BackupJobKind, JobOutcome, JobResult
from slsbot.domain.backup_plan import due_jobs, event_reason, selects
from slsbot.domain.errors import NotFoundError
from slsbot.services.backups import BackupService, BackupSource, RecordSignals

log = logging.getLogger(__name__)
STORE_SOURCE = "control-plane"


def read_secret_key(secrets_dir: Path, namespace: str, name: str, key: str) -> SecretStr:
    path = secrets_dir / namespace / name / key
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise NotFoundError(
            f"Secret {namespace}/{name} key {key}: no readable file {path} ({type(exc).__name__}); write it there"
        ) from None
    if not value:
        raise NotFoundError(f"Secret {namespace}/{name} key {key}: the file {path} is empty")
    return SecretStr(value)


def read_secret_environment(secrets_dir: Path, namespace: str, name: str) -> dict[str, SecretStr]:
    folder = secrets_dir / namespace / name
    if not folder.is_dir():
        raise NotFoundError(f"Secret {namespace}/{name}: no folder {folder}; write one file per variable there")
    return {
        path.name: SecretStr(path.read_text().strip())
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(".")
    }


def build_repository(schedule: BackupSchedule, secrets_dir: Path, *, cache_dir: Path | None) -> ResticRepository:
    spec = schedule.spec
    ref = spec.password_secret_ref
    password = read_secret_key(secrets_dir, schedule.namespace, ref.name, ref.key)
    environment = (
        read_secret_environment(secrets_dir, schedule.namespace, spec.environment_secret_ref.name)
        if spec.environment_secret_ref is not None
        else {}
    )
    return ResticRepository(spec.repository, password, environment=environment, cache_dir=cache_dir)


def local_sources(
    schedule: BackupSchedule, strategies: Iterable[Strategy], *, state_dir: Path, store_path: Path | None
) -> list[BackupSource]:
    """The state files of the schedule's Strategies (those that have one yet), and the store."""
    sources = []
    for strategy in sorted(strategies, key=lambda s: s.name):
        if strategy.namespace != schedule.namespace:
            continue
        account = strategy.spec.account_ref.name
        if not selects(schedule.spec.selector, labels=strategy.metadata.labels, account=account):
            continue
        path = state_dir / strategy.namespace / strategy.name / "state.db"
        if path.is_file():
            sources.append(BackupSource("state", strategy.name, path, account=account))
    if schedule.spec.include_control_plane and store_path is not None and store_path.is_file():
        sources.append(BackupSource("store", STORE_SOURCE, store_path))
    return sources


@dataclass(slots=True)
class JobReporter:
    """What a finished run does besides its result: metrics, an Event on the BackupSchedule, its status file."""

    schedule: BackupSchedule
    status_file: BackupStatusFile
    metrics: BackupMetrics | None = None
    engine: Engine | None = None
    record_status: Callable[..., object] | None = None  # the supervisor store's record_status (the admin API shows it)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __call__(self, job: BackupJobKind, result: JobResult) -> None:
        succeeded = result.outcome == JobOutcome.SUCCEEDED
        if self.metrics is not None:
            self.metrics.job_finished(
                job.value,
                succeeded=succeeded,
                started_at=result.started_at.timestamp(),
                duration=result.duration_seconds,
                size=result.size_bytes,
                namespace=self.schedule.namespace,
                schedule=self.schedule.name,
            )
        status, since = self.status_file.read()
        status = with_ready(with_result(status, job, result), self.clock())
        self.status_file.write(status, since or result.started_at)
        if self.record_status is not None:
            self.record_status(
                kind="BackupSchedule", namespace=self.schedule.namespace, name=self.schedule.name, status=status
            )
        if self.engine is not None:
            reason = event_reason(job, succeeded=succeeded)
            with Session(self.engine) as session:
                record_event(
                    session,
                    kind="BackupSchedule",
                    namespace=self.schedule.namespace,
                    name=self.schedule.name,
                    type="Normal" if succeeded else "Warning",
                    reason=reason,
                    message=result.message[:1024],
                    now=self.clock(),
                )


@dataclass(slots=True)
class LocalBackups:
    """``slsbot up``'s backups: one APScheduler job per BackupSchedule, which runs whatever ``due_jobs`` says is
    due and then schedules itself at the plan's ``look_again_at``. The schedules are read from ``resources`` at each
    look, so a BackupSchedule added, changed or removed in the folder takes effect at the next look."""

    resources: Callable[[], Sequence[object]]
    state_dir: Path
    secrets_dir: Path
    store_path: Path | None
    metrics: BackupMetrics | None = None
    engine: Engine | None = None
    record_signals: RecordSignals | None = None
    record_status: Callable[..., object] | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _scheduler: BackgroundScheduler = field(default_factory=lambda: BackgroundScheduler(timezone=UTC))
    _services: dict[tuple[str, str], BackupService] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._scheduler.start()
        self._scheduler.add_job(self.look, trigger=DateTrigger(self.clock()), id="backups", max_instances=1)

    def stop(self) -> None:
        self._scheduler.shutdown(wait=True)

    def schedules(self) -> list[BackupSchedule]:
        return [r for r in self.resources() if isinstance(r, BackupSchedule)]

    def look(self) -> None:
        """Run every due job of every schedule, then come back when the next one falls due."""
        now = self.clock()
        wake = now + timedelta(minutes=5)
        with self._lock:
            for schedule in self.schedules():
                try:
                    wake = min(wake, self.run_due(schedule))
                except Exception:  # one schedule's fault never stops the others, nor the supervisor
                    log.exception("backup schedule %s/%s", schedule.namespace, schedule.name)
        if self._scheduler.running:
            self._scheduler.add_job(
                self.look, trigger=DateTrigger(max(wake, self.clock())), id="backups", replace_existing=True
            )

    def status_file(self, schedule: BackupSchedule) -> BackupStatusFile:
        return BackupStatusFile(self.state_dir / "backups" / schedule.namespace / schedule.name)

    def run_due(self, schedule: BackupSchedule) -> datetime:
        status_file = self.status_file(schedule)
        status, since = status_file.read()
        now = self.clock()
        if since is None:
            since = now
            status_file.write(status, since)
        plan = due_jobs(schedule.spec, last_runs(status), since=since, now=now)
        for job in plan.due:
            self.service(schedule).run(job)
        return plan.look_again_at

    def service(self, schedule: BackupSchedule) -> BackupService:
        key = (schedule.namespace, schedule.name)
        known = self._services.get(key)
        if known is not None and known.spec == schedule.spec:
            return known
        strategies = lambda: [r for r in self.resources() if isinstance(r, Strategy)]  # noqa: E731
        service = build_service(
            schedule,
            strategies=strategies,
            state_dir=self.state_dir,
            secrets_dir=self.secrets_dir,
            store_path=self.store_path,
            metrics=self.metrics,
            engine=self.engine,
            record_signals=self.record_signals,
            record_status=self.record_status,
        )
        if known is not None:
            service.failing.update(known.failing)
        else:  # after a restart: the kinds whose newest run failed keep their incidents until they succeed
            status, _since = self.status_file(schedule).read()
            service.failing.update(failed_jobs(status))
        self._services[key] = service
        return service


class _LazyRepository:
    """Reads the schedule's Secrets when a job needs the repository, so a missing Secret fails that job (its result,
    Event and incident name the Secret) instead of the supervisor."""

    def __init__(self, build: Callable[[], ResticRepository]) -> None:
        self._build = build

    def __getattr__(self, name: str) -> object:
        return getattr(self._build(), name)


def build_service(
    schedule: BackupSchedule,
    *,
    strategies: Callable[[], Iterable[Strategy]],
    state_dir: Path,
    secrets_dir: Path,
    store_path: Path | None,
    metrics: BackupMetrics | None = None,
    engine: Engine | None = None,
    record_signals: RecordSignals | None = None,
    sources: Callable[[], Sequence[BackupSource]] | None = None,
    record_status: Callable[..., object] | None = None,
    report: Callable[[BackupJobKind, JobResult], None] | None = None,
) -> BackupService:
    """``report``: what a finished run does besides returning its result; default: ``JobReporter`` (the status file
    in the state folder, metrics, an Event in the store). A CronJob's pod passes the Kubernetes one."""
    work_dir = state_dir / "backups" / schedule.namespace / schedule.name
    if report is None:
        report = JobReporter(
            schedule, BackupStatusFile(work_dir), metrics=metrics, engine=engine, record_status=record_status
        )
    repository = _LazyRepository(lambda: build_repository(schedule, secrets_dir, cache_dir=state_dir / "restic-cache"))
    return BackupService(
        namespace=schedule.namespace,
        schedule=schedule.name,
        spec=schedule.spec,
        repository=repository,  # type: ignore[arg-type]
        databases=SqliteCopies(),
        sources=sources or (lambda: local_sources(schedule, strategies(), state_dir=state_dir, store_path=store_path)),
        work_dir=work_dir,
        report=report,
        record_signals=record_signals,
    )
