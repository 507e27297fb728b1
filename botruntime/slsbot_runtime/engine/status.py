"""What the loop shows the outside world (the HTTP server, logs): an immutable snapshot per candle."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    STARTING = "starting"
    RECONCILING = "reconciling"  # replaying already processed candles, then reconciling with the exchange
    WARMING_UP = "warming_up"
    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"  # risk asked to flatten and halt, or the state could not be reconciled
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class RuntimeStatus:
    name: str
    phase: Phase
    equity: float
    cash: float
    open_positions: int
    trade_count: int
    orders_total: int
    last_candle_ts: int | None
    heartbeat: float  # wall clock, seconds since the epoch
    paused: bool
    ready: bool
    error: str | None = None
    # profit at a glance, in the quote currency and in percent (see docs/concepts/runtime-loop.md#status)
    starting_equity: float | None = None
    return_pct: float | None = None  # (equity / starting_equity - 1) * 100, net of fees
    realized_pnl: float = 0.0  # closed trades, net of fees
    unrealized_pnl: float = 0.0  # open positions marked at the last close
    closed_trades: int = 0  # round trips closed: wins + losses
    win_rate_pct: float | None = None  # 0..100, None before the first closed trade
    drawdown_pct: float = 0.0  # below the equity peak now
    max_drawdown_pct: float = 0.0  # the deepest seen
    # the circuit breaker: its highest tripped level (0: none) and that level's action (risk.breaker)
    breaker_level: int = 0
    breaker_action: str | None = None
    # why no new trade is taken now (engine.idle), None while trading normally
    idle_reason: str | None = None
    idle_message: str | None = None
    # the signal models, per model: version, trained_at, state, in_vote, metric (ml.bank); None without models
    models: dict[str, dict[str, Any]] | None = None
    # the anomaly detector and drift (engine.monitoring), None without an anomaly model
    anomaly_score: float | None = None  # the highest of the symbols' latest scores
    anomaly_scores: dict[str, float | None] | None = None  # each symbol's latest score
    drift: dict[str, Any] | None = None  # per model: drifted, threshold, fits, and each series' PSI and KS
    # what the runtime lets itself trade (domain.trading_mode): normal, safe, halted, and why
    trading_mode: str = "normal"
    trading_mode_reason: str | None = None
    # the account figures the control plane aggregates for account and global RiskPolicies (engine.exposure)
    exposure: dict[str, float] | None = None  # per symbol: held and incoming notional, quote currency
    total_exposure: float = 0.0
    pnl_today: float | None = None  # equity - equity_day_start
    equity_day_start: float | None = None  # the UTC day's opening equity (the risk manager's)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = str(self.phase)
        data["heartbeat"] = datetime.fromtimestamp(self.heartbeat, UTC).isoformat().replace("+00:00", "Z")
        return data
