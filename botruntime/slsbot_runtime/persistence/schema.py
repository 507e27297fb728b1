"""The state file's tables, and how domain objects map to their rows.

Version 2. A file written by a newer version is refused (StateError). Migrations are additive: every table is
``CREATE TABLE IF NOT EXISTS``, so opening an older file for writing adds what it lacks and records the new
version. Version 2 added ``risk_decisions`` (every rejection or reduction the risk manager made).
"""

from __future__ import annotations

from typing import Any

from slsbot_runtime.domain.types import Fill, Order, OrderStatus, OrderType, Side

SCHEMA_VERSION = 2

_ORDER_COLUMNS = """
    client_order_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    quantity REAL NOT NULL,
    limit_price REAL,
    status TEXT NOT NULL,
    exchange_order_id TEXT,
    filled_quantity REAL NOT NULL,
    average_price REAL,
    created_ts INTEGER NOT NULL,
    updated_ts INTEGER NOT NULL,
    reason TEXT NOT NULL
"""
_FILL_COLUMNS = """
    fill_id TEXT PRIMARY KEY,
    client_order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity REAL NOT NULL,
    price REAL NOT NULL,
    fee REAL NOT NULL,
    fee_currency TEXT NOT NULL,
    ts INTEGER NOT NULL
"""

DDL = f"""
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders ({_ORDER_COLUMNS});
CREATE TABLE IF NOT EXISTS fills ({_FILL_COLUMNS});
CREATE INDEX IF NOT EXISTS fills_by_order ON fills (client_order_id);
CREATE TABLE IF NOT EXISTS positions (
    symbol TEXT PRIMARY KEY,
    quantity REAL NOT NULL,
    average_price REAL NOT NULL,
    realized_pnl REAL NOT NULL,
    wins INTEGER NOT NULL,
    losses INTEGER NOT NULL,
    gross_profit REAL NOT NULL,
    gross_loss REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS equity (
    ts INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    equity REAL NOT NULL,
    cash REAL NOT NULL,
    PRIMARY KEY (ts, symbol)
);
CREATE TABLE IF NOT EXISTS cursor (symbol TEXT PRIMARY KEY, ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS risk (id INTEGER PRIMARY KEY CHECK (id = 1), ts INTEGER NOT NULL, snapshot TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS paper_orders ({_ORDER_COLUMNS}, eligible_ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS paper_fills ({_FILL_COLUMNS});
CREATE TABLE IF NOT EXISTS paper_balances (currency TEXT PRIMARY KEY, total REAL NOT NULL);
CREATE TABLE IF NOT EXISTS risk_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    is_entry INTEGER NOT NULL,
    action TEXT NOT NULL,
    rule TEXT NOT NULL,
    message TEXT NOT NULL,
    requested_quantity REAL,
    quantity REAL NOT NULL,
    events TEXT NOT NULL
);
"""

RISK_DECISION_FIELDS = (
    "ts", "symbol", "side", "is_entry", "action", "rule", "message", "requested_quantity", "quantity", "events",
)  # fmt: skip

ORDER_FIELDS = (
    "client_order_id", "symbol", "side", "type", "quantity", "limit_price", "status", "exchange_order_id",
    "filled_quantity", "average_price", "created_ts", "updated_ts", "reason",
)  # fmt: skip
FILL_FIELDS = ("fill_id", "client_order_id", "symbol", "side", "quantity", "price", "fee", "fee_currency", "ts")


def upsert_sql(table: str, fields: tuple[str, ...], key: str) -> str:
    """INSERT of ``fields``; on a key conflict the row is updated in place (its rowid, and so its place in
    creation order, is kept)."""
    updates = ", ".join(f"{f} = excluded.{f}" for f in fields if f != key)
    marks = ", ".join("?" for _ in fields)
    return f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({marks}) ON CONFLICT({key}) DO UPDATE SET {updates}"


def order_row(order: Order) -> tuple[Any, ...]:
    return (
        order.client_order_id, order.symbol, str(order.side), str(order.type), order.quantity, order.limit_price,
        str(order.status), order.exchange_order_id, order.filled_quantity, order.average_price, order.created_ts,
        order.updated_ts, order.reason,
    )  # fmt: skip


def order_from_row(row: tuple[Any, ...]) -> Order:
    (cid, symbol, side, type_, quantity, limit_price, status, exchange_id, filled, average, created, updated,
     reason) = row[:13]  # fmt: skip
    return Order(
        cid,
        symbol,
        Side(side),
        quantity,
        OrderType(type_),
        limit_price,
        OrderStatus(status),
        exchange_id,
        filled,
        average,
        created,
        updated,
        reason,
    )


def fill_row(fill: Fill) -> tuple[Any, ...]:
    return (
        fill.fill_id,
        fill.client_order_id,
        fill.symbol,
        str(fill.side),
        fill.quantity,
        fill.price,
        fill.fee,
        fill.fee_currency,
        fill.ts,
    )


def fill_from_row(row: tuple[Any, ...]) -> Fill:
    fill_id, cid, symbol, side, quantity, price, fee, fee_currency, ts = row
    return Fill(fill_id, cid, symbol, Side(side), quantity, price, fee, fee_currency, ts)
