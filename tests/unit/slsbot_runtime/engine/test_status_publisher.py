"""``StatusPublisher``: the phase from the loop's state (the first that applies wins), readiness, the publishing
pace while candles stream, and the phase metric set when the phase changes."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from slsbot.api import RiskPolicySpec
from slsbot_runtime.domain.types import Side
from slsbot_runtime.engine.status import Phase
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.persistence.store import StateStore

from .parts import HOUR, T0, candle, paper, trade, wire


def warm(parts) -> None:
    for hour in range(2):  # warmup_candles is 2
        parts.gaps.observe(candle(T0 + hour * HOUR, 100.0))


def test_the_phase_is_the_first_that_applies() -> None:
    parts = wire(paper(), StateStore.open(":memory:"))
    state, phase = parts.state, parts.publisher.phase
    assert phase() is Phase.STARTING
    parts.restart.load()
    assert phase() is Phase.RECONCILING
    parts.restart.reconcile()
    assert phase() is Phase.WARMING_UP
    warm(parts)
    assert phase() is Phase.RUNNING
    state.paused = True
    assert phase() is Phase.PAUSED
    state.risk_fed = state.must_flatten = True
    assert phase() is Phase.HALTED
    state.finished = True
    assert phase() is Phase.FINISHED
    state.halt_reason = "broken"
    assert phase() is Phase.HALTED


def test_a_risk_flatten_halts_with_the_risk_managers_reason() -> None:
    parts = wire(paper(), StateStore.open(":memory:"), policy=RiskPolicySpec(kill_switch=True))
    parts.restart.load()
    parts.restart.reconcile()
    warm(parts)
    parts.risk.observe(T0, 10_000.0, {"BTC/USDT": 100.0})
    parts.state.risk_fed, parts.state.must_flatten = True, parts.risk.must_flatten
    status = parts.publisher.snapshot()
    assert status.phase is Phase.HALTED and status.idle_reason == "Halted" and "kill switch" in status.idle_message


def test_ready_once_reconciled_and_warm_and_not_halted() -> None:
    parts = wire(paper(), StateStore.open(":memory:"))
    parts.restart.load()
    parts.restart.reconcile()
    assert not parts.publisher.snapshot().ready
    warm(parts)
    parts.state.ever_warm = True  # the candle path sets it when every symbol is warm
    assert parts.publisher.snapshot().ready
    parts.state.halt_reason = "broken"
    assert not parts.publisher.snapshot().ready


def test_a_publish_keeps_the_snapshot_and_when_it_was_taken() -> None:
    parts = wire(paper(), StateStore.open(":memory:"))
    publisher = parts.publisher
    parts.clock.now += 5.0
    parts.state.paused = True
    assert publisher.status.paused is False  # what was published stays until the next publish
    publisher.publish()
    assert publisher.status.paused and publisher.published_at == publisher.status.heartbeat == parts.clock.now


def test_the_phase_metric_follows_the_published_phase() -> None:
    registry = CollectorRegistry()
    parts = wire(paper(), StateStore.open(":memory:"), metrics=RuntimeMetrics(registry))

    def shown() -> set[str]:
        return {p for p in ("starting", "reconciling", "running") if registry.get_sample_value(
            "slsbot_runtime_phase", {"phase": p}) == 1}  # fmt: skip

    parts.publisher.publish()
    assert shown() == {"starting"}
    parts.restart.load()
    parts.publisher.publish()
    assert shown() == {"reconciling"}
    parts.restart.reconcile()
    warm(parts)
    parts.publisher.publish()
    assert shown() == {"running"}
    assert registry.get_sample_value("slsbot_runtime_loop_heartbeat_timestamp_seconds") == parts.clock.now


def test_the_account_figures_count_held_and_incoming_exposure_and_todays_pnl() -> None:
    parts = wire(paper(), StateStore.open(":memory:"))
    parts.restart.load()
    parts.restart.reconcile()
    warm(parts)
    trade(parts, Side.BUY, 10.0, T0, 100.0)  # 10 held at 100
    parts.risk.observe(T0 + HOUR, parts.ledger.equity(), {"BTC/USDT": 100.0})
    parts.orders.create_intent("BTC/USDT", Side.BUY, 5.0, candle_ts=T0 + HOUR, created_ts=T0 + 2 * HOUR, reason="t")
    parts.orders.send_pending()  # 5 more on the way: counted, so its room is not handed out twice
    parts.ledger.mark("BTC/USDT", 110.0)
    status = parts.publisher.snapshot()
    assert status.exposure == {"BTC/USDT": 15 * 110.0} and status.total_exposure == 15 * 110.0
    assert status.equity_day_start == parts.risk.day_start_equity
    assert status.pnl_today == status.equity - status.equity_day_start
    parts.orders.create_intent("BTC/USDT", Side.SELL, 10.0, candle_ts=T0 + HOUR, created_ts=T0 + 2 * HOUR, reason="x")
    parts.orders.send_pending()  # an exit does not add exposure
    assert parts.publisher.snapshot().exposure == {"BTC/USDT": 15 * 110.0}


def test_a_publish_sets_the_risk_gauges_the_alerts_read() -> None:
    """Drawdown and its limit, the breaker level and the kill switch, as the risk manager sees them (the alerts on a
    drawdown near its limit, a tripped breaker and a kill switch read these: docs/concepts/monitoring.md)."""
    registry = CollectorRegistry()
    policy = RiskPolicySpec(max_drawdown_percent=12.5)
    parts = wire(paper(), StateStore.open(":memory:"), policy=policy, metrics=RuntimeMetrics(registry))

    def gauges() -> tuple[float | None, ...]:
        names = ("drawdown_percent", "drawdown_limit_percent", "breaker_level", "kill_switch")
        return tuple(registry.get_sample_value(f"slsbot_runtime_{name}") for name in names)

    parts.risk.observe(T0, 10_000.0, {"BTC/USDT": 100.0})
    parts.publisher.publish()
    assert gauges() == (0.0, 12.5, 0.0, 0.0)
    parts.risk.observe(T0 + HOUR, 9_400.0, {"BTC/USDT": 94.0})  # 6 % down: the first default level (5 %) trips
    parts.publisher.publish()
    drawdown, limit, level, kill = gauges()
    assert drawdown == pytest.approx(6.0) and limit == 12.5 and level == 1.0 and kill == 0.0


def test_the_kill_switch_gauge_is_one_while_the_policy_sets_it() -> None:
    registry = CollectorRegistry()
    parts = wire(
        paper(), StateStore.open(":memory:"), policy=RiskPolicySpec(kill_switch=True), metrics=RuntimeMetrics(registry)
    )
    parts.publisher.publish()
    assert registry.get_sample_value("slsbot_runtime_kill_switch") == 1.0


def test_the_status_shows_the_tripped_breaker_level() -> None:
    policy = RiskPolicySpec.model_validate(
        {
            "circuitBreaker": {"levels": [{"action": "reduceSize", "drawdownPercent": 1, "sizeMultiplier": 0.5}]},
            "maxDrawdownPercent": 50,
            "dailyLossLimitPercent": 50,
            "volatilityHalt": {"enabled": False},
        }
    )
    parts = wire(paper(), StateStore.open(":memory:"), policy=policy)
    parts.restart.load()
    parts.restart.reconcile()
    warm(parts)
    parts.risk.observe(T0, 10_000.0, {"BTC/USDT": 100.0})
    before = parts.publisher.snapshot()
    assert (before.breaker_level, before.breaker_action) == (0, None)
    parts.risk.observe(T0 + HOUR, 9_850.0, {"BTC/USDT": 100.0})  # 1.5 % below the peak: level 1 trips
    after = parts.publisher.snapshot().to_json()
    assert (after["breaker_level"], after["breaker_action"]) == (1, "reduceSize")
