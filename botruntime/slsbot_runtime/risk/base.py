"""What the risk manager is asked and what it answers. The manager itself lives in ``risk.manager``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from slsbot_runtime.domain.types import Side


class RiskAction(StrEnum):
    APPROVED = "approved"
    REDUCED = "reduced"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class TradeProposal:
    """An ensemble decision turned into a wish: trade ``symbol`` toward ``target_direction``."""

    symbol: str
    side: Side
    price: float
    confidence: float  # 0..1, from the ensemble
    is_entry: bool  # False for exits and reductions, which risk never blocks
    win_rate: float | None = None  # for Kelly sizing; from the strategy's own track record
    payoff_ratio: float | None = None
    requested_quantity: float | None = None  # fixed-quantity sizing asks for this


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """One reason a proposal was reduced or rejected, recorded with the decision."""

    rule: str  # e.g. per_trade_max, symbol_exposure, daily_loss, drawdown, breaker_level_2, volatility_halt
    message: str


@dataclass(frozen=True, slots=True)
class RiskDecision:
    action: RiskAction
    quantity: float
    events: tuple[RiskEvent, ...] = field(default_factory=tuple)
