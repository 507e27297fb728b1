"""The body of ``GET /performance?since=<ms>``: what an A/B controller reads of a runtime, from its state file.

Read on an HTTP thread through a read-only connection, so it sees what the loop has committed (a replay as fast as it
can go commits every 1000 candles; a paced or live runtime every candle) and never holds the loop up:

* ``periods``: ``[ts, equity, allocated_capital, return_on_allocated]`` per candle with ``ts > since``, the equity
  after the candle's last symbol (``domain.allocation.allocation_periods``), within the equity retention's
  full-resolution window (older rows are thinned, no longer one per candle);
* ``closedTrades``: round trips (``domain.round_trips``, the backtest report's rule) closed after ``since``;
* ``drawdownPercent`` and ``breakerLevel``: from the risk manager's stored snapshot;
* ``lastCandleTs``: the newest candle with an equity row, the ``since`` of the next look; null before any.
"""

from __future__ import annotations

from typing import Any

from slsbot_runtime.allocation import Allocation
from slsbot_runtime.domain.allocation import allocation_periods
from slsbot_runtime.domain.equity import drawdown_percent
from slsbot_runtime.domain.round_trips import round_trips
from slsbot_runtime.persistence.store import EquityPoint, StateStore
from slsbot_runtime.risk.snapshot import parse_snapshot


def performance_json(
    store: StateStore, allocation: Allocation, *, since: int, full_resolution_ms: int | None
) -> dict[str, Any]:
    """The ``/performance`` body from ``store`` (open read-only) and the allocation in force.
    ``full_resolution_ms``: the equity retention's window of one row per candle; None when every row is kept."""
    points = _per_candle(store.load_equity_after(since))
    if points and full_resolution_ms is not None:
        oldest = points[-1][0] - full_resolution_ms
        points = [point for point in points if point[0] >= oldest]
    periods = allocation_periods(points, allocation.timeline, since=since, default=allocation.spec_percent)
    drawdown, level = 0.0, 0
    stored = store.load_risk()
    if stored is not None:
        snapshot = parse_snapshot(stored)
        if snapshot.peak_equity is not None and snapshot.equity is not None:
            drawdown = drawdown_percent(snapshot.peak_equity, snapshot.equity)
        level = max((trip.level for trip in snapshot.breaker.tripped), default=0)
    closed = sum(1 for trade in round_trips(store.load_fills()) if trade.exit_ts > since)
    return {
        "allocationPercent": allocation.percent,
        "lastCandleTs": points[-1][0] if points else None,
        "periods": periods,
        "closedTrades": closed,
        "drawdownPercent": drawdown,
        "breakerLevel": level,
    }


def _per_candle(rows: list[EquityPoint]) -> list[tuple[int, float]]:
    """One point per candle time: the last row written for it (after every symbol of that candle)."""
    last = {row.ts: row.equity for row in rows}  # rows come in the order written: the last one wins
    return sorted(last.items())
