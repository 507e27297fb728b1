"""``slsbot up``'s daily report schedule: a real APScheduler cron job at 00:05 UTC by default (a setting), each run
covering the previous UTC day into ``<pdf_dir>/<day>.pdf``, a failing run logged and not raised, and none when off."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader

from slsbot.adapters.report_pdf import write_report_pdf
from slsbot.api import Strategy, TradingAccount
from slsbot.domain.daily_report import StrategyRecord, day_bounds
from slsbot.domain.errors import BackendUnavailable
from slsbot.interfaces.local_reports import ScheduledDailyReports
from slsbot.services.daily_reports import DailyReports
from slsbot.settings import DailyReportSettings

NOW = datetime(2026, 3, 3, 0, 5, tzinfo=UTC)
START, _ = day_bounds(datetime(2026, 3, 2).date())

ACCOUNT = TradingAccount.model_validate(
    {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": "main", "namespace": "trading"},
        "spec": {"exchange": "binance", "mode": "paper", "paper": {"startingBalance": 1000, "quoteCurrency": "USDT"}},
    }
)
STRATEGY = Strategy.model_validate(
    {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": "btc-trend", "namespace": "trading"},
        "spec": {
            "accountRef": {"name": "main"},
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]},
            "marketData": {"source": "replay", "dataDir": "/data"},
        },
    }
)


def reports(records=None) -> DailyReports:
    record = StrategyRecord(name="btc-trend", starting_cash=1000.0, equity=[(START + 3_600_000, 1012.5)])
    return DailyReports(
        resources=lambda: [ACCOUNT, STRATEGY],
        records=records or (lambda namespace, name: record),
        write_pdf=write_report_pdf,
    )


def test_the_job_runs_at_five_past_midnight_utc_by_default_and_at_the_cron_given(tmp_path) -> None:
    for cron, hour, minute in (("5 0 * * *", 0, 5), ("30 6 * * *", 6, 30)):
        scheduled = ScheduledDailyReports(reports(), DailyReportSettings(cron=cron), tmp_path)
        scheduled.start()
        try:
            after = datetime.now(UTC)
            expected = after.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if expected <= after:
                expected += timedelta(days=1)
            assert scheduled.next_run_at() == expected
        finally:
            scheduled.stop()


def test_no_job_when_off(tmp_path) -> None:
    scheduled = ScheduledDailyReports(reports(), DailyReportSettings(enabled=False), tmp_path)
    scheduled.start()
    assert scheduled.next_run_at() is None
    scheduled.stop()


def test_a_run_reports_the_previous_utc_day_into_its_pdf(tmp_path) -> None:
    scheduled = ScheduledDailyReports(reports(), DailyReportSettings(), tmp_path / "reports", clock=lambda: NOW)
    run = scheduled.run_once()
    assert run is not None and run.pdf == tmp_path / "reports" / "2026-03-02.pdf"
    first = PdfReader(run.pdf).pages[0].extract_text()
    assert "Daily report 2026-03-02: trading/main" in first and "+12.50" in first


def test_a_strategy_that_cannot_be_read_is_named_and_the_others_still_reported(tmp_path) -> None:
    def unreadable(namespace: str, name: str) -> StrategyRecord:
        raise BackendUnavailable("the state file is locked")

    run = ScheduledDailyReports(reports(unreadable), DailyReportSettings(), tmp_path, clock=lambda: NOW).run_once()
    assert run is not None and run.reports[0].unavailable == ("btc-trend",)


def test_a_failing_run_is_logged_not_raised(tmp_path, caplog) -> None:
    broken = DailyReports(resources=lambda: [ACCOUNT], records=lambda ns, name: None, write_pdf=_refuse)
    scheduled = ScheduledDailyReports(broken, DailyReportSettings(), tmp_path, clock=lambda: NOW)
    with caplog.at_level(logging.ERROR):
        assert scheduled.run_once() is None
    assert "daily report for 2026-03-02 failed" in caplog.text


def _refuse(reports, path):
    raise OSError("disk full")


@pytest.mark.parametrize("cron", ["61 0 * * *", "5 0 * *", "every day"])
def test_a_bad_cron_is_refused_naming_the_field(cron) -> None:
    with pytest.raises(ValueError, match=r"cron: .* is not a five-field cron expression"):
        DailyReportSettings(cron=cron)
