"""Read a local runtime's own state file, read-only, for when the runtime itself cannot answer, and for the daily
report (``read_strategy_record``).

The admin API serves a strategy's orders from its runtime's ``/orders`` (and its equity curve, trades and risk
decisions from ``/activity``); while that runtime is down (a crash loop, a restart in progress) the same are read
from its SQLite state file instead, in the runtime's own JSON shape. SQLite in WAL mode lets this reader and the
runtime's writer work at the same time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slsbot.domain.daily_report import RiskDecisionRecord, StrategyRecord
from slsbot.domain.errors import NotFoundError, RuntimeUnreachable
from slsbot_runtime.activity import activity_json
from slsbot_runtime.domain.errors import SlsbotRuntimeError
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.server import order_json


def read_orders(state_path: Path, *, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` orders in the state file, newest first."""
    if not state_path.is_file():
        raise NotFoundError(f"no state file at {state_path}: the runtime has not started yet")
    try:
        store = StateStore.open(state_path, readonly=True)
    except SlsbotRuntimeError as exc:
        raise RuntimeUnreachable(f"the state file {state_path} cannot be read: {exc}") from exc
    try:
        return [order_json(order) for order in store.load_orders(newest_first=True, limit=limit)]
    finally:
        store.close()


def read_strategy_record(state_path: Path, name: str) -> StrategyRecord | None:
    """What the daily report needs of a runtime's state file (``domain.daily_report.StrategyRecord``); None when there
    is no state file (the runtime never started). Raises RuntimeUnreachable when the file cannot be read."""
    if not state_path.is_file():
        return None
    try:
        store = StateStore.open(state_path, readonly=True)
    except SlsbotRuntimeError as exc:
        raise RuntimeUnreachable(f"the state file {state_path} cannot be read: {exc}") from exc
    try:
        meta = store.load_meta()
        equity = [(point.ts, point.equity) for point in store.load_equity()]
        fills = store.load_fills()
        decisions = [
            RiskDecisionRecord(d.ts, d.action, tuple(e["rule"] for e in d.events) or (d.rule,))
            for d in store.load_risk_decisions()
        ]
    except SlsbotRuntimeError as exc:
        raise RuntimeUnreachable(f"the state file {state_path} cannot be read: {exc}") from exc
    finally:
        store.close()
    return StrategyRecord(
        name=name,
        starting_cash=float(meta.get("starting_cash", 0.0)),
        equity=equity,
        fills=fills,
        decisions=decisions,
        quote_currency=str(meta.get("quote_currency", "USDT")),
    )


def read_activity(state_path: Path, *, limit: int) -> dict[str, Any]:
    """The runtime's ``/activity`` body (equity curve, newest ``limit`` trades and risk decisions, breaker) built from
    its state file, as the runtime itself would."""
    if not state_path.is_file():
        raise NotFoundError(f"no state file at {state_path}: the runtime has not started yet")
    try:
        store = StateStore.open(state_path, readonly=True)
    except SlsbotRuntimeError as exc:
        raise RuntimeUnreachable(f"the state file {state_path} cannot be read: {exc}") from exc
    try:
        return activity_json(store, limit=limit)
    except SlsbotRuntimeError as exc:
        raise RuntimeUnreachable(f"the state file {state_path} cannot be read: {exc}") from exc
    finally:
        store.close()
