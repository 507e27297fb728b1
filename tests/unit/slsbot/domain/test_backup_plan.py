"""Pure backup decisions: which job is due and when to look again, which Strategies are covered, the drill verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slsbot.api.backup import BackupJobKind, BackupScheduleSpec, BackupScheduleStatus, JobResult, StrategySelector
from slsbot.domain.backup_plan import (
    MAX_WAIT,
    drill_verdict,
    due_jobs,
    event_reason,
    keep_rules,
    next_fire,
    result_signals,
    selects,
)

SPEC = BackupScheduleSpec.model_validate({"repository": "/srv/restic", "passwordSecretRef": {"name": "r", "key": "p"}})
T0 = datetime(2026, 3, 2, 9, 59, tzinfo=UTC)  # a Monday


def test_nothing_is_due_before_the_first_firing() -> None:
    plan = due_jobs(SPEC, {}, since=T0, now=T0 + timedelta(seconds=30))
    assert plan.due == ()
    assert plan.look_again_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # the next hourly backup


def test_the_hourly_backup_is_due_once_its_hour_struck_and_not_again_after_it_ran() -> None:
    now = datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC)
    plan = due_jobs(SPEC, {}, since=T0, now=now)
    assert plan.due == (BackupJobKind.BACKUP,)
    after = due_jobs(SPEC, {BackupJobKind.BACKUP: now}, since=T0, now=now + timedelta(minutes=1))
    assert after.due == ()


def test_missed_firings_are_caught_up_by_one_run_each_in_order() -> None:
    """After a week down, every job is due once, backup first and the drill last (it tests the newest backup)."""
    now = T0 + timedelta(days=8)
    plan = due_jobs(SPEC, {}, since=T0, now=now)
    assert plan.due == (BackupJobKind.BACKUP, BackupJobKind.PRUNE, BackupJobKind.CHECK, BackupJobKind.DRILL)
    assert plan.look_again_at <= now + MAX_WAIT


def test_the_weekly_drill_fires_on_sunday_at_five() -> None:
    """Cron's day-of-week 0 (and 7) is Sunday; APScheduler's own numbering starts on Monday."""
    assert next_fire(SPEC.restore_drill.schedule, T0) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert next_fire("0 5 * * 7", T0) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert next_fire("0 5 * * 1-5", T0) == datetime(2026, 3, 3, 5, 0, tzinfo=UTC)  # Tuesday: Monday 05:00 passed
    assert next_fire("0 5 * * 0-1", datetime(2026, 3, 3, tzinfo=UTC)) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    assert next_fire("0 5 * * sat", T0) == datetime(2026, 3, 7, 5, 0, tzinfo=UTC)
    assert next_fire("0 * * * *", datetime(2026, 3, 2, 10, 0, tzinfo=UTC)) == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


def test_keep_rules_leave_out_zero() -> None:
    spec = SPEC.model_copy(update={"prune": SPEC.prune.model_copy(update={"keep_monthly": 0})})
    assert keep_rules(spec).arguments() == ["--keep-hourly=24", "--keep-daily=7", "--keep-weekly=4"]


def test_selector_by_account_and_labels() -> None:
    assert selects(StrategySelector(), labels={}, account=None)
    by_account = StrategySelector(account="binance")
    assert selects(by_account, labels={}, account="binance")
    assert not selects(by_account, labels={}, account="bybit")
    by_label = StrategySelector(match_labels={"tier": "prod"})
    assert selects(by_label, labels={"tier": "prod", "x": "y"}, account="a")
    assert not selects(by_label, labels={"tier": "dev"}, account="a")


SUMMARY = {
    "tables": {"orders": {"rows": 3, "digest": "a"}, "fills": {"rows": 3, "digest": "b"}},
    "lastEquity": 10_100.0,
}


def test_the_drill_passes_when_every_restored_database_matches() -> None:
    verdict = drill_verdict([("state btc", SUMMARY, dict(SUMMARY), [])])
    assert verdict.passed and verdict.differences == ()


def test_the_drill_names_what_differed() -> None:
    fewer = {"tables": {"orders": {"rows": 2, "digest": "x"}, "fills": {"rows": 3, "digest": "c"}}, "lastEquity": 1.0}
    verdict = drill_verdict([("state btc", SUMMARY, fewer, [])])
    assert not verdict.passed
    assert "state btc: orders has 2 rows, 3 were backed up" in verdict.differences
    assert "state btc: fills has the same 3 rows count but different contents" in verdict.differences
    assert any("last equity is 1.0, 10100.0 was backed up" in d for d in verdict.differences)


def test_the_drill_fails_on_a_damaged_copy_a_missing_record_or_nothing_restored() -> None:
    assert "integrity check failed" in drill_verdict([("s", SUMMARY, None, ["page 3 is never used"])]).message
    assert "no recorded summary" in drill_verdict([("s", None, None, [])]).message
    assert drill_verdict([]).message == "the snapshot restored no database"


def _result(outcome: str, message: str = "", at: datetime = T0) -> JobResult:
    return JobResult(started_at=at, duration_seconds=1.5, outcome=outcome, message=message)


def test_a_status_calls_for_one_incident_per_kind_whose_newest_run_failed() -> None:
    status = BackupScheduleStatus(
        last_backup=_result("Succeeded"),
        last_check=_result("Failed", "repository damaged"),
        last_drill=_result("Failed", "orders differ"),
    )
    signals = result_signals("ops", "hourly", status, T0)
    assert [(s.rule, s.cause, s.severity, s.message) for s in signals] == [
        ("BackupFailed", "BackupFailed:ops/hourly:check", 2, "repository damaged"),
        ("RestoreDrillFailed", "RestoreDrillFailed:ops/hourly:drill", 2, "orders differ"),
    ]
    assert all(s.objects == ("BackupSchedule/hourly",) and s.namespace == "ops" for s in signals)
    assert result_signals("ops", "hourly", BackupScheduleStatus(last_check=_result("Succeeded")), T0) == []
    assert result_signals("ops", "hourly", None, T0) == []


def test_event_reasons_match_slsbot_up() -> None:
    assert event_reason("backup", succeeded=True) == "BackupSucceeded"
    assert event_reason(BackupJobKind.DRILL, succeeded=False) == "RestoreDrillFailed"
    assert event_reason("prune", succeeded=False) == "PruneFailed"
