"""How big a new entry may be: fractional Kelly, per-trade bounds, breaker multiplier, exposure and leverage caps,
then the market's step and minimums.

Every percentage is of the strategy's *capital*: the equity, or the share of it the Strategy is allocated
(``allocationPercent``: equity x allocation / 100), which the manager passes as ``capital``.

Pure functions over the proposal, the portfolio and the limits; the manager decides *whether* to enter,
this module decides *how much*. Every cut is reported as a RiskEvent with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import PortfolioSnapshot
from slsbot_runtime.risk.base import RiskEvent, RiskRule, TradeProposal

#: Never bet more than a quarter of the full Kelly fraction, whatever the policy says.
MAX_KELLY_FRACTION = 0.25
# the caps' rules, read once: Python 3.11 reads an enum member through a Python-level hook, on every entry
_SYMBOL_EXPOSURE, _TOTAL_EXPOSURE, _LEVERAGE = RiskRule.SYMBOL_EXPOSURE, RiskRule.TOTAL_EXPOSURE, RiskRule.LEVERAGE


@dataclass(frozen=True, slots=True)
class SizingLimits:
    """The limits that shape one entry, read once from the policy and the strategy's sizing."""

    min_percent: float
    max_percent: float
    kelly_fraction: float
    max_symbol_exposure_percent: float
    max_total_exposure_percent: float
    max_leverage: float
    fixed_quantity: float | None  # set for fixedQuantity sizing


@dataclass(frozen=True, slots=True)
class BreakerReduction:
    """A tripped reduceSize level: its rule name, description and multiplier."""

    rule: str
    description: str
    multiplier: float


class SizedEntry(NamedTuple):
    quantity: float  # 0 when rejected
    rejected: bool
    reduced: bool
    events: tuple[RiskEvent, ...]


def full_kelly(win_rate: float, payoff_ratio: float) -> float:
    """The Kelly fraction ``p - (1 - p) / b`` for win probability ``p`` and win/loss payoff ratio ``b``."""
    return win_rate - (1.0 - win_rate) / payoff_ratio


def confidence_kelly(confidence: float) -> float:
    """Kelly without a track record: an even-money bet (b = 1) won with probability (1 + confidence) / 2.

    Then ``p - (1 - p) / b = 2p - 1 = confidence``: full confidence is a full-Kelly bet of all equity,
    zero confidence is no bet.
    """
    return confidence


def kelly_percent(proposal: TradeProposal, kelly_fraction: float) -> tuple[float, str]:
    """The fractional-Kelly size in percent of equity, and how it was derived."""
    fraction = min(kelly_fraction, MAX_KELLY_FRACTION)
    if proposal.win_rate is not None and proposal.payoff_ratio is not None:
        full = full_kelly(proposal.win_rate, proposal.payoff_ratio)
        basis = f"win rate {proposal.win_rate:.2f}, payoff {proposal.payoff_ratio:.2f}"
    else:
        full = confidence_kelly(proposal.confidence)
        basis = f"confidence {proposal.confidence:.2f}"
    return full * fraction * 100.0, f"{fraction:.2f} x full Kelly {full * 100:.2f}% ({basis})"


def max_added_quantity(
    *, cap_notional: float, other_notional: float, held_quantity: float, sign: int, price: float
) -> float:
    """The largest quantity traded in direction ``sign`` so that ``other + |held + sign * q| * price <= cap``."""
    return max((cap_notional - other_notional) / price - sign * held_quantity, 0.0)


def exit_on_market(quantity: float, price: float, rules: MarketRules | None) -> tuple[float, str | None]:
    """An exit of ``quantity`` as the market takes it: rounded down to its step, or 0 and why when what is left is
    below its minimums (dust no venue takes). Without rules, ``quantity`` as it is."""
    if rules is None:
        return quantity, None
    rounded = rules.floor_amount(quantity)
    problem = rules.order_problem(rounded, price)
    return (0.0, problem) if problem is not None else (rounded, None)


def size_entry(
    proposal: TradeProposal,
    portfolio: PortfolioSnapshot,
    limits: SizingLimits,
    reduction: BreakerReduction | None,
    capital: float | None = None,
) -> SizedEntry:
    """The quantity of a new entry after every sizing rule, in the order the docs list them. ``capital``: what the
    percentages are of, the allocated share of the equity (the whole equity when None)."""
    price = proposal.price
    basis = "equity" if capital is None or capital == portfolio.equity else "allocated capital"
    capital = portfolio.equity if capital is None else capital
    events: list[RiskEvent] = []
    reduced = False
    multiplier = 1.0 if reduction is None else reduction.multiplier

    if limits.fixed_quantity is not None:
        quantity = proposal.requested_quantity or limits.fixed_quantity
        percent = quantity * price / capital * 100.0
        if percent > limits.max_percent:
            quantity = limits.max_percent * capital / 100.0 / price
            what = f"fixed size {percent:.2f}% of {basis}"
            events.append(_event(RiskRule.PER_TRADE_MAX, what, limits, quantity))
            reduced = True
    else:
        percent, how = kelly_percent(proposal, limits.kelly_fraction)
        if percent <= 0:
            message = f"no edge: {how} gives {percent:.2f}% of {basis}; nothing to bet"
            return SizedEntry(0.0, rejected=True, reduced=False, events=(RiskEvent(RiskRule.NO_EDGE, message),))
        if percent > limits.max_percent:
            events.append(_event(RiskRule.PER_TRADE_MAX, f"size {percent:.2f}% of {basis} ({how})", limits, None))
            percent, reduced = limits.max_percent, True
        elif percent < limits.min_percent:
            message = (
                f"size {percent:.2f}% of {basis} ({how}) raised to the per-trade minimum {limits.min_percent:.2f}%"
            )
            events.append(RiskEvent(RiskRule.PER_TRADE_MIN, message))
            percent = limits.min_percent
        quantity = percent * capital / 100.0 / price

    if reduction is not None and multiplier < 1.0:
        before = quantity
        quantity *= multiplier
        message = (
            f"{reduction.description} multiplies new sizes by {multiplier:.2f}: quantity {before:.8g} -> {quantity:.8g}"
        )
        events.append(RiskEvent(reduction.rule, message))
        reduced = True

    quantity, capped = _apply_caps(proposal, portfolio, limits, quantity, events, capital, basis)
    reduced = reduced or capped
    floor = limits.min_percent * multiplier * capital / 100.0 / price
    if capped and quantity < floor:
        last = events[-1]
        minimum = limits.min_percent * multiplier
        message = f"{last.message}; what is left is below the per-trade minimum {minimum:.2f}% of {basis}"
        return SizedEntry(0.0, rejected=True, reduced=False, events=(*events[:-1], RiskEvent(last.rule, message)))
    rules = proposal.rules
    if rules is not None:  # what the market takes: whole steps, at least its minimums
        sized, quantity = quantity, rules.floor_amount(quantity)
        problem = rules.order_problem(quantity, price)
        if problem is not None:
            message = f"entry sized {sized:.8g} {proposal.symbol}: {problem}"
            return SizedEntry(
                0.0, rejected=True, reduced=False, events=(*events, RiskEvent(RiskRule.MARKET_MINIMUM, message))
            )
    return SizedEntry(quantity, rejected=False, reduced=reduced, events=tuple(events))


def _event(rule: RiskRule, what: str, limits: SizingLimits, quantity: float | None) -> RiskEvent:
    message = f"{what} cut to the per-trade maximum {limits.max_percent:.2f}%"
    if quantity is not None:
        message += f" (quantity {quantity:.8g})"
    return RiskEvent(rule, message)


def _apply_caps(
    proposal: TradeProposal,
    portfolio: PortfolioSnapshot,
    limits: SizingLimits,
    quantity: float,
    events: list[RiskEvent],
    capital: float,
    basis: str,
) -> tuple[float, bool]:
    """The quantity cut to the symbol exposure, total exposure and leverage caps, each a percentage of ``capital``
    (the equity, or its allocated share); appends one event per cut."""
    price, sign, symbol = proposal.price, proposal.side.sign, proposal.symbol
    positions = portfolio.positions
    held = positions.get(symbol)
    held_quantity = held.quantity if held is not None else 0.0
    others = 0  # what sum() of the other positions' exposure starts from, in the same order
    for other, position in positions.items():
        if other != symbol:
            others += abs(position.quantity) * portfolio.prices.get(other, position.average_price)
    capped = False
    for rule, cap_percent, other in (
        (_SYMBOL_EXPOSURE, limits.max_symbol_exposure_percent, 0.0),
        (_TOTAL_EXPOSURE, limits.max_total_exposure_percent, others),
        (_LEVERAGE, limits.max_leverage * 100.0, others),
    ):
        # max_added_quantity(cap_notional=cap_percent * capital / 100.0, other_notional=other, ...), inline
        room = (cap_percent * capital / 100.0 - other) / price - sign * held_quantity
        room = 0.0 if room < 0.0 else room  # max(room, 0.0) without the builtin's call
        if quantity > room:
            after = (other + abs(held_quantity + sign * quantity) * price) / capital * 100.0
            if rule is _LEVERAGE:
                detail = f"leverage would be {after / 100:.2f}x, above the {limits.max_leverage:.2f}x maximum"
            else:
                what = f"{symbol} exposure" if rule is _SYMBOL_EXPOSURE else "total exposure"
                detail = f"{what} would be {after:.2f}% of {basis}, above the {cap_percent:.2f}% cap"
            events.append(RiskEvent(rule, f"{detail}: quantity {quantity:.8g} -> {room:.8g}"))
            quantity, capped = room, True
    return quantity, capped
