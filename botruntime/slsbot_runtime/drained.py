"""The drain marker: what a runtime writes into its state file once ``POST /shutdown`` cancelled its orders (and
flattened its positions), so that it never trades from that state file again.

Why: in a cluster the kubelet restarts a container that exits, and the local supervisor adopts runtimes it finds.
A runtime that exited after its drain would come back and trade from its old state before the control plane
deleted it. With the marker, a runtime that starts on a drained state file does not connect to the exchange and
does not trade: it serves ``/status`` with phase ``drained`` and the figures below, and stays up idle until it is
stopped. The control plane deletes a runtime only once it reports ``drained`` with no open orders left (and no
positions when it asked to flatten).

The marker is stored under the meta key ``drained`` and is cleared only by a new state file (another
``state.path``, or the old file moved away).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import QUANTITY_EPSILON, OrderStatus
from slsbot_runtime.engine.status import RuntimeStatus
from slsbot_runtime.persistence.store import StateStore

DRAINED_META_KEY = "drained"
DRAINED_PHASE = "drained"
#: The profit figures of ``/status`` a drain marker keeps (``RuntimeStatus`` has the same names).
PROFIT_KEYS = (
    "starting_equity", "return_pct", "realized_pnl", "unrealized_pnl", "closed_trades", "win_rate_pct",
    "drawdown_pct", "max_drawdown_pct",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DrainedState:
    """The runtime's figures when its drain ended; a drained runtime shows them in ``/status`` from then on."""

    drained_at: str  # ISO UTC
    cancel_orders: bool
    flatten: bool
    open_orders: int
    open_positions: int
    equity: float
    cash: float
    trade_count: int
    orders_total: int
    last_candle_ts: int | None
    paused: bool
    # profit at a glance when it drained; a marker written before they were kept has None (not shown)
    starting_equity: float | None = None
    return_pct: float | None = None
    realized_pnl: float | None = None
    unrealized_pnl: float | None = None
    closed_trades: int | None = None
    win_rate_pct: float | None = None
    drawdown_pct: float | None = None
    max_drawdown_pct: float | None = None

    def to_meta(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_meta(cls, value: Any, *, path: str) -> DrainedState:
        if not isinstance(value, dict):
            raise StateError(f"state: {path} has a drain marker that is not an object; use a new state file")
        try:
            return cls(**value)
        except TypeError as error:
            raise StateError(f"state: {path} has a drain marker this runtime cannot read ({error})") from None

    def status_json(self, name: str, *, heartbeat: float | None = None) -> dict[str, Any]:
        """The ``/status`` body of a drained runtime: the usual keys, phase ``drained``, and when it drained."""
        now = time.time() if heartbeat is None else heartbeat
        figures = {key: getattr(self, key) for key in PROFIT_KEYS if getattr(self, key) is not None}
        return {
            "name": name,
            "phase": DRAINED_PHASE,
            "equity": self.equity,
            "cash": self.cash,
            "open_positions": self.open_positions,
            "open_orders": self.open_orders,
            "trade_count": self.trade_count,
            "orders_total": self.orders_total,
            "last_candle_ts": self.last_candle_ts,
            "heartbeat": _iso(now),
            "paused": self.paused,
            "ready": True,  # it serves its final status; /readyz stays 200 so the control plane can read it
            "error": None,
            "drained_at": self.drained_at,
            "drain": {"cancelOrders": self.cancel_orders, "flatten": self.flatten},
            **figures,
            "idle_reason": "Drained",
            "idle_message": f"drained at {self.drained_at}: trades no more; a new state file starts trading again",
        }


def load_drained(store: StateStore, *, strategy_key: str) -> DrainedState | None:
    """The marker of ``store``, or None if it was never drained. A state file of another strategy is refused."""
    meta = store.load_meta()
    stored_key = meta.get("strategy_key")
    if stored_key is not None and stored_key != strategy_key:
        raise StateError(
            f"state: {store.path} belongs to strategy {stored_key}, not {strategy_key}; use another --state file"
        )
    if DRAINED_META_KEY not in meta:
        return None
    return DrainedState.from_meta(meta[DRAINED_META_KEY], path=store.path)


def drained_from_status(
    status: RuntimeStatus, *, open_orders: int, cancel_orders: bool, flatten: bool, now: float | None = None
) -> DrainedState:
    """The marker after a drain by the trading loop: its last published status and its unfinished orders."""
    return DrainedState(
        drained_at=_iso(time.time() if now is None else now),
        cancel_orders=cancel_orders,
        flatten=flatten,
        open_orders=open_orders,
        open_positions=status.open_positions,
        equity=status.equity,
        cash=status.cash,
        trade_count=status.trade_count,
        orders_total=status.orders_total,
        last_candle_ts=status.last_candle_ts,
        paused=status.paused,
        **{key: getattr(status, key) for key in PROFIT_KEYS},
    )


def drained_from_store(
    store: StateStore, *, cancel_orders: bool, flatten: bool, now: float | None = None
) -> DrainedState:
    """The marker after a shutdown that came before the loop existed (still connecting): nothing could be
    cancelled, so whatever the state file holds is what remains."""
    meta = store.load_meta()
    orders = store.load_orders()
    positions = store.load_positions()
    cursor = store.load_cursor()
    cash = float(meta.get("cash", meta.get("starting_cash", 0.0)))
    return DrainedState(
        drained_at=_iso(time.time() if now is None else now),
        cancel_orders=cancel_orders,
        flatten=flatten,
        open_orders=sum(1 for order in orders if not OrderStatus(order.status).is_terminal),
        open_positions=sum(1 for row in positions.values() if abs(row.quantity) > QUANTITY_EPSILON),
        equity=cash,  # without prices, positions cannot be valued; cash is what is certain
        cash=cash,
        trade_count=int(meta.get("trade_count", 0)),
        orders_total=len(orders),
        last_candle_ts=max(cursor.values()) if cursor else None,
        paused=False,
    )


def save_drained(store: StateStore, drained: DrainedState) -> None:
    """Write the marker (with whatever else is staged) in one transaction."""
    store.stage_meta(DRAINED_META_KEY, drained.to_meta())
    store.commit()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
