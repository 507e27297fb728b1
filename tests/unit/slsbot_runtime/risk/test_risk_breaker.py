"""The three-level drawdown circuit breaker: escalation order, cooldowns, flatten-and-halt and its release."""

from __future__ import annotations

import pytest

from slsbot.api import RiskPolicySpec
from slsbot_runtime.domain.types import PortfolioSnapshot, Position, Side
from slsbot_runtime.risk.base import RiskAction, RiskRule, TradeProposal
from slsbot_runtime.risk.manager import RiskManager

HOUR = 3_600_000
MINUTE = 60_000
START = 10 * 86_400_000  # a UTC midnight; the default daily limit is lifted so only the breaker speaks
PRICE = 100.0
POLICY = RiskPolicySpec(daily_loss_limit_percent=100)  # breaker levels: 5% / 10% / 15%, cooldowns 1h / 6h / 24h


def entry() -> TradeProposal:
    return TradeProposal("BTC/USDT", Side.BUY, PRICE, 0.3, True)


def at(ts: int, equity: float, btc: float = 0.0) -> PortfolioSnapshot:
    positions = {"BTC/USDT": Position("BTC/USDT", btc, PRICE)} if btc else {}
    return PortfolioSnapshot(ts=ts, cash=equity, equity=equity, positions=positions, prices={"BTC/USDT": PRICE})


def started(policy: RiskPolicySpec = POLICY) -> RiskManager:
    risk = RiskManager(policy, None, True)
    risk.on_candle(START, 10_000.0)
    return risk


def test_levels_escalate_in_drawdown_order_with_their_actions() -> None:
    risk = started()
    state = risk.on_candle(START + HOUR, 9_400.0)  # 6%
    assert (state.breaker_level, state.breaker_action, state.size_multiplier) == (1, "reduceSize", 0.5)
    reduced = risk.evaluate(entry(), at(START + HOUR, 9_400.0))
    assert reduced.action is RiskAction.REDUCED
    assert reduced.quantity == pytest.approx(0.075 * 9_400 / PRICE * 0.5)  # 7.5% of equity, halved
    assert [event.rule for event in reduced.events] == ["breaker_level_1"]
    assert "0.50" in reduced.events[0].message

    state = risk.on_candle(START + 2 * HOUR, 8_900.0)  # 11%
    assert (state.breaker_level, state.breaker_action, state.entries_allowed) == (2, "stopEntries", False)
    stopped = risk.evaluate(entry(), at(START + 2 * HOUR, 8_900.0))
    assert [event.rule for event in stopped.events] == ["breaker_level_2"]
    assert "11.00%" in stopped.events[0].message and "10.00%" in stopped.events[0].message
    assert not risk.must_flatten

    state = risk.on_candle(START + 3 * HOUR, 8_400.0)  # 16%
    assert (state.breaker_level, state.breaker_action, state.must_flatten) == (3, "flattenAndHalt", True)
    assert risk.breaker_level == 3 and risk.must_flatten


def test_a_deep_drop_escalates_straight_to_the_top_level() -> None:
    risk = started()
    state = risk.on_candle(START + HOUR, 8_000.0)  # 20% in one candle
    assert state.breaker_level == 3 and state.must_flatten
    assert {item["level"] for item in risk.snapshot()["breaker"]["tripped"]} == {1, 2, 3}


def test_a_level_stays_tripped_for_its_cooldown_even_after_recovery() -> None:
    risk = started()
    risk.on_candle(START + HOUR, 9_400.0)  # level 1 trips, cooldown 1h
    assert risk.on_candle(START + HOUR + 30 * MINUTE, 9_900.0).breaker_level == 1  # 1% drawdown, in cooldown
    assert risk.on_candle(START + 2 * HOUR - 1, 9_900.0).breaker_level == 1
    state = risk.on_candle(START + 2 * HOUR, 9_900.0)
    assert (state.breaker_level, state.size_multiplier) == (0, 1.0)
    assert risk.evaluate(entry(), at(START + 2 * HOUR, 9_900.0)).action is RiskAction.APPROVED


def test_de_escalation_needs_both_the_cooldown_and_the_drawdown_back_below() -> None:
    risk = started()
    risk.on_candle(START + HOUR, 8_900.0)  # 11%: levels 1 and 2
    assert risk.on_candle(START + 7 * HOUR, 8_900.0).breaker_level == 2  # cooldown over, still 11%
    state = risk.on_candle(START + 8 * HOUR, 9_200.0)  # 8%: level 2 releases, level 1 (5%) holds
    assert (state.breaker_level, state.entries_allowed) == (1, True)
    assert risk.on_candle(START + 9 * HOUR, 9_600.0).breaker_level == 0  # 4%


def test_escalation_is_immediate_during_a_lower_levels_cooldown() -> None:
    risk = started()
    risk.on_candle(START + HOUR, 9_400.0)
    assert risk.on_candle(START + HOUR + MINUTE, 8_900.0).breaker_level == 2


def test_flatten_and_halt_lets_exits_out_and_releases_after_its_cooldown_on_a_flat_book() -> None:
    risk = started()
    risk.on_candle(START + HOUR, 8_400.0)  # 16%: flatten and halt, 24h
    exit_all = TradeProposal("BTC/USDT", Side.SELL, PRICE, 1.0, False)
    decision = risk.evaluate(exit_all, at(START + HOUR, 8_400.0, btc=30.0))
    assert (decision.action, decision.quantity) == (RiskAction.APPROVED, 30.0)
    blocked = risk.evaluate(entry(), at(START + HOUR, 8_400.0))
    assert [event.rule for event in blocked.events] == ["breaker_level_3"]

    state = risk.on_candle(START + 25 * HOUR - 1, 8_400.0)  # flat book, just before the cooldown ends
    assert state.must_flatten and state.breaker_level == 3
    state = risk.on_candle(START + 25 * HOUR, 8_400.0)
    # the loss is accepted: the breaker measures from 8,400 now, the hard limit still from 10,000
    assert (state.breaker_level, state.must_flatten, state.entries_allowed) == (0, False, True)
    assert state.drawdown_percent == pytest.approx(16.0)
    assert risk.evaluate(entry(), at(START + 25 * HOUR, 8_400.0)).action is RiskAction.APPROVED
    assert risk.on_candle(START + 26 * HOUR, 7_900.0).breaker_level == 1  # 5.95% below the new peak


def test_the_max_drawdown_limit_still_holds_after_the_breaker_released() -> None:
    risk = started()
    risk.on_candle(START + HOUR, 8_400.0)
    risk.on_candle(START + 25 * HOUR, 8_400.0)
    decision = risk.evaluate(entry(), at(START + 25 * HOUR, 7_950.0))  # 20.5% below 10,000
    assert RiskRule.MAX_DRAWDOWN in [event.rule for event in decision.events]


def test_levels_come_from_the_policy_and_are_ordered_by_drawdown() -> None:
    policy = RiskPolicySpec.model_validate(
        {
            "dailyLossLimitPercent": 100,
            "circuitBreaker": {
                "levels": [
                    {"action": "stopEntries", "drawdownPercent": 3, "cooldown": "30m"},
                    {"action": "reduceSize", "drawdownPercent": 2, "sizeMultiplier": 0.25, "cooldown": "10m"},
                ]
            },
        }
    )
    risk = started(policy)
    state = risk.on_candle(START + HOUR, 9_750.0)  # 2.5%
    assert (state.breaker_level, state.breaker_action, state.size_multiplier) == (1, "reduceSize", 0.25)
    state = risk.on_candle(START + 2 * HOUR, 9_650.0)  # 3.5%
    assert (state.breaker_level, state.breaker_action, state.must_flatten) == (2, "stopEntries", False)
    assert risk.on_candle(START + 2 * HOUR + 30 * MINUTE, 9_900.0).breaker_level == 0


def test_no_levels_means_no_breaker() -> None:
    risk = started(RiskPolicySpec(daily_loss_limit_percent=100, circuit_breaker={"levels": []}))
    state = risk.on_candle(START + HOUR, 8_500.0)
    assert (state.breaker_level, state.must_flatten, state.entries_allowed) == (0, False, True)
