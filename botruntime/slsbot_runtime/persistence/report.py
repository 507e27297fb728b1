"""What ``slsbot report`` prints: everything a runtime did, read-only from its state file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from slsbot_runtime.domain.equity import max_drawdown_percent
from slsbot_runtime.domain.types import QUANTITY_EPSILON
from slsbot_runtime.persistence.store import StateStore


def build_report(path: str) -> dict[str, Any]:
    """{orders, fills, positions, equity_curve, risk_decisions, summary} from the state file at ``path``
    (never written). ``risk_decisions``: every rejection or reduction the risk manager made, oldest first.
    Returns, drawdowns and the win rate are in percent, their keys ending in ``_pct`` (as in the backtest's).

    ``equity_curve``: one point per stored time; older than ``state.equityRetention``'s window, the last point of
    each downsampled interval."""
    store = StateStore.open(path, readonly=True)
    try:
        meta = store.load_meta()
        orders = store.load_orders()
        fills = store.load_fills()
        positions = store.load_positions()
        points = store.load_equity()
        cursor = store.load_cursor()
        decisions = store.load_risk_decisions()
    finally:
        store.close()
    curve: dict[int, tuple[float, float]] = {}
    for point in points:  # several symbols share a timestamp: the account after the last of them
        curve[point.ts] = (point.equity, point.cash)
    starting = float(meta.get("starting_cash", 0.0))
    final_equity = points[-1].equity if points else starting
    by_status: dict[str, int] = {}
    for order in orders:
        by_status[str(order.status)] = by_status.get(str(order.status), 0) + 1
    wins = sum(p.wins for p in positions.values())
    losses = sum(p.losses for p in positions.values())
    summary = {
        "strategy": meta.get("strategy_key"),
        "starting_cash": starting,
        "final_equity": final_equity,
        "cash": float(meta.get("cash", starting)),
        "return_pct": (final_equity / starting - 1.0) * 100.0 if starting else None,
        "max_drawdown_pct": _max_drawdown(meta, [equity for equity, _ in curve.values()]),
        "orders_total": len(orders),
        "orders_by_status": by_status,
        "fills_total": len(fills),
        "fees_total": sum(f.fee for f in fills),
        "closed_trades": wins + losses,
        "win_rate_pct": 100.0 * wins / (wins + losses) if wins + losses else None,
        "realized_pnl": sum(p.realized_pnl for p in positions.values()),
        "open_positions": sum(1 for p in positions.values() if abs(p.quantity) > QUANTITY_EPSILON),
        "risk_decisions_by_action": _count(d.action for d in decisions),
        "risk_decisions_by_rule": _count(e["rule"] for d in decisions for e in d.events),
        "cursor": cursor,
    }
    return {
        "orders": [_order(o) for o in orders],
        "fills": [{**asdict(f), "side": str(f.side)} for f in fills],
        "positions": [asdict(p) for p in positions.values()],
        "equity_curve": [{"ts": ts, "equity": e, "cash": c} for ts, (e, c) in curve.items()],
        "risk_decisions": [asdict(d) for d in decisions],
        "summary": summary,
    }


def _max_drawdown(meta: dict[str, Any], curve: list[float]) -> float:
    """The deepest drawdown the loop saw after every candle (``meta``), which the thinned older rows of the stored
    curve could miss; the curve's own for a state file written before the loop kept it."""
    kept = meta.get("max_drawdown_pct")
    return float(kept) if isinstance(kept, int | float) else max_drawdown_percent(curve)


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _order(order: Any) -> dict[str, Any]:
    data = asdict(order)
    data.update(side=str(order.side), type=str(order.type), status=str(order.status))
    return data
