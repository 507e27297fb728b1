"""``domain.trading_mode``: which orders only reduce a position, what each mode refuses, and the stored form."""

from __future__ import annotations

import pytest

from slsbot.api.health import TradingMode
from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.trading_mode import META_KEY, TradingModeState, refusal, would_increase
from slsbot_runtime.domain.types import Side

BUY, SELL = Side.BUY, Side.SELL


@pytest.mark.parametrize(
    ("position", "working", "side", "quantity", "increases"),
    [
        (0.0, [], BUY, 0.1, True),  # opens a long
        (0.0, [], SELL, 0.1, True),  # opens a short
        (1.0, [], BUY, 0.1, True),  # adds to the long
        (1.0, [], SELL, 0.4, False),  # reduces it
        (1.0, [], SELL, 1.0, False),  # closes it exactly
        (1.0, [], SELL, 1.5, True),  # would carry it past flat, into a short
        (-2.0, [], BUY, 2.0, False),  # closes a short
        (-2.0, [], SELL, 0.1, True),  # adds to the short
        (1.0, [(SELL, 1.0)], SELL, 0.5, True),  # the working exit already closes it: this one would open a short
        (1.0, [(SELL, 0.5)], SELL, 0.5, False),  # together they close it
        (1.0, [(BUY, 1.0)], SELL, 1.0, False),  # a working buy is not counted: it could only add
        (1.0, [(BUY, 1.0)], SELL, 1.5, True),  # ... so it cannot make room for a bigger sell either
    ],
)
def test_would_increase(position, working, side, quantity, increases) -> None:
    assert would_increase(position, working, side, quantity) is increases


def test_normal_refuses_nothing() -> None:
    assert refusal(TradingModeState(), increases=True, closing=False) is None


def test_safe_refuses_only_what_would_increase_and_says_why() -> None:
    safe = TradingModeState(TradingMode.SAFE, "3 orders rejected")
    assert refusal(safe, increases=False, closing=False) is None
    text = refusal(safe, increases=True, closing=False)
    assert text is not None and "safe mode (3 orders rejected)" in text and "reduce-only" in text


def test_halted_refuses_everything_but_its_own_flatten() -> None:
    halted = TradingModeState(TradingMode.HALTED, "operator", flatten=True, settled=False)
    assert refusal(halted, increases=False, closing=False) is not None
    assert refusal(halted, increases=True, closing=True) is not None  # a flatten never opens a position
    assert refusal(halted, increases=False, closing=True) is None


def test_stored_form_round_trips_and_a_bad_one_names_the_key() -> None:
    state = TradingModeState(TradingMode.HALTED, "kill", flatten=True, settled=False)
    assert TradingModeState.load({META_KEY: state.meta_value()}) == state
    assert TradingModeState.load({}) == TradingModeState()
    with pytest.raises(StateError, match="state meta trading_mode"):
        TradingModeState.load({META_KEY: {"mode": "sleepy"}})
