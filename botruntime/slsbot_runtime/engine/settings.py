"""``LoopSettings``: what one trading loop is configured with, fixed for its life (``app`` builds it from the
RuntimeConfig)."""

from __future__ import annotations

from dataclasses import dataclass, field

from slsbot_runtime.exchange.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class LoopSettings:
    name: str
    strategy_key: str  # namespace/name: part of every client order id
    symbols: tuple[str, ...]
    interval_ms: int
    warmup_candles: int
    starting_cash: float
    quote_currency: str
    long_only: bool = True
    fixed_quantity: float | None = None
    paused: bool = False
    round_trip_cost: float = 0.002  # fees of an entry and an exit, for the signal track record
    commit_every_candles: int = 1000
    commit_interval_s: float = 0.5
    stale_after_candles: float = 2.0  # risk.healing.staleAfterCandles: data older than this many intervals is stale
    stale_after_min_s: float = 10.0  # risk.healing.staleAfterMin: and never sooner than this
    reject_limit: int = 3  # risk.healing.rejectLimit: rejected or failed orders in a row that put it in safe mode
    #: Pauses between reconciliation attempts while the exchange fails temporarily (``engine.exchange_wait``).
    reconcile_retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(base_delay_s=2.0, max_delay_s=60.0))
