"""What the risk manager is asked and what it answers. The manager itself lives in ``risk.manager``.

The records made for every proposal (proposal, events, decision, journal entry) are NamedTuples: immutable, and
several times cheaper to build than frozen dataclasses on the order path."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import Side


class RiskAction(StrEnum):
    APPROVED = "approved"
    REDUCED = "reduced"
    REJECTED = "rejected"


class RiskRule(StrEnum):
    """The rule named in a ``RiskEvent``. Breaker levels are named by ``breaker_rule(level)``."""

    KILL_SWITCH = "kill_switch"
    MAX_DRAWDOWN = "max_drawdown"
    DAILY_LOSS = "daily_loss"
    LONG_ONLY = "long_only"
    VOLATILITY_HALT = "volatility_halt"
    ANOMALY = "anomaly"  # the symbol's latest candle scored above the anomaly threshold
    ANOMALY_HALT = "anomaly_halt"  # repeated anomalies halted entries for a cooldown
    INVALID_PROPOSAL = "invalid_proposal"
    NO_EDGE = "no_edge"
    PER_TRADE_MIN = "per_trade_min"
    PER_TRADE_MAX = "per_trade_max"
    SYMBOL_EXPOSURE = "symbol_exposure"
    TOTAL_EXPOSURE = "total_exposure"
    LEVERAGE = "leverage"
    MARKET_MINIMUM = "market_minimum"  # below the market's minimum amount or notional once on its step
    ALLOCATION = "allocation"  # the strategy is allocated 0% of the account's capital
    # the account's or global headroom pushed by the control plane (risk.headroom)
    ACCOUNT_HALT = "account_halt"  # entries halted across the account (daily loss, drawdown, severity 2)
    ACCOUNT_SIZE = "account_size"  # new sizes multiplied down across the account
    ACCOUNT_SYMBOL_EXPOSURE = "account_symbol_exposure"  # the account's room left on this symbol
    ACCOUNT_TOTAL_EXPOSURE = "account_total_exposure"  # the account's room left in total


def breaker_rule(level: int) -> str:
    """The rule name of circuit-breaker level ``level`` (1 is the mildest): ``breaker_level_2``."""
    return f"breaker_level_{level}"


class TradeProposal(NamedTuple):
    """An ensemble decision turned into a wish: trade ``symbol`` toward ``target_direction``."""

    symbol: str
    side: Side
    price: float
    confidence: float  # 0..1, from the ensemble
    is_entry: bool  # False for exits and reductions, which risk never blocks
    win_rate: float | None = None  # for Kelly sizing; from the strategy's own track record
    payoff_ratio: float | None = None
    requested_quantity: float | None = None  # fixed-quantity sizing asks for this
    rules: MarketRules | None = None  # the market's step and minimums, when the exchange knows them


class RiskEvent(NamedTuple):
    """One reason a proposal was reduced or rejected, recorded with the decision."""

    rule: str  # e.g. per_trade_max, symbol_exposure, daily_loss, drawdown, breaker_level_2, volatility_halt
    message: str


class RiskDecision(NamedTuple):
    action: RiskAction
    quantity: float
    events: tuple[RiskEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class RiskState:
    """What the manager knows after a candle: the engine flattens when ``must_flatten`` is true."""

    ts: int
    equity: float
    peak_equity: float
    drawdown_percent: float  # from the all-time peak; the max-drawdown limit uses it
    day_start_equity: float  # the UTC day's opening equity: the equity at 00:00, before its first candle
    daily_loss_percent: float
    breaker_level: int  # 0 = no level tripped, else 1..3 in increasing drawdown order
    breaker_action: str | None  # reduceSize, stopEntries, flattenAndHalt, or None
    size_multiplier: float  # applied to new entries; 1.0 unless a reduceSize level is tripped
    must_flatten: bool  # kill switch or flattenAndHalt: close every position, open nothing
    entries_allowed: bool  # False when any account-wide rule forbids new entries
    halted_symbols: tuple[str, ...]  # symbols under a volatility halt
    anomaly_halted_until: int | None = None  # while repeated anomalies halt entries: when the halt ends


class JournalEntry(NamedTuple):
    """One decision as the journal keeps it."""

    ts: int
    symbol: str
    side: Side
    is_entry: bool
    action: RiskAction
    quantity: float
    events: tuple[RiskEvent, ...]
