"""The volatility halt on real recorded candles: BTC/USDT around the 12 March 2020 crash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slsbot.api import RiskPolicySpec
from slsbot_runtime.domain.types import PortfolioSnapshot, Position, Side
from slsbot_runtime.risk.base import RiskAction, RiskRule, TradeProposal
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.risk.volatility import HISTORY_WINDOWS

HOUR = 3_600_000
EQUITY = 10_000.0
# window 24h, threshold 4, cooldown 1h; the other limits lifted so that only the halt speaks
POLICY = RiskPolicySpec(daily_loss_limit_percent=100, max_drawdown_percent=100, circuit_breaker={"levels": []})


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def entry(symbol: str, price: float) -> TradeProposal:
    return TradeProposal(symbol, Side.BUY, price, 0.3, True)


def at(ts: int, btc: float = 0.0) -> PortfolioSnapshot:
    positions = {"BTC/USDT": Position("BTC/USDT", btc, 5_000.0)} if btc else {}
    return PortfolioSnapshot(ts=ts, cash=EQUITY, equity=EQUITY, positions=positions)


def feed(risk: RiskManager, candles: list[tuple[int, float]], start: str, end: str) -> list[tuple[int, float]]:
    """Feed the BTC closes with open times in [start, end) to the manager; returns them."""
    fed = [(ts, close) for ts, close in candles if ms(start) <= ts < ms(end)]
    for ts, close in fed:
        risk.on_candle(ts, EQUITY, {"BTC/USDT": close, "STABLE/USDT": 1.0})
    return fed


def test_the_march_2020_crash_halts_btc_entries_and_only_btc(btc_hourly: list[tuple[int, float]]) -> None:
    risk = RiskManager(POLICY, None, True)
    fed = feed(risk, btc_hourly, "2020-02-21T00:00", "2020-03-12T10:00")
    assert len(fed) == 20 * 24 + 10 - 1  # one real missing hour (2020-03-04 10:00), returns span it
    assert risk.state().halted_symbols == ()
    calm_z = risk.snapshot()["volatility"]["BTC/USDT"]["zscore"]
    assert 0 < calm_z < 4

    feed(risk, btc_hourly, "2020-03-12T10:00", "2020-03-12T11:00")  # the -20% hour
    state = risk.state()
    assert state.halted_symbols == ("BTC/USDT",)
    crash_z = risk.snapshot()["volatility"]["BTC/USDT"]["zscore"]
    assert crash_z > 10  # realised vol went from ~1% to ~4% an hour in one candle

    price = btc_hourly[[ts for ts, _ in btc_hourly].index(ms("2020-03-12T10:00"))][1]
    decision = risk.evaluate(entry("BTC/USDT", price), at(ms("2020-03-12T10:00")))
    assert (decision.action, [event.rule for event in decision.events]) == (
        RiskAction.REJECTED,
        [RiskRule.VOLATILITY_HALT],
    )
    assert f"z-score {crash_z:.2f} (threshold 4.00)" in decision.events[0].message
    assert "until 2020-03-12T11:00Z" in decision.events[0].message
    assert risk.evaluate(entry("STABLE/USDT", 1.0), at(ms("2020-03-12T10:00"))).action is RiskAction.APPROVED
    sell = TradeProposal("BTC/USDT", Side.SELL, price, 1.0, False)
    assert risk.evaluate(sell, at(ms("2020-03-12T10:00"), btc=0.5)).quantity == 0.5  # exits still pass


def test_the_halt_lasts_its_cooldown_after_the_last_candle_above_the_threshold(
    btc_hourly: list[tuple[int, float]],
) -> None:
    risk = RiskManager(POLICY, None, True)
    feed(risk, btc_hourly, "2020-02-21T00:00", "2020-03-12T10:00")
    last_above = None
    for ts, close in (item for item in btc_hourly if item[0] >= ms("2020-03-12T10:00")):
        risk.on_candle(ts, EQUITY, {"BTC/USDT": close})
        zscore = risk.snapshot()["volatility"]["BTC/USDT"]["zscore"]
        if zscore > 4:
            last_above = ts
            assert risk.state().halted_symbols == ("BTC/USDT",)
        else:
            break
    assert last_above is not None and last_above > ms("2020-03-12T12:00")  # a halt of several hours
    release = last_above + HOUR
    assert ts == release  # the first calm candle is exactly one cooldown later
    assert risk.evaluate(entry("BTC/USDT", close), at(release - 1)).action is RiskAction.REJECTED
    assert risk.evaluate(entry("BTC/USDT", close), at(release)).action is RiskAction.APPROVED


def test_no_halt_before_a_window_of_history_exists() -> None:
    risk = RiskManager(POLICY, None, True)
    closes = [100.0 + (i % 2) * 0.1 for i in range(24 + 23)] + [50.0]  # a crash one candle too early
    for i, close in enumerate(closes):
        risk.on_candle(i * HOUR, EQUITY, {"BTC/USDT": close})
    assert risk.state().halted_symbols == ()
    assert risk.snapshot()["volatility"]["BTC/USDT"]["zscore"] is None  # 23 past values: not enough
    risk.on_candle(len(closes) * HOUR, EQUITY, {"BTC/USDT": 50.0})  # the crash still in the window
    assert risk.state().halted_symbols == ("BTC/USDT",)


def test_history_is_bounded_to_its_windows() -> None:
    risk = RiskManager(POLICY, None, True)
    for i in range(24 * (HISTORY_WINDOWS + 3)):
        risk.on_candle(i * HOUR, EQUITY, {"BTC/USDT": 100.0 + (i % 3)})
    state = risk.snapshot()["volatility"]["BTC/USDT"]
    assert (len(state["returns"]), len(state["history"])) == (24, HISTORY_WINDOWS * 24)


def test_flat_prices_give_a_zero_zscore_and_a_jump_from_flat_halts() -> None:
    risk = RiskManager(POLICY, None, True)
    for i in range(60):
        risk.on_candle(i * HOUR, EQUITY, {"BTC/USDT": 100.0})
    assert risk.snapshot()["volatility"]["BTC/USDT"]["zscore"] == 0.0
    risk.on_candle(60 * HOUR, EQUITY, {"BTC/USDT": 101.0})
    assert risk.state().halted_symbols == ("BTC/USDT",)


def test_the_same_candle_twice_is_counted_once() -> None:
    once, twice = RiskManager(POLICY, None, True), RiskManager(POLICY, None, True)
    for i in range(30):
        close = 100.0 + i
        once.on_candle(i * HOUR, EQUITY, {"BTC/USDT": close})
        twice.on_candle(i * HOUR, EQUITY, {"BTC/USDT": close})
        twice.on_candle(i * HOUR, EQUITY, {"BTC/USDT": close})
    assert once.snapshot() == twice.snapshot()


def test_a_disabled_halt_never_halts(btc_hourly: list[tuple[int, float]]) -> None:
    policy = POLICY.model_copy(update={"volatility_halt": POLICY.volatility_halt.model_copy(update={"enabled": False})})
    risk = RiskManager(policy, None, True)
    feed(risk, btc_hourly, "2020-02-21T00:00", "2020-03-13T00:00")
    assert risk.state().halted_symbols == ()
    assert risk.evaluate(entry("BTC/USDT", 5_000.0), at(ms("2020-03-12T10:00"))).action is RiskAction.APPROVED


@pytest.mark.parametrize("threshold", [20.0, 4.0])
def test_the_threshold_comes_from_the_policy(btc_hourly: list[tuple[int, float]], threshold: float) -> None:
    spec = POLICY.volatility_halt.model_copy(update={"zscore_threshold": threshold})
    risk = RiskManager(POLICY.model_copy(update={"volatility_halt": spec}), None, True)
    feed(risk, btc_hourly, "2020-02-21T00:00", "2020-03-12T11:00")
    assert risk.state().halted_symbols == (() if threshold == 20.0 else ("BTC/USDT",))
