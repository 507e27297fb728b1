"""The body of ``GET /activity?limit=N``: what a person reads on a bot's page (the admin API's Control Center), from
the state file, read-only (the loop is never held up):

* ``equity``: ``[[ts, equity], ...]`` oldest first, one point per candle (the equity after the candle's last symbol),
  thinned evenly to at most ``MAX_EQUITY_POINTS`` (the newest point always kept), enough for a chart;
* ``trades``: the newest ``limit`` round trips (``domain.round_trips``, the backtest report's rule), newest first:
  symbol, side (long or short), entry_ts and exit_ts (ms), quantity, entry_price, exit_price, fees, pnl and
  return_pct (net of fees);
* ``risk_decisions``: the newest ``limit`` rejections or reductions the risk manager made, newest first: ts, symbol,
  side, is_entry, action, rule, message, requested_quantity, quantity and every (rule, message) ``events``;
* ``breaker``: the circuit breaker's tripped levels from the risk manager's stored snapshot (``level``: the highest
  tripped, 0 when none; ``action``: its action; ``tripped``: each level, action, tripped_ts and until_ts).

The admin API reads the same body from a stopped runtime's state file (``slsbot.adapters.runtime_state``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from slsbot_runtime.domain.round_trips import round_trips
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.snapshot import parse_snapshot

MAX_EQUITY_POINTS = 500


def activity_json(store: StateStore, *, limit: int, max_points: int = MAX_EQUITY_POINTS) -> dict[str, Any]:
    """The ``/activity`` body from ``store`` (open read-only)."""
    last: dict[int, float] = {}
    for row in store.load_equity():  # in the order written: the last row of a candle is after its last symbol
        last[row.ts] = row.equity
    curve = sorted(last.items())
    trades = round_trips(store.load_fills())[-limit:]
    decisions = store.load_risk_decisions(limit=limit)
    return {
        "equity": [[ts, equity] for ts, equity in thin(curve, max_points)],
        "trades": [{**asdict(trade), "return_pct": trade.return_pct} for trade in reversed(trades)],
        "risk_decisions": [asdict(decision) for decision in reversed(decisions)],
        "breaker": breaker_json(store.load_risk()),
    }


def thin(points: list[tuple[int, float]], max_points: int) -> list[tuple[int, float]]:
    """At most ``max_points`` of ``points``, evenly spaced, the first and the newest kept."""
    if len(points) <= max_points:
        return points
    step = (len(points) - 1) / (max_points - 1)
    return [points[round(i * step)] for i in range(max_points)]


def breaker_json(stored: dict[str, Any] | None) -> dict[str, Any]:
    if stored is None:
        return {"level": 0, "action": None, "tripped": []}
    tripped = sorted(parse_snapshot(stored).breaker.tripped, key=lambda trip: trip.level)
    top = tripped[-1] if tripped else None
    return {
        "level": top.level if top is not None else 0,
        "action": top.action if top is not None else None,
        "tripped": [trip.model_dump() for trip in tripped],
    }
