"""A market's trading rules: amount step, price tick, minimum amount and minimum notional. Pure; no I/O.

Venues refuse an order that breaks them (Binance's ``LOT_SIZE``, ``PRICE_FILTER`` and ``NOTIONAL`` filters, Bybit's
``lotSizeFilter`` and ``priceFilter``), and ccxt truncates an amount to the step before it sends one. The runtime
rounds its own quantities down to the step before it stores an intent (``floor_amount``), the risk manager refuses
an entry that is below the minimums once rounded (``order_problem``), and the paper exchange applies the same rules
to every order it is given and to every price it fills at.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from decimal import Decimal

from slsbot_runtime.domain.types import split_symbol

#: How far (in steps) a float may miss an exact multiple of the step and still count as that multiple: the ratio
#: of two floats misses by a few units in the last place, relative to its size.
_RELATIVE_SLACK = 1e-12
_ABSOLUTE_SLACK = 1e-9
#: Quantities whose ``floor_amount`` a market's rules remember (fixed sizes ask a handful; Kelly sizes ask more).
FLOOR_MEMO_SIZE = 1024


@functools.lru_cache(maxsize=256)
def decimals_of(step: float) -> int:
    """How many decimal places a multiple of ``step`` needs: 5 for 0.00001, 1 for 0.5, 0 for 1 or 10."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


@functools.lru_cache(maxsize=256)
def decimal_fraction(step: float) -> tuple[int, int]:
    """``step`` as ``units / scale`` of its shortest decimal form, ``scale`` the power of ten of its decimals: (1,
    100000) for 0.00001, (5, 10) for 0.5, (10, 1) for 10."""
    value = Decimal(repr(step)).normalize()
    scale = 10 ** max(0, -int(value.as_tuple().exponent))
    return int(value * scale), scale


#: Below this many units of the last decimal, ``steps * units / scale`` is ``round(steps * step, decimals)`` bit for
#: bit: the product misses ``steps * units`` units by less than half of one (float error is 2.3e-16 of it), so both
#: are the double nearest to the same fraction, each correctly rounded (``round`` through its decimal digits, an
#: int's true division by its exact quotient), without ``round``'s trip through the digits (a microsecond a call).
_EXACT_UNITS = 2**50


def _multiple(steps: int, step: float, units: int, scale: int, decimals: int) -> float:
    """``round(steps * step, decimals)``: the ``steps``-th multiple of ``step`` (``decimal_fraction(step)`` is
    ``units, scale``) on its decimals."""
    exact = steps * units
    if -_EXACT_UNITS < exact < _EXACT_UNITS:
        return exact / scale
    return round(steps * step, decimals)


def _floor_steps(value: float, step: float) -> int:
    ratio = value / step
    return math.floor(ratio + ratio * _RELATIVE_SLACK + _ABSOLUTE_SLACK)


def _ceil_steps(value: float, step: float) -> int:
    ratio = value / step
    return math.ceil(ratio - ratio * _RELATIVE_SLACK - _ABSOLUTE_SLACK)


@dataclass(frozen=True, slots=True)
class MarketRules:
    """What one market accepts. ``source`` says where the numbers come from; refusals name it."""

    symbol: str
    amount_step: float  # quantities are whole multiples of this (Binance LOT_SIZE stepSize)
    price_tick: float  # prices are whole multiples of this (Binance PRICE_FILTER tickSize)
    min_amount: float = 0.0  # the smallest quantity (Binance LOT_SIZE minQty)
    min_notional: float = 0.0  # the smallest quantity x price, in the quote currency (Binance NOTIONAL minNotional)
    source: str = ""
    # The decimals of a multiple of the step and of the tick, worked out once (``decimals_of``): rounding runs on
    # every order and every fill, fast mode's hot path included.
    _amount_decimals: int = field(default=0, init=False, repr=False, compare=False)
    _price_decimals: int = field(default=0, init=False, repr=False, compare=False)
    # The step and the tick as exact fractions (``decimal_fraction``), for ``_multiple``.
    _amount_fraction: tuple[int, int] = field(default=(1, 1), init=False, repr=False, compare=False)
    _price_fraction: tuple[int, int] = field(default=(1, 1), init=False, repr=False, compare=False)
    # What ``floor_amount`` answered for each quantity asked (a pure function; up to FLOOR_MEMO_SIZE of them): an
    # order asks the same quantity three or four times (sizing, the intent, the exchange's check, the fill), and
    # the rounding (``round`` to the step's decimals) is the dearest part of it.
    _floors: dict[float, float] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("amount_step", "price_tick"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{self.symbol} market rules: {name} must be a positive number, got {value!r}")
        for name in ("min_amount", "min_notional"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{self.symbol} market rules: {name} must be zero or positive, got {value!r}")
        object.__setattr__(self, "_amount_decimals", decimals_of(self.amount_step))
        object.__setattr__(self, "_price_decimals", decimals_of(self.price_tick))
        object.__setattr__(self, "_amount_fraction", decimal_fraction(self.amount_step))
        object.__setattr__(self, "_price_fraction", decimal_fraction(self.price_tick))

    def floor_amount(self, quantity: float) -> float:
        """``quantity`` rounded down to a whole number of steps (what ccxt sends); 0.0 for less than one step.

        A quantity that is a multiple of the step up to float error keeps its value, so rounding twice is
        rounding once."""
        floors = self._floors
        floored = floors.get(quantity)
        if floored is not None:
            return floored
        if not quantity > 0:  # also NaN
            return 0.0
        step = self.amount_step
        ratio = quantity / step
        units, scale = self._amount_fraction
        steps = math.floor(ratio + ratio * _RELATIVE_SLACK + _ABSOLUTE_SLACK)
        floored = _multiple(steps, step, units, scale, self._amount_decimals)
        if len(floors) < FLOOR_MEMO_SIZE:
            floors[quantity] = floored
        return floored

    def round_price(self, price: float, direction: int = 0) -> float:
        """``price`` on the tick: to the nearest tick (0, what ccxt does to a limit price), up (+1) or down (-1)."""
        tick = self.price_tick
        if direction > 0:
            ticks = _ceil_steps(price, tick)
        elif direction < 0:
            ticks = _floor_steps(price, tick)
        else:
            ticks = round(price / tick)
        units, scale = self._price_fraction
        return _multiple(ticks, tick, units, scale, self._price_decimals)

    def is_on_step(self, quantity: float) -> bool:
        """Whether ``quantity`` is a positive whole number of steps (up to float error)."""
        floored = self.floor_amount(quantity)
        return floored > 0 and math.isclose(floored, quantity, rel_tol=1e-12, abs_tol=self.amount_step * 1e-9)

    def smallest_quantity(self, price: float | None) -> float:
        """The smallest quantity this market takes at ``price`` (every minimum met, on the step)."""
        step = self.amount_step
        smallest = max(self.min_amount, step)
        if price is not None and price > 0 and self.min_notional > 0:
            smallest = max(smallest, self.min_notional / price)
        return round(_ceil_steps(smallest, step) * step, decimals_of(step))

    def order_problem(self, quantity: float, price: float | None) -> str | None:
        """Why an order of ``quantity`` (already on the step) at ``price`` would be refused, naming the field, the
        rule and the smallest order that passes; None when it passes. Without a price the notional is not checked."""
        enough = quantity > 0 and quantity >= self.min_amount * (1 - 1e-9)
        notional = quantity * price if price is not None and price > 0 else None
        if enough and (notional is None or notional >= self.min_notional * (1 - 1e-9)):
            return None
        base, quote = split_symbol(self.symbol)
        where = f" ({self.source})" if self.source else ""
        fix = f"the smallest order is {self.smallest_quantity(price):g} {base}"
        if quantity <= 0:
            return f"quantity: rounds to 0 at {self.symbol}'s amount step {self.amount_step:g} {base}{where}; {fix}"
        if not enough:
            return (
                f"quantity: {quantity:g} {base} is below {self.symbol}'s minimum amount {self.min_amount:g} "
                f"{base}{where}; {fix}"
            )
        return (
            f"quantity: {quantity:g} {base} at {price:g} is {notional:.4g} {quote}, below {self.symbol}'s "
            f"minimum notional {self.min_notional:g} {quote}{where}; {fix}"
        )
