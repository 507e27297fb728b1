"""What the state store writes for metadata is exactly ``json.dumps`` of it, however it gets there; the paper
exchange's clock is stored with its book."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest

from slsbot.api import PaperSettings
from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import Candle, Fill, Order, OrderRequest, OrderStatus, OrderType, Side
from slsbot_runtime.exchange.base import BookChanges
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.persistence.schema import DDL, ORDER_FIELDS, fill_row, order_row, upsert_sql
from slsbot_runtime.persistence.store import PositionRow, StateStore

HOUR = 3_600_000
VALUES = [0, -3, 2**63, 10**30, 1.0, -0.0, 1e-300, 5e-324, 123456.789, 1e22, 0.1 + 0.2, math.inf, -math.inf]
VALUES += [True, False, None, "text", {"BTC/USDT": 61_000.5}, [1, 2.5]]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_meta_is_stored_as_json_dumps_writes_it(tmp_path: Path, value: object) -> None:
    store = StateStore.open(tmp_path / "state.db")
    store.stage_meta("key", value)
    store.commit()
    raw = sqlite3.connect(tmp_path / "state.db").execute("SELECT value FROM meta WHERE key = 'key'").fetchone()[0]
    assert raw == json.dumps(value)
    assert store.load_meta()["key"] == value


def test_nan_is_stored_as_json_dumps_writes_it(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    store.stage_meta("key", math.nan)
    store.commit()
    assert math.isnan(store.load_meta()["key"])


def test_the_paper_clock_is_stored_with_the_last_book_staged(tmp_path: Path) -> None:
    exchange = PaperExchange(PaperSettings(starting_balance=10_000.0), interval_ms=HOUR)
    store = StateStore.open(tmp_path / "state.db")
    store.stage_paper_book(exchange.drain_changes())
    assert store.load_paper_book() is None  # nothing before the commit
    exchange.place_order(OrderRequest("c1", "BTC/USDT", Side.BUY, 0.01, created_ts=HOUR))
    exchange.on_candle(Candle("BTC/USDT", HOUR, 100.0, 101.0, 99.0, 100.5, 10.0))
    store.stage_paper_book(exchange.drain_changes())
    store.commit()
    book = store.load_paper_book()
    assert book is not None and book.clock_ms == 2 * HOUR
    assert [o.client_order_id for o in book.orders] == ["c1"] and len(book.fills) == 1


@pytest.mark.parametrize("count", [1, 15, 16, 17, 40, 127, 128, 129, 300])
def test_equity_rows_are_stored_in_order_however_many_are_staged(tmp_path: Path, count: int) -> None:
    store = StateStore.open(tmp_path / "state.db")
    rows = [(HOUR * t, "BTC/USDT" if t % 2 else "ETH/USDT", 1_000.0 + t, 500.0 - t) for t in range(count)]
    for row in rows:
        store.stage_equity(*row)
    store.stage_equity(0, "ETH/USDT", 7.0, 8.0)  # the same candle again in the same commit: the last one stays
    store.commit()
    stored = [(p.ts, p.symbol, p.equity, p.cash) for p in store.load_equity()]
    assert stored == [*rows[1:], (0, "ETH/USDT", 7.0, 8.0)]
    store.stage_equity(HOUR * count, "BTC/USDT", 1.0, 2.0)
    store.commit()
    assert [(p.ts, p.equity) for p in store.load_equity()][-1] == (HOUR * count, 1.0)


def _order(n: int, status: OrderStatus = OrderStatus.OPEN) -> Order:
    return Order(f"c{n}", "BTC/USDT", Side.BUY, 0.01 * n, OrderType.MARKET, None, status, f"x{n}", 0.0, None, n, n, "r")


def _fill(n: int) -> Fill:
    return Fill(f"c{n}-f1", f"c{n}", "BTC/USDT", Side.BUY, 0.01 * n, 100.0 + n, 0.1, "USDT", n)


def _tables(db: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    names = ("orders", "fills", "paper_orders", "paper_fills")
    return {name: db.execute(f"SELECT rowid, * FROM {name} ORDER BY rowid").fetchall() for name in names}


@pytest.mark.parametrize("count", [1, 7, 8, 9, 63, 64, 65, 150])
def test_orders_and_fills_staged_together_are_stored_as_one_statement_per_row_would_store_them(
    tmp_path: Path, count: int
) -> None:
    """A commit of many orders and fills (and the paper book's copies): the rows, their order, rowids, updates and
    ignored duplicates are those of one statement per row."""
    store = StateStore.open(tmp_path / "state.db")
    reference = sqlite3.connect(":memory:", isolation_level=None)
    reference.executescript(DDL)
    for round_ in range(2):  # the second round fills every other order; a fill comes twice in each
        orders = (
            [_order(n, OrderStatus.FILLED) for n in range(0, count, 2)] if round_ else list(map(_order, range(count)))
        )
        fills = [_fill(n) for n in range(count)] + [_fill(0)]
        for order in orders:
            store.stage_order(order)
        for fill in fills:
            store.stage_fill(fill)
        book = BookChanges(orders, {o.client_order_id: o.created_ts + 1 for o in orders}, fills, [], round_)
        store.stage_paper_book(book)
        store.commit()
        reference.executemany(upsert_sql("orders", ORDER_FIELDS, "client_order_id"), [order_row(o) for o in orders])
        reference.executemany(f"INSERT OR IGNORE INTO fills VALUES ({', '.join('?' * 9)})", map(fill_row, fills))
        paper_orders = [(*order_row(o), o.created_ts + 1) for o in orders]
        fields = (*ORDER_FIELDS, "eligible_ts")
        reference.executemany(upsert_sql("paper_orders", fields, "client_order_id"), paper_orders)
        reference.executemany(f"INSERT OR IGNORE INTO paper_fills VALUES ({', '.join('?' * 9)})", map(fill_row, fills))
        assert _tables(store._db) == _tables(reference)
    statuses = [o.status for o in store.load_orders()]
    assert statuses == [OrderStatus.OPEN if n % 2 else OrderStatus.FILLED for n in range(count)]


def test_a_value_staged_again_unchanged_is_not_written_again(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    store.stage_meta("cash", 100.5)
    store.stage_risk_json(1, '{"version": 1}')
    store.commit()
    changes = store._db.total_changes
    store.stage_meta("cash", 100.5)
    store.stage_risk_json(1, '{"version": 1}')
    assert not store.has_staged
    store.commit()
    assert store._db.total_changes == changes  # nothing written
    store.stage_meta("cash", 99.0)  # staged, then staged back to what the file holds: the file keeps it
    store.stage_meta("cash", 100.5)
    store.stage_meta("trade_count", 3)
    store.commit()
    assert store.load_meta() == {"cash": 100.5, "trade_count": 3}
    store.stage_risk_json(2, '{"version": 1}')  # a new time is a new row
    store.commit()
    assert store._db.execute("SELECT ts FROM risk").fetchone() == (2,)


def test_a_failed_commit_leaves_the_written_values_as_they_were(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    store.stage_meta("cash", 1.0)
    store.commit()
    store.stage_meta("cash", 2.0)
    store.stage_position(PositionRow("BTC/USDT", quantity=None))  # type: ignore[arg-type]  # NOT NULL: fails
    with pytest.raises(StateError):
        store.commit()
    assert store.load_meta() == {"cash": 1.0}
    other = StateStore.open(tmp_path / "state.db")  # the same file, nothing staged on it but the new cash
    other.stage_meta("cash", 2.0)
    other.commit()
    assert other.load_meta() == {"cash": 2.0}
    store.close()
    reopened = StateStore.open(tmp_path / "state.db")
    reopened.stage_meta("cash", 1.0)  # what the failed store had written last; the file holds 2.0: written
    reopened.commit()
    assert reopened.load_meta() == {"cash": 1.0}
