"""RiskPolicy: the limits a risk manager enforces for the strategies that use it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from slsbot.api.base import Duration, ObjectStatus, SpecModel
from slsbot.api.health import HealingPolicy, IncidentRules, Notifications


class BreakerAction(StrEnum):
    REDUCE_SIZE = "reduceSize"
    STOP_ENTRIES = "stopEntries"
    FLATTEN_AND_HALT = "flattenAndHalt"


class CircuitBreakerLevel(SpecModel):
    """A level trips when the drawdown from the equity peak reaches ``drawdown_percent``."""

    action: BreakerAction = Field(description="reduceSize, then stopEntries, then flattenAndHalt.")
    drawdown_percent: float = Field(gt=0, le=100, description="Drawdown from peak equity that trips this level.")
    size_multiplier: float = Field(
        default=0.5, gt=0, le=1, description="For reduceSize: multiply every new position's size by this."
    )
    cooldown: Duration = Field(default="1h", description="How long the level stays tripped once triggered.")


def _default_levels() -> list[CircuitBreakerLevel]:
    return [
        CircuitBreakerLevel(action=BreakerAction.REDUCE_SIZE, drawdown_percent=5, size_multiplier=0.5, cooldown="1h"),
        CircuitBreakerLevel(action=BreakerAction.STOP_ENTRIES, drawdown_percent=10, cooldown="6h"),
        CircuitBreakerLevel(action=BreakerAction.FLATTEN_AND_HALT, drawdown_percent=15, cooldown="24h"),
    ]


class CircuitBreaker(SpecModel):
    levels: list[CircuitBreakerLevel] = Field(
        default_factory=_default_levels,
        max_length=3,
        description="At most three levels, in increasing drawdown order.",
    )


class VolatilityHalt(SpecModel):
    """Stop new entries while realised volatility is far above its own recent history."""

    enabled: bool = True
    window: int = Field(default=24, ge=2, le=10_000, description="Candles in the volatility estimate.")
    zscore_threshold: float = Field(
        default=4.0, gt=0, le=100, description="Halt while volatility is this many deviations above its mean."
    )
    cooldown: Duration = "1h"


class AnomalyAction(StrEnum):
    STOP_ENTRIES = "stopEntries"
    FLATTEN_AND_HALT = "flattenAndHalt"


class AnomalyPolicy(SpecModel):
    """What the anomaly detector's scores do: the Strategy's ``ml.models`` entry with ``role: anomaly`` scores every
    candle (an isolation forest: about 0.5 for an ordinary candle, towards 1 for one unlike its training window)."""

    enabled: bool = Field(
        default=True, description="Apply the veto and the halt when the Strategy has an anomaly model."
    )
    threshold: float = Field(
        default=0.75,
        gt=0.5,
        lt=1,
        description="A candle scoring above this is anomalous: no new entry on its symbol at that candle.",
    )
    count: int = Field(
        default=3, ge=1, le=1000, description="Anomalous candles of one symbol within the window that start a halt."
    )
    window: Duration = Field(default="24h", description="How far back anomalous candles are counted.")
    action: AnomalyAction = Field(
        default=AnomalyAction.STOP_ENTRIES,
        description="stopEntries: no new entries on any symbol during the halt; flattenAndHalt: also close "
        "every position.",
    )
    cooldown: Duration = Field(default="12h", description="How long the halt lasts after the anomaly that tripped it.")


class PerTradeLimits(SpecModel):
    """Size of one new position as a percent of equity."""

    min_percent: float = Field(default=1.0, gt=0, le=100)
    max_percent: float = Field(default=15.0, gt=0, le=100)


class RiskScope(StrEnum):
    STRATEGY = "strategy"
    ACCOUNT = "account"
    GLOBAL = "global"


class RiskLimits(SpecModel):
    """The limits themselves; a RiskPolicy holds all of them, a Strategy may override some."""

    per_trade: PerTradeLimits | None = None
    kelly_fraction: float | None = Field(
        default=None, gt=0, le=0.25, description="Fraction of the Kelly bet to size with; capped at 0.25."
    )
    max_symbol_exposure_percent: float | None = Field(default=None, gt=0, le=1000)
    max_total_exposure_percent: float | None = Field(default=None, gt=0, le=1000)
    max_leverage: float | None = Field(default=None, ge=1, le=125)
    daily_loss_limit_percent: float | None = Field(default=None, gt=0, le=100)
    max_drawdown_percent: float | None = Field(default=None, gt=0, le=100)


class RiskPolicySpec(SpecModel):
    per_trade: PerTradeLimits = Field(default_factory=PerTradeLimits)
    kelly_fraction: float = Field(default=0.25, gt=0, le=0.25, description="Capped at a quarter Kelly.")
    max_symbol_exposure_percent: float = Field(default=50.0, gt=0, le=1000)
    max_total_exposure_percent: float = Field(default=100.0, gt=0, le=1000)
    max_leverage: float = Field(default=1.0, ge=1, le=125)
    daily_loss_limit_percent: float = Field(default=5.0, gt=0, le=100)
    max_drawdown_percent: float = Field(default=20.0, gt=0, le=100)
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker)
    volatility_halt: VolatilityHalt = Field(default_factory=VolatilityHalt)
    anomaly: AnomalyPolicy = Field(default_factory=AnomalyPolicy)
    scope: RiskScope = Field(
        default=RiskScope.STRATEGY,
        description="strategy: each Strategy on its own; account: exposure, daily loss and drawdown limits across "
        "every Strategy of an account; global: across every account that uses this policy.",
    )
    kill_switch: bool = Field(default=False, description="When true: cancel orders, flatten and halt every bot.")
    healing: HealingPolicy = Field(default_factory=HealingPolicy, description="When and how runtimes are healed.")
    incidents: IncidentRules = Field(default_factory=IncidentRules, description="Severity rules for incidents.")
    notifications: Notifications = Field(
        default_factory=Notifications, description="Who is told about incidents, grouped and rate-limited."
    )

    def with_overrides(self, overrides: RiskLimits | None) -> RiskPolicySpec:
        """The policy with a Strategy's overrides applied; overrides can only be set field by field."""
        if overrides is None:
            return self
        changes = overrides.model_dump(exclude_none=True)
        merged = self.model_dump()
        merged.update(changes)
        return RiskPolicySpec.model_validate(merged)


class RiskPolicyStatus(ObjectStatus):
    strategies: int = Field(default=0, ge=0, description="Strategies that use this policy.")
