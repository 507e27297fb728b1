"""snapshot()/restore(): a restored manager makes exactly the decisions the original would have made."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from slsbot.api import RiskPolicySpec
from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import PortfolioSnapshot, Position, Side
from slsbot_runtime.risk.base import TradeProposal
from slsbot_runtime.risk.manager import RiskManager

HOUR = 3_600_000
# default limits, except the hard drawdown stop, so that the breaker's release shows up after the crash
POLICY = RiskPolicySpec(max_drawdown_percent=100)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def proposals(close: float) -> list[TradeProposal]:
    return [
        TradeProposal("BTC/USDT", Side.BUY, close, 0.6, True),
        TradeProposal("BTC/USDT", Side.BUY, close, 0.6, True, win_rate=0.55, payoff_ratio=1.5),
        TradeProposal("BTC/USDT", Side.SELL, close, 0.6, True),
        TradeProposal("BTC/USDT", Side.SELL, close, 1.0, False),
    ]


def step(risk: RiskManager, ts: int, close: float, first_close: float) -> list[object]:
    """One candle of a bot holding 0.4 BTC bought at the first close: equity follows the price."""
    equity = 10_000.0 + 0.4 * (close - first_close)
    state = risk.on_candle(ts, equity, {"BTC/USDT": close})
    book = PortfolioSnapshot(
        ts=ts,
        cash=0.0,
        equity=equity,
        positions={"BTC/USDT": Position("BTC/USDT", 0.4, first_close)},
        prices={"BTC/USDT": close},
    )
    return [state, *(risk.evaluate(proposal, book) for proposal in proposals(close))]


def test_restore_gives_identical_decisions_through_the_march_2020_crash(btc_hourly) -> None:
    candles = [item for item in btc_hourly if ms("2020-02-20T00:00") <= item[0] < ms("2020-03-16T00:00")]
    first_close = candles[0][1]
    cut = next(i for i, (ts, _) in enumerate(candles) if ts == ms("2020-03-12T12:00"))
    original = RiskManager(POLICY, None, True)
    for ts, close in candles[:cut]:
        step(original, ts, close, first_close)
    saved = json.loads(json.dumps(original.snapshot()))
    assert saved["breaker"]["tripped"], "the crash should have tripped the breaker before the snapshot"
    assert saved["volatility"]["BTC/USDT"]["halted_until"] is not None

    restored = RiskManager(POLICY, None, True)
    restored.restore(saved)
    assert restored.snapshot() == original.snapshot()
    entry_actions = set()
    for ts, close in candles[cut:]:
        expected = step(original, ts, close, first_close)
        assert step(restored, ts, close, first_close) == expected
        entry_actions.update(str(decision.action) for decision in expected[1:3])
    # the replay crossed halts and their releases, not one constant answer
    assert entry_actions == {"approved", "rejected"}
    assert restored.snapshot() == original.snapshot()


def test_a_fresh_manager_differs_so_the_round_trip_test_can_fail(btc_hourly) -> None:
    candles = [item for item in btc_hourly if ms("2020-03-01T00:00") <= item[0] < ms("2020-03-12T12:00")]
    first_close = candles[0][1]
    original = RiskManager(RiskPolicySpec(), None, True)
    for ts, close in candles:
        step(original, ts, close, first_close)
    fresh = RiskManager(RiskPolicySpec(), None, True)
    ts = candles[-1][0] + HOUR
    assert step(fresh, ts, 7_000.0, first_close) != step(original, ts, 7_000.0, first_close)


def test_the_opening_equity_set_before_the_first_candle_survives_a_round_trip() -> None:
    policy = RiskPolicySpec(daily_loss_limit_percent=5, circuit_breaker={"levels": []})
    original = RiskManager(policy, None, True)
    original.set_opening_equity(10_000.0)
    saved = json.loads(original.snapshot_json())
    assert saved == original.snapshot() and saved["ts"] is None and saved["equity"] == 10_000.0
    restored = RiskManager(policy, None, True)
    restored.restore(saved)
    assert restored.snapshot() == original.snapshot()
    assert restored.on_candle(0, 9_400.0) == original.on_candle(0, 9_400.0)
    assert restored.state().day_start_equity == 10_000.0 and not restored.state().entries_allowed


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda data: data.update(peak_equity="lots"), "peak_equity"),
        (lambda data: data["breaker"].update(tripped=[{"level": 9}]), "breaker.tripped.0.level"),
        (lambda data: data["volatility"].update({"BTC/USDT": {"last_ts": 1, "last_close": -3}}), "last_close"),
        (lambda data: data.update(version=7), "version"),
        (lambda data: data.update(surprise=1), "surprise"),
    ],
)
def test_a_bad_snapshot_is_refused_naming_the_field_and_changes_nothing(mutate, field: str) -> None:
    risk = RiskManager(RiskPolicySpec(), None, True)
    risk.on_candle(0, 10_000.0, {"BTC/USDT": 100.0})
    risk.on_candle(HOUR, 9_000.0, {"BTC/USDT": 90.0})
    data = json.loads(json.dumps(risk.snapshot()))
    mutate(data)
    before = risk.snapshot()
    with pytest.raises(StateError, match=field.replace(".", r"\.")):
        risk.restore(data)
    assert risk.snapshot() == before
    with pytest.raises(StateError, match="expected an object"):
        risk.restore([1, 2])  # type: ignore[arg-type]


def test_tripped_levels_follow_their_action_into_a_changed_policy() -> None:
    risk = RiskManager(RiskPolicySpec(daily_loss_limit_percent=100), None, True)
    risk.on_candle(0, 10_000.0)
    risk.on_candle(HOUR, 8_900.0)  # levels 1 (reduceSize) and 2 (stopEntries)
    two_levels = RiskPolicySpec.model_validate(
        {
            "dailyLossLimitPercent": 100,
            "circuitBreaker": {"levels": [{"action": "stopEntries", "drawdownPercent": 12, "cooldown": "6h"}]},
        }
    )
    changed = RiskManager(two_levels, None, True)
    changed.restore(risk.snapshot())
    state = changed.state()
    assert (state.breaker_level, state.breaker_action, state.entries_allowed) == (1, "stopEntries", False)
    assert [item["until_ts"] for item in changed.snapshot()["breaker"]["tripped"]] == [HOUR + 6 * HOUR]
