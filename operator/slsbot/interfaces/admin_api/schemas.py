"""What the admin API returns. Stored rows use the store's ``*Public`` models; these are the views built here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from slsbot.api import Experiment, ExperimentStatus, StrategyStatus
from slsbot.domain.admin_data import AdminObject, RuntimeView
from slsbot.domain.conditions import READY


class ConditionView(BaseModel):
    type: str
    status: str
    reason: str
    message: str
    last_transition_time: datetime
    observed_generation: int


class StrategyView(BaseModel):
    name: str
    namespace: str
    phase: str = Field(description="Pending, Progressing, Running, Paused, Degraded, Failed or Terminating.")
    ready: str = Field(description="The Ready condition's status: True, False or Unknown (no condition yet).")
    reason: str | None = Field(description="The Ready condition's reason, e.g. RuntimeReady, BackOff, InvalidSpec.")
    conditions: list[ConditionView]
    generation: int
    observed_generation: int
    paused: bool = Field(description="The desired paused flag: the admin override if set, else the YAML spec.")
    paused_override: bool | None = Field(description="Set by POST .../pause and .../resume; None when unset.")
    restarts: int
    pid: int | None = Field(description="The runtime's process id, while it runs.")
    last_heartbeat: datetime | None
    equity: float | None = Field(description="The runtime's equity, in the quote currency.")
    return_percent: float | None = Field(description="Equity against the starting equity, in %, net of fees.")
    realized_pnl: float | None = Field(description="Profit of closed trades, net of fees, in the quote currency.")
    unrealized_pnl: float | None = Field(description="Open positions marked at the last close, in the quote currency.")
    win_rate_percent: float | None = Field(description="Winning closed trades, in % of closed trades.")
    drawdown_percent: float | None = Field(description="How far equity is below its peak now, in %.")
    max_drawdown_percent: float | None = Field(description="The deepest drawdown seen, in %.")
    closed_trades: int | None = Field(description="Round trips closed (wins and losses).")
    idle_reason: str | None = Field(description="Why a running runtime takes no new trades now; None while it trades.")
    open_positions: int | None
    trade_count: int | None = Field(description="Fills booked since the state file began.")
    config_hash: str | None
    created_at: datetime = Field(description="When the supervisor first loaded the Strategy (its age).")
    deleting: bool

    @classmethod
    def build(cls, row: AdminObject, runtime: RuntimeView | None) -> StrategyView:
        status = StrategyStatus.model_validate(row.status or {})
        spec_paused = bool((row.document.get("spec") or {}).get("paused", False))
        running = runtime is not None and runtime.pid is not None
        ready = next((c for c in status.conditions if c.type == READY), None)
        return cls(
            name=row.name,
            namespace=row.namespace,
            phase=status.phase,
            ready=ready.status if ready is not None else "Unknown",
            reason=ready.reason if ready is not None else None,
            conditions=[ConditionView(**c.model_dump()) for c in status.conditions],
            generation=row.generation,
            observed_generation=status.observed_generation,
            paused=row.paused_override if row.paused_override is not None else spec_paused,
            paused_override=row.paused_override,
            restarts=runtime.restarts if runtime is not None else status.restarts,
            pid=runtime.pid if running else None,
            last_heartbeat=status.last_heartbeat,
            equity=status.equity,
            return_percent=status.return_percent,
            realized_pnl=status.realized_pnl,
            unrealized_pnl=status.unrealized_pnl,
            win_rate_percent=status.win_rate_percent,
            drawdown_percent=status.drawdown_percent,
            max_drawdown_percent=status.max_drawdown_percent,
            closed_trades=status.closed_trades,
            idle_reason=status.idle_reason,
            open_positions=status.open_positions,
            trade_count=status.trade_count,
            config_hash=status.config_hash,
            created_at=row.created_at,
            deleting=row.deleting,
        )


class VariantView(BaseModel):
    name: str
    strategy: str
    allocation_percent: float = Field(description="The share of the account the variant trades with now, in %.")
    trades: int = Field(description="Round trips it closed in the current step.")
    return_percent: float | None = Field(description="Its return on allocated capital in the current step, in %.")
    sharpe: float | None = Field(description="Its annualised Sharpe ratio over the current step's candles.")
    drawdown_percent: float | None = Field(description="How far its equity is below its peak now, in %.")


class DecisionView(BaseModel):
    time: datetime
    step: int
    action: str = Field(description="Hold, Step, Promote, Rollback, Pause, Resume or Abort.")
    reason: str
    statistic: float | None
    threshold: float | None


class ExperimentView(BaseModel):
    name: str
    namespace: str
    type: str = Field(description="tuning or ab.")
    phase: str = Field(
        description="ab: Pending, Progressing, Paused, Promoting, Promoted, RolledBack or Aborted; Invalid when the "
        "spec is refused."
    )
    ready: str = Field(description="The Ready condition's status: True, False or Unknown (no condition yet).")
    reason: str | None = Field(description="The Ready condition's reason.")
    message: str | None = Field(description="The Progressing condition's message (what the rollout waits for).")
    conditions: list[ConditionView]
    generation: int
    observed_generation: int
    paused: bool = Field(description="spec.paused in force: the admin override if set, else the YAML spec.")
    abort: bool = Field(description="spec.abort in force.")
    promote: bool = Field(description="spec.promote in force.")
    baseline: str | None = Field(description="The baseline Strategy (ab).")
    candidate: str | None = Field(description="The candidate Strategy (ab).")
    steps: list[float] = Field(description="ab: the candidate's share at each step, in % of the baseline's.")
    current_step_index: int | None = Field(description="ab: the step the rollout is at (0-based); None before.")
    variants: list[VariantView]
    statistic: float | None = Field(description="ab: the sequential test's statistic (its evidence) now.")
    threshold: float | None = Field(description="ab: the statistic at which the test decides.")
    verdict: str | None = Field(description="ab: continue, promote or rollback.")
    decisions: list[DecisionView] = Field(description="ab: the decision history, oldest first (the last 50).")
    tuning: dict[str, Any] | None = Field(
        default=None,  # a newer `slsbot get` still reads a supervisor from before the field
        description="tuning: the run's status as its controller writes it (study, run, trial counts, the best "
        "in-sample value and parameters, the proposal with its out-of-sample figures, deflated Sharpe ratio, PBO and "
        "verdict, the report's path); None for ab and before the first run.",
    )
    created_at: datetime

    @classmethod
    def build(cls, row: AdminObject) -> ExperimentView:
        experiment = row.as_resource()
        assert isinstance(experiment, Experiment)
        status = ExperimentStatus.model_validate(row.status or {})
        rollout = status.rollout
        spec = experiment.spec
        ready = next((c for c in status.conditions if c.type == READY), None)
        progressing = next((c for c in status.conditions if c.type == "Progressing"), None)
        return cls(
            name=row.name,
            namespace=row.namespace,
            type=spec.type,
            phase=status.phase,
            ready=ready.status if ready is not None else "Unknown",
            reason=ready.reason if ready is not None else None,
            message=progressing.message if progressing is not None else None,
            conditions=[ConditionView(**c.model_dump()) for c in status.conditions],
            generation=row.generation,
            observed_generation=status.observed_generation,
            paused=spec.paused,
            abort=spec.abort,
            promote=spec.promote,
            baseline=spec.baseline.strategy_ref.name if spec.baseline is not None else None,
            candidate=spec.candidate.strategy_ref.name if spec.candidate is not None else None,
            steps=list(spec.schedule.steps),
            current_step_index=rollout.current_step_index if rollout and rollout.step_started_at else None,
            variants=[VariantView(**v.model_dump()) for v in rollout.variants] if rollout else [],
            statistic=rollout.statistic if rollout else None,
            threshold=rollout.threshold if rollout else None,
            verdict=rollout.verdict if rollout else None,
            decisions=[DecisionView(**d.model_dump()) for d in rollout.decisions] if rollout else [],
            tuning=status.tuning.model_dump(mode="json") if status.tuning is not None else None,
            created_at=row.created_at,
        )


class OrderView(BaseModel):
    """One order as the runtime reports it (``GET /orders`` of the runtime)."""

    client_order_id: str
    symbol: str
    side: str
    quantity: float
    filled_quantity: float | None = None
    status: str
    created_at: datetime | str | None = None
    updated_at: datetime | str | None = None

    @classmethod
    def from_runtime(cls, item: dict[str, Any]) -> OrderView:
        return cls.model_validate({key: item.get(key) for key in cls.model_fields if key in item})


class TradeView(BaseModel):
    """One round trip (entry to exit), as the runtime counts them (``slsbot_runtime.domain.round_trips``)."""

    symbol: str
    side: str = Field(description="long or short.")
    entry_ts: int = Field(description="ms since the epoch (UTC).")
    exit_ts: int
    quantity: float
    entry_price: float
    exit_price: float
    fees: float
    pnl: float = Field(description="Net of fees, in the quote currency.")
    return_pct: float


class RiskDecisionView(BaseModel):
    """One rejection or reduction the risk manager made."""

    ts: int = Field(description="ms since the epoch (UTC): the candle it was made on.")
    symbol: str
    side: str
    is_entry: bool
    action: str = Field(description="What the risk manager did: rejected or reduced.")
    rule: str = Field(description="The first rule that decided, e.g. per_trade_max, daily_loss, breaker_level_2.")
    message: str
    requested_quantity: float | None
    quantity: float
    events: list[dict[str, str]] = Field(description="Every (rule, message) the decision named.")


class BreakerView(BaseModel):
    level: int = Field(description="The highest tripped circuit-breaker level; 0 when none is tripped.")
    action: str | None = Field(description="That level's action (reduceSize, stopEntries, flattenAndHalt).")
    tripped: list[dict[str, Any]] = Field(description="Each tripped level: level, action, tripped_ts, until_ts.")


class ActivityView(BaseModel):
    """A bot's page: its equity curve, newest trades and risk decisions, its breaker (the runtime's ``/activity``)."""

    equity: list[tuple[int, float]] = Field(description="[ts (ms), equity] oldest first, at most 500 points.")
    trades: list[TradeView] = Field(description="Newest first.")
    risk_decisions: list[RiskDecisionView] = Field(description="Newest first.")
    breaker: BreakerView

    @classmethod
    def from_runtime(cls, body: dict[str, Any]) -> ActivityView:
        return cls.model_validate(body)


class HealthView(BaseModel):
    status: str = "ok"


class ErrorView(BaseModel):
    """Every error the admin API answers (validation errors, 422, keep FastAPI's own shape)."""

    detail: str = Field(description="What went wrong and, where there is one, what to do about it.")
    error: str = Field(description="The error's class: NotFoundError, PermissionDenied, NotFound (no such route)...")


_ERROR_DESCRIPTIONS = {
    400: "Bad request: a query parameter the route does not take, or a name that exists in several namespaces; "
    "the detail names the parameter.",
    401: "No bearer token, or an unknown one (header WWW-Authenticate: Bearer).",
    403: "The token's role may not do this (the detail names the role needed).",
    404: "No such strategy or experiment (or no such route).",
    409: "Someone else changed the object first, or the experiment has finished: the detail says which.",
    503: "The strategy's runtime cannot answer now, and no state file can stand in for it: try again later.",
    413: "The request body is larger than the API accepts (RequestTooLarge); refused before it was read whole.",
    429: "Too many requests from this address (RateLimited), or too many failed authentications from it "
    "(TooManyFailedAuthentications): try again after the seconds in Retry-After.",
}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Whole seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def protection_responses() -> dict[int | str, dict[str, Any]]:
    """What the admin API's protections (``hardening.py``) may answer on any route, before it runs."""
    responses = error_responses(413, 429)
    responses[429]["headers"] = RETRY_AFTER_HEADER
    return responses


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that answers ``codes``, each with the one error shape, for the OpenAPI."""
    return {code: {"model": ErrorView, "description": _ERROR_DESCRIPTIONS[code]} for code in codes}
