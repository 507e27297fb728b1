"""Market rules: rounding to the step and the tick as ccxt and the venues do, and refusals that name the rule."""

from __future__ import annotations

import math
import random

import pytest

from slsbot_runtime.domain.market_rules import FLOOR_MEMO_SIZE, MarketRules, _multiple, decimal_fraction, decimals_of

BTC = MarketRules("BTC/USDT", 0.00001, 0.01, 0.00001, 5.0, "Binance spot filters")
DOGE = MarketRules("DOGE/USDT", 1.0, 0.00001, 1.0, 5.0)


def test_decimals_follow_the_step() -> None:
    assert [decimals_of(s) for s in (0.00001, 0.0001, 0.1, 0.5, 1.0, 10.0, 2.5e-05)] == [5, 4, 1, 1, 0, 0, 6]


def test_amounts_round_down_to_whole_steps() -> None:
    assert BTC.floor_amount(0.0123456) == 0.01234
    assert BTC.floor_amount(0.000019999) == 0.00001
    assert BTC.floor_amount(0.000009) == 0.0
    assert BTC.floor_amount(1e-13) == 0.0
    assert BTC.floor_amount(-1.0) == 0.0
    assert BTC.floor_amount(float("nan")) == 0.0
    assert DOGE.floor_amount(1234.99) == 1234.0


def test_an_exact_multiple_survives_float_error_and_rounding_twice_changes_nothing() -> None:
    rules = MarketRules("ETH/USDT", 0.001, 0.01)
    assert 0.1 + 0.2 == 0.30000000000000004 and 0.7 - 0.4 == 0.29999999999999993
    assert rules.floor_amount(0.1 + 0.2) == 0.3
    assert rules.floor_amount(0.7 - 0.4) == 0.3  # not 0.299
    big = MarketRules("BTC/USDT", 0.00001, 0.01)
    assert big.floor_amount(123.45678) == 123.45678  # 12,345,678 steps
    for value in (0.0123456, 0.30000000000000004, 987.654321, 5e-05):
        once = big.floor_amount(value)
        assert big.floor_amount(once) == once


def test_prices_round_to_the_tick_in_the_direction_asked() -> None:
    assert BTC.round_price(110.044, 1) == 110.05
    assert BTC.round_price(110.044, -1) == 110.04
    assert BTC.round_price(110.044) == 110.04
    assert BTC.round_price(110.05, 1) == 110.05  # already on the tick: unchanged either way
    assert BTC.round_price(110.05, -1) == 110.05
    assert DOGE.round_price(0.0984649, 1) == 0.09847


def test_order_problems_name_the_field_the_rule_and_the_smallest_order() -> None:
    assert BTC.order_problem(0.001, 40_000.0) is None
    zero = BTC.order_problem(0.0, 40_000.0)
    assert zero is not None and zero.startswith("quantity: rounds to 0 at BTC/USDT's amount step 1e-05 BTC")
    notional = BTC.order_problem(0.0001, 40_000.0)
    assert notional == (
        "quantity: 0.0001 BTC at 40000 is 4 USDT, below BTC/USDT's minimum notional 5 USDT (Binance spot filters); "
        "the smallest order is 0.00013 BTC"
    )
    below = DOGE.order_problem(0.5, 0.1)
    assert below is not None and "below DOGE/USDT's minimum amount 1 DOGE" in below
    assert BTC.order_problem(0.0001, None) is None  # no price: the notional cannot be checked
    assert BTC.smallest_quantity(40_000.0) == 0.00013  # 5 / 40000 = 0.000125, up to the step


@pytest.mark.parametrize(
    ("field", "changes"),
    [("amount_step", {"amount_step": 0.0}), ("price_tick", {"price_tick": float("inf")}),
     ("min_notional", {"min_notional": -1.0})],
)  # fmt: skip
def test_rules_refuse_nonsense_naming_the_field(field: str, changes: dict[str, float]) -> None:
    values = {"amount_step": 0.001, "price_tick": 0.01, "min_amount": 0.0, "min_notional": 0.0, **changes}
    with pytest.raises(ValueError, match=field):
        MarketRules("X/USDT", **values)


def test_on_step_means_a_positive_whole_number_of_steps() -> None:
    assert BTC.is_on_step(0.01234) and BTC.is_on_step(0.1 + 0.2)
    assert not BTC.is_on_step(0.0123456)
    assert not BTC.is_on_step(1e-9) and not BTC.is_on_step(0.0)


def test_a_remembered_floor_is_the_floor_worked_out_afresh() -> None:
    """``floor_amount`` remembers its answers (an order asks the same quantity several times): the same value, bit for
    bit, whether remembered, worked out by fresh rules, or asked once the memo is full."""
    rng = random.Random(3)
    quantities = [rng.choice([0.1, 1e-5, 0.0, -0.0, -1.0, 12.3456789, rng.uniform(0, 5)]) for _ in range(10_000)]
    quantities += [math.nan]
    rules = MarketRules("BTC/USDT", 1e-5, 0.01, 1e-5, 5.0)
    for quantity in quantities:
        fresh = MarketRules("BTC/USDT", 1e-5, 0.01, 1e-5, 5.0).floor_amount(quantity)
        assert repr(rules.floor_amount(quantity)) == repr(fresh)
        assert repr(rules.floor_amount(quantity)) == repr(fresh)  # asked again: remembered
    assert len(rules._floors) == FLOOR_MEMO_SIZE  # bounded
    assert rules == MarketRules("BTC/USDT", 1e-5, 0.01, 1e-5, 5.0)  # the memo is no part of the rules


def test_multiples_on_the_step_are_rounds_to_its_decimals_bit_for_bit() -> None:
    """``floor_amount`` and ``round_price`` form the multiple from the step as an exact fraction, not with ``round``:
    the same double as ``round(steps * step, decimals)``, for the venues' steps and ticks, over the sizes of
    quantities and prices and up to where the fraction gives way to ``round`` again."""
    rng = random.Random(11)
    steps = [1e-8, 1e-5, 2.5e-05, 0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 10.0, 100.0, 1e-05 * 3]
    for step in steps:
        units, scale = decimal_fraction(step)
        decimals = decimals_of(step)
        counts = [0, 1, 2, 3, 7, 10, 99, 12_345, 2**40, 2**50 // units - 1, 2**50 // units + 1, 2**60]
        counts += [rng.randrange(1, 10**k) for k in range(1, 16) for _ in range(300)]
        for count in counts:
            assert repr(_multiple(count, step, units, scale, decimals)) == repr(round(count * step, decimals))
    rules = MarketRules("BTC/USDT", 0.00001, 0.01)
    for _ in range(20_000):  # through the rules themselves, against the arithmetic they replaced
        quantity, price = rng.uniform(0, 1000), rng.uniform(0.001, 200_000)
        ratio = quantity / 0.00001
        floored = math.floor(ratio + ratio * 1e-12 + 1e-9) * 0.00001
        assert repr(rules.floor_amount(quantity)) == repr(round(floored, 5))
        assert repr(rules.round_price(price)) == repr(round(round(price / 0.01) * 0.01, 2))
