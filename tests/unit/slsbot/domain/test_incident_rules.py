from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from slsbot.api.health import FailureClass, HealingStatus
from slsbot.api.riskpolicy import RiskPolicySpec
from slsbot.domain.incident_rules import (
    StrategyObservation,
    all_runbooks,
    daily_returns,
    exchange_lost_since,
    healing_signal,
    pearson,
    runbook_for,
    severity_signals,
    strategy_signals,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[4]


def healthy() -> dict:
    return {
        "checked_at": NOW.isoformat(),
        "data": {},
        "exchange": {
            "connected": True,
            "errors": 0,
            "consecutive_errors": 0,
            "rate_limited": 0,
            "last_error": None,
            "failing_since": None,
            "last_ok_at": NOW.isoformat(),
        },
        "orders": {"rejects": 0, "consecutive_rejects": 0, "failures": 0, "consecutive_failures": 0},
        "slippage": {"fills": 3, "mean_bps": 2.0, "last_bps": 1.0},
        "reconcile": {"ok": True, "problems": 0, "last_problem": None, "checked_at": None},
        "models": {"degraded": False, "drifted": [], "accuracy": 0.6, "baseline_accuracy": 0.62},
        "anomaly_score": 0.5,
        "confidence": 0.05,  # a crossover's, at a cross: low by design, no rule on it alone
        "confidence_recent_mean": 0.1,
        "confidence_usual_mean": 0.2,
        "confidence_usual_signals": 480,
        "confidence_recent_signals": 20,
        "memory_bytes": 1,
        "memory_limit_bytes": None,
        "margin_used_percent": None,
    }


def observe(health: dict | None = None, **kwargs) -> StrategyObservation:
    status = {} if health is None else {"health": health}
    return StrategyObservation(namespace="trading", name="btc-trend", runtime_status=status, **kwargs)


def rules_of(observation: StrategyObservation, policy: RiskPolicySpec | None = None) -> dict[str, int]:
    return {s.rule: s.severity for s in strategy_signals(observation, policy or RiskPolicySpec(), NOW)}


def test_a_healthy_runtime_or_one_without_health_raises_nothing() -> None:
    assert rules_of(observe(healthy())) == {}
    assert rules_of(observe(None)) == {}
    assert rules_of(observe({"orders": "garbage", "exchange": None, "anomaly_score": "x"})) == {}


@pytest.mark.parametrize(
    ("change", "rule", "severity"),
    [
        (lambda h: h.update(margin_used_percent=50.5), "LiquidationRisk", 1),
        (lambda h: h["orders"].update(consecutive_failures=5), "ExecutionFailure", 1),
        (
            lambda h: h["exchange"].update(
                connected=False, failing_since=(NOW - timedelta(minutes=5, seconds=1)).isoformat()
            ),
            "ConnectionLost",
            1,
        ),
        (lambda h: h["reconcile"].update(ok=False, last_problem="position 0.1 BTC, exchange 0"), "StateMismatch", 1),
        (lambda h: h["models"].update(accuracy=0.51), "ModelAccuracy", 2),
        (lambda h: h["slippage"].update(mean_bps=25.1), "Slippage", 3),
        (lambda h: h.update(anomaly_score=0.76), "Anomaly", 3),
        (lambda h: h.update(confidence_recent_mean=0.0999), "LowConfidence", 3),
    ],
)
def test_each_rule_fires_just_beyond_its_default_threshold(change, rule, severity) -> None:
    health = healthy()
    change(health)
    assert rules_of(observe(health)) == {rule: severity}


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h.update(margin_used_percent=50.0),
        lambda h: h["orders"].update(consecutive_failures=4),
        lambda h: h["exchange"].update(connected=False, failing_since=(NOW - timedelta(minutes=4)).isoformat()),
        lambda h: h["exchange"].update(connected=True, failing_since=(NOW - timedelta(hours=1)).isoformat()),
        lambda h: h["models"].update(accuracy=0.53),
        lambda h: h["slippage"].update(mean_bps=25.0),
        lambda h: h.update(anomaly_score=0.75),
        lambda h: h.update(confidence_recent_mean=0.1),
        lambda h: h.update(confidence_recent_mean=0.01, confidence_usual_mean=None),  # nothing usual yet
    ],
)
def test_at_the_threshold_nothing_fires(change) -> None:
    health = healthy()
    change(health)
    assert rules_of(observe(health)) == {}


def test_the_accuracy_rule_names_the_model_and_its_figures() -> None:
    health = healthy()
    health["models"].update(accuracy=0.41, baseline_accuracy=0.58, accuracy_model="logit")
    (signal,) = strategy_signals(observe(health), RiskPolicySpec(), NOW)
    assert (signal.rule, signal.severity, signal.runbook) == ("ModelAccuracy", 2, "runbooks/model-accuracy.md")
    assert (
        signal.message
        == "model logit: live accuracy fell from 0.580 (holdout at training) to 0.410 (rule: a drop of 0.1)"
    )


def test_low_confidence_is_measured_against_the_strategys_usual_and_can_be_turned_off() -> None:
    health = healthy()
    health.update(confidence_recent_mean=0.04, confidence_usual_mean=0.12, confidence_recent_signals=25)
    (signal,) = strategy_signals(observe(health), RiskPolicySpec(), NOW)
    assert (signal.rule, signal.severity) == ("LowConfidence", 3)
    assert signal.message == (  # the window the runtime reports, not one written into the operator
        "mean signal confidence 0.040 over the last 25 signals is below 0.5 of this strategy's usual 0.120 "
        "(480 signals before them)"
    )
    off = RiskPolicySpec.model_validate({"incidents": {"lowConfidence": 0}})
    assert strategy_signals(observe(health), off, NOW) == []


def test_thresholds_come_from_the_policy() -> None:
    policy = RiskPolicySpec.model_validate(
        {
            "incidents": {
                "executionFailures": 2,
                "connectionLostAfter": "1m",
                "slippageBps": 5,
                "flattenOnCritical": False,
            }
        }
    )
    health = healthy()
    health["orders"]["consecutive_failures"] = 2
    health["exchange"].update(connected=False, failing_since=(NOW - timedelta(minutes=2)).isoformat())
    health["slippage"]["mean_bps"] = 6
    signals = strategy_signals(observe(health), policy, NOW)
    assert {s.rule for s in signals} == {"ExecutionFailure", "ConnectionLost", "Slippage"}
    failure = next(s for s in signals if s.rule == "ExecutionFailure")
    assert failure.actions == ("CancelOrders", "Halt")  # flattenOnCritical: false
    assert failure.cause == "ExecutionFailure:trading/btc-trend"
    assert failure.objects == ("Strategy/btc-trend",)
    assert failure.runbook == "runbooks/execution-failure.md"
    assert next(s for s in signals if s.rule == "Slippage").actions == ()


def test_a_lone_strategy_drawdown_is_severity_2() -> None:
    assert rules_of(observe(healthy(), drawdown_percent=10.5)) == {"Drawdown": 2}
    assert rules_of(observe(healthy(), drawdown_percent=10.0)) == {}


def member(
    name: str, *, equity: float, drawdown: float, returns: dict[str, float] | None = None
) -> StrategyObservation:
    return StrategyObservation(
        namespace="trading",
        name=name,
        account="binance",
        runtime_status={"health": healthy()},
        equity=equity,
        drawdown_percent=drawdown,
        daily_returns=returns or {},
    )


def test_account_drawdown_names_the_worst_contributor() -> None:
    # peaks 1000/0.98 ~ 1020.4 and 1000/0.8 = 1250: account 2000 of 2270.4, 11.9 % down; b lost the most.
    members = [member("a", equity=1000, drawdown=2), member("b", equity=1000, drawdown=20)]
    signals = severity_signals(members, {}, NOW)
    account = [s for s in signals if s.rule == "Drawdown"]
    assert len(account) == 1
    assert account[0].cause == "Drawdown:trading/binance"
    assert account[0].objects == ("Strategy/b", "TradingAccount/binance")
    assert "11.9 %" in account[0].message
    # Diluted by a big healthy bot, the account is within its rule.
    members.append(member("c", equity=10_000, drawdown=0))
    assert [s for s in severity_signals(members, {}, NOW) if s.rule == "Drawdown"] == []


def test_correlated_bots_of_one_account_raise_one_signal_matching_numpy() -> None:
    rng = np.random.default_rng(7)
    days = [f"2026-02-{d:02d}" for d in range(1, 21)]
    base = rng.normal(0, 0.01, len(days))
    a = dict(zip(days, base, strict=True))
    b = dict(zip(days, base * 0.9 + rng.normal(0, 0.002, len(days)) - 0.001, strict=True))
    c = dict(zip(days, rng.normal(0, 0.01, len(days)), strict=True))
    members = [
        member("a", equity=1, drawdown=0, returns=a),
        member("b", equity=1, drawdown=0, returns=b),
        member("c", equity=1, drawdown=0, returns=c),
    ]
    signals = [s for s in severity_signals(members, {}, NOW) if s.rule == "Correlation"]
    assert len(signals) == 1
    expected = np.corrcoef(list(a.values()), list(b.values()))[0, 1]
    assert expected > 0.8
    assert f"{expected:.2f}" in signals[0].message
    assert signals[0].severity == 2 and signals[0].cause == "Correlation:trading/binance"
    assert set(signals[0].objects) == {"Strategy/a", "Strategy/b", "TradingAccount/binance"}
    assert pearson(list(a.values()), list(c.values())) == pytest.approx(
        np.corrcoef(list(a.values()), list(c.values()))[0, 1]
    )
    # Too few common days: no verdict.
    short = [
        member("a", equity=1, drawdown=0, returns=dict(list(a.items())[:4])),
        member("b", equity=1, drawdown=0, returns=dict(list(b.items())[:4])),
    ]
    assert [s for s in severity_signals(short, {}, NOW) if s.rule == "Correlation"] == []


def test_daily_returns_take_each_days_last_equity() -> None:
    day = 86_400_000
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    points = [(start, 100.0), (start + 3_600_000, 110.0), (start + day, 99.0), (start + 2 * day + 5, 108.9)]
    assert daily_returns(points) == pytest.approx({"2026-01-02": -0.1, "2026-01-03": 0.1})


def test_every_runbook_a_signal_can_name_exists() -> None:
    assert runbook_for("HealingStaleData") == "runbooks/stale-data.md"
    assert runbook_for("LowConfidence") == "runbooks/low-confidence.md"
    missing = sorted(path for path in all_runbooks() if not (REPO / path).is_file())
    assert missing == []
    assert (REPO / "runbooks" / "postmortem-template.md").is_file()


def test_the_ladders_incident_rung_signal() -> None:
    stale = healing_signal("trading", "btc", FailureClass.STALE_DATA, "no candle for 3 intervals", NOW, account="a")
    assert (stale.rule, stale.severity, stale.cause) == ("HealingStaleData", 2, "StaleData:trading/btc")
    assert stale.objects == ("Strategy/btc", "TradingAccount/a") and stale.runbook == "runbooks/stale-data.md"
    for klass in FailureClass:
        severity = healing_signal("trading", "btc", klass, "m", NOW).severity
        critical = klass in (
            FailureClass.STATE_MISMATCH,
            FailureClass.EXECUTION_ERRORS,
            FailureClass.EXCHANGE_UNREACHABLE,
        )
        assert severity == (1 if critical else 2)
        assert (REPO / healing_signal("trading", "btc", klass, "m", NOW).runbook).is_file()


def rotation(outcome: str | None) -> dict:
    last = None
    if outcome is not None:
        last = {
            "at": NOW.isoformat(),
            "from_version": 3,
            "to_version": 4,
            "outcome": outcome,
            "reason": "the new key was refused: AuthenticationError: binance fetch_balance failed",
            "pause_seconds": 0.4,
        }
    return {"source": "vault", "version": 3, "phase": "idle", "last_rotation": last}


def test_a_rolled_back_key_rotation_is_a_severity_2_incident_with_nothing_done_automatically() -> None:
    health = healthy() | {"credentials": rotation("rolled_back")}
    [signal] = strategy_signals(observe(health, account="binance"), RiskPolicySpec(), NOW)
    assert (signal.rule, signal.severity, signal.actions) == ("CredentialRotationFailed", 2, ())
    assert signal.cause == "CredentialRotationFailed:trading/btc-trend"
    assert signal.objects == ("Strategy/btc-trend", "TradingAccount/binance")
    assert "from version 3 to 4 rolled back" in signal.message and "the new key was refused" in signal.message
    assert (REPO / signal.runbook).is_file() and signal.runbook in all_runbooks()


@pytest.mark.parametrize("credentials", [rotation("succeeded"), rotation(None), None, "garbage"])
def test_a_succeeded_or_no_rotation_raises_nothing(credentials) -> None:
    assert rules_of(observe(healthy() | {"credentials": credentials})) == {}


def test_a_connection_lost_across_the_ladders_restarts_counts_from_when_the_ladder_saw_it_go() -> None:
    """Restarted by the ladder, a runtime that cannot reach the exchange keeps connecting and reports no health (or a
    fresh ``failing_since``): the outage is measured from the ladder's fault, and ends when a runtime says connected."""
    lost_at = NOW - timedelta(minutes=5, seconds=1)
    healing = HealingStatus(failure_class=FailureClass.EXCHANGE_UNREACHABLE, rung="SafeMode", fault_at=lost_at)
    since = exchange_lost_since(healing)
    assert since == lost_at
    connecting = StrategyObservation(
        namespace="trading",
        name="btc-trend",
        runtime_status={"health": None, "error": "TemporaryExchangeError: binance fetch_time failed"},
        exchange_lost_since=since,
    )
    (signal,) = strategy_signals(connecting, RiskPolicySpec(), NOW)
    assert signal.rule == "ConnectionLost" and signal.severity == 1
    assert "lost for 301s" in signal.message and "fetch_time failed" in signal.message
    fresh = healthy()
    fresh["exchange"].update(connected=False, failing_since=(NOW - timedelta(seconds=20)).isoformat())
    assert rules_of(observe(fresh, exchange_lost_since=since)) == {"ConnectionLost": 1}
    assert rules_of(observe(healthy(), exchange_lost_since=since)) == {}  # connected again: over
    assert rules_of(observe(None, exchange_lost_since=NOW - timedelta(minutes=4))) == {}  # not long enough yet
    assert exchange_lost_since(HealingStatus(failure_class=FailureClass.STALE_DATA, fault_at=lost_at)) is None
