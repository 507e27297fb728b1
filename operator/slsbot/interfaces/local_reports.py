"""The daily account report wired for one machine: ``slsbot up`` runs it on APScheduler's cron trigger (by default
00:05 UTC, ``SLSBOT_DAILY_REPORT__CRON``), ``slsbot report --daily`` runs it once. The runtimes' records are read from
their state files, ``<state_dir>/<namespace>/<strategy>/state.db``; the incidents from the supervisor's store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from slsbot.adapters.runtime_state import read_strategy_record
from slsbot.adapters.supervisor_store import SqlIncidentStore
from slsbot.domain.daily_report import AccountDay, StrategyRecord, previous_day
from slsbot.interfaces.cron_trigger import CrontabTrigger
from slsbot.services.daily_reports import DailyReports, DailyRun, ReportSender
from slsbot.settings import DailyReportSettings

log = logging.getLogger(__name__)
JOB_ID = "daily-report"
MISFIRE_GRACE_S = 3600  # a run the scheduler's thread could not start on time still runs within the hour


def write_pdf(reports: Sequence[AccountDay], path: Path) -> int:
    """``adapters.report_pdf.write_report_pdf``, imported at the first report: matplotlib stays out of ``slsbot up``'s
    start-up (its import takes a second and tens of megabytes) until a report is due."""
    from slsbot.adapters.report_pdf import write_report_pdf

    return write_report_pdf(reports, path)


def state_records(state_dir: Path) -> Callable[[str, str], StrategyRecord | None]:
    return lambda namespace, strategy: read_strategy_record(state_dir / namespace / strategy / "state.db", strategy)


def local_daily_reports(
    *, resources: Callable[[], Iterable[Any]], state_dir: Path, engine: Engine | None, sender: ReportSender | None
) -> DailyReports:
    return DailyReports(
        resources=resources,
        records=state_records(state_dir),
        incidents=SqlIncidentStore(engine) if engine is not None else None,
        sender=sender,
        write_pdf=write_pdf,
    )


@dataclass(slots=True)
class ScheduledDailyReports:
    """One cron job on its own APScheduler: each run reports the previous UTC day of every account, writes
    ``<pdf_dir>/<YYYY-MM-DD>.pdf`` and, when ``settings.slack``, posts each account's report to its Slack receivers.
    A run that fails is logged; the next day's runs anyway. A day whose run time falls while ``slsbot up`` is stopped
    is not caught up (``slsbot report --daily --date`` writes it)."""

    reports: DailyReports
    settings: DailyReportSettings
    pdf_dir: Path
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _scheduler: BackgroundScheduler = field(default_factory=lambda: BackgroundScheduler(timezone=UTC))

    def start(self) -> None:
        if not self.settings.enabled:
            log.info("daily report: off (SLSBOT_DAILY_REPORT__ENABLED=false)")
            return
        self._scheduler.start()
        self._scheduler.add_job(
            self.run_once,
            trigger=CrontabTrigger(self.settings.cron),
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_S,
        )

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def next_run_at(self) -> datetime | None:
        job = self._scheduler.get_job(JOB_ID) if self._scheduler.running else None
        return None if job is None else job.next_run_time

    def run_once(self) -> DailyRun | None:
        day = previous_day(self.clock())
        try:
            run = self.reports.run(day, pdf=self.pdf_dir / f"{day.isoformat()}.pdf", slack=self.settings.slack)
        except Exception:  # one day's failure never stops the supervisor, nor the next day's report
            log.exception("daily report for %s failed", day)
            return None
        log.info(
            "daily report for %s: %d account(s), %s, sent to %d receiver(s)%s",
            day,
            len(run.reports),
            run.pdf or "no PDF",
            len(run.sent),
            f", {len(run.failed)} failed" if run.failed else "",
        )
        return run
