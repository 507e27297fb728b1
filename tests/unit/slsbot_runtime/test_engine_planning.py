"""The pure per-symbol plan: what to cancel, exit or propose, from the signal, position and working orders."""

from __future__ import annotations

import pytest

from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import Side
from slsbot_runtime.engine.planning import (
    CancelOrder,
    ExitPosition,
    ProposeEntry,
    WorkingOrder,
    plan_symbol,
    target_sign,
)


def plan(direction: float, position: float = 0.0, working: list[WorkingOrder] | None = None, **flags: object):
    options = {"long_only": True, "must_flatten": False, "entries_allowed": True, **flags}
    return plan_symbol(direction=direction, position=position, working=working or [], **options)


@pytest.mark.parametrize(
    ("direction", "long_only", "must_flatten", "expected"),
    [
        (0.4, True, False, 1),
        (-0.2, True, False, 0),
        (-0.2, False, False, -1),
        (0.0, True, False, None),
        (1.0, True, True, 0),
    ],
)
def test_target(direction: float, long_only: bool, must_flatten: bool, expected: int | None) -> None:
    assert target_sign(direction, long_only=long_only, must_flatten=must_flatten) == expected


def test_flat_and_long_signal_proposes_an_entry_unless_entries_are_off() -> None:
    assert plan(0.7) == [ProposeEntry(Side.BUY, "enter long")]
    assert plan(0.7, entries_allowed=False) == []


def test_long_and_no_longer_long_exits() -> None:
    assert plan(-1.0, position=2.0) == [ExitPosition(Side.SELL, "exit long: target flat")]
    assert plan(-1.0, position=2.0, entries_allowed=False) == [ExitPosition(Side.SELL, "exit long: target flat")]
    assert plan(1.0, position=2.0, must_flatten=True) == [ExitPosition(Side.SELL, "exit long: target flat")]


def test_no_opinion_and_already_there_do_nothing() -> None:
    assert plan(0.0, position=2.0) == []
    assert plan(1.0, position=2.0) == []
    assert plan(-1.0, position=0.0) == []


def test_a_working_order_toward_the_target_is_left_alone_and_others_are_canceled() -> None:
    entry = WorkingOrder("entry", Side.BUY)
    assert plan(1.0, position=0.5, working=[entry]) == []  # a partially filled entry keeps filling
    assert plan(-1.0, position=0.5, working=[entry]) == [
        CancelOrder("entry", "target is flat"),
        ExitPosition(Side.SELL, "exit long: target flat"),
    ]
    exit_order = WorkingOrder("exit", Side.SELL)
    assert plan(-1.0, position=0.5, working=[exit_order]) == []
    assert plan(1.0, position=0.5, working=[exit_order]) == [CancelOrder("exit", "target is long")]
    assert plan(-1.0, position=0.0, working=[entry]) == [CancelOrder("entry", "target is flat")]


def test_a_reversal_exits_first_when_shorts_are_allowed() -> None:
    assert plan(-1.0, position=1.0, long_only=False) == [ExitPosition(Side.SELL, "exit long: target short")]
    assert plan(-1.0, position=0.0, long_only=False) == [ProposeEntry(Side.SELL, "enter short")]


BTC_RULES = MarketRules("BTC/USDT", amount_step=0.00001, price_tick=0.01, min_amount=0.00001)


def test_a_rest_below_one_amount_step_is_dust_and_counts_as_flat() -> None:
    # 0.01 BTC bought in three partial fills, each paying its fee in BTC rounded to 8 decimals, then 0.00999 sold:
    # 1e-08 BTC is left, which no order can sell. Held as "long", it kept the bot from ever entering again.
    dust = 1e-08
    assert plan(0.7, position=dust, rules=BTC_RULES) == [ProposeEntry(Side.BUY, "enter long")]
    assert plan(-0.7, position=dust, rules=BTC_RULES) == []  # no exit the exchange would refuse
    assert plan(0.7, position=dust) == []  # without the market's rules only float noise is flat, as before


def test_one_amount_step_is_a_position() -> None:
    assert plan(0.7, position=0.00001, rules=BTC_RULES) == []
    assert plan(-0.7, position=0.00001, rules=BTC_RULES) == [ExitPosition(Side.SELL, "exit long: target flat")]
