"""The SQLite state store: staged writes in one transaction, creation order, read-only mode, schema checks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from slsbot.api import PaperSettings
from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import Candle, Fill, Order, OrderRequest, OrderStatus, Side
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.persistence.schema import SCHEMA_VERSION
from slsbot_runtime.persistence.store import PositionRow, StateStore

HOUR = 3_600_000


def order(cid: str, status: OrderStatus = OrderStatus.PENDING, filled: float = 0.0) -> Order:
    return Order(
        cid,
        "BTC/USDT",
        Side.BUY,
        1.5,
        status=status,
        filled_quantity=filled,
        created_ts=1,
        updated_ts=2,
        reason="enter long",
    )


def test_nothing_is_written_until_commit(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path)
    store.stage_order(order("a"))
    store.stage_cursor("BTC/USDT", 100)
    reader = StateStore.open(path, readonly=True)
    assert reader.load_orders() == [] and reader.load_cursor() == {}
    store.commit()
    assert [o.client_order_id for o in reader.load_orders()] == ["a"]
    assert reader.load_cursor() == {"BTC/USDT": 100}
    assert not store.has_staged


def test_a_staged_order_is_written_as_it_is_when_the_commit_runs(tmp_path: Path) -> None:
    """Orders are staged as themselves and written by the commit as they are then: the order manager stages an order
    again at every change, so that is its last staged state (and a commit writes nothing older)."""
    store = StateStore.open(tmp_path / "state.db")
    staged = order("a")
    store.stage_order(staged)
    staged.status, staged.filled_quantity, staged.updated_ts = OrderStatus.FILLED, 1.5, 3
    store.commit()
    (loaded,) = store.load_orders()
    assert (loaded.status, loaded.filled_quantity, loaded.updated_ts) == (OrderStatus.FILLED, 1.5, 3)
    assert loaded is not staged


def test_orders_keep_creation_order_through_updates(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    for cid in ("c", "a", "b"):
        store.stage_order(order(cid))
    store.commit()
    store.stage_order(order("a", OrderStatus.FILLED, 1.5))
    store.stage_order(order("d"))
    store.commit()
    loaded = store.load_orders()
    assert [o.client_order_id for o in loaded] == ["c", "a", "b", "d"]
    assert loaded[1] == order("a", OrderStatus.FILLED, 1.5)
    assert [o.client_order_id for o in store.load_orders(newest_first=True, limit=2)] == ["d", "b"]


def test_a_fill_is_stored_once(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    fill = Fill("a-f1", "a", "BTC/USDT", Side.BUY, 1.0, 100.0, 0.1, "USDT", 5)
    store.stage_fill(fill)
    store.stage_fill(fill)
    store.commit()
    store.stage_fill(fill)
    store.commit()
    assert store.load_fills() == [fill]


def test_everything_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path)
    store.stage_position(PositionRow("BTC/USDT", 0.5, 100.0, -3.0, 2, 1, 10.0, 13.0))
    store.stage_equity(HOUR, "BTC/USDT", 10_010.5, 9_960.5)
    store.stage_risk(HOUR, {"peak": 10_010.5, "levels": [1, 2]})
    store.stage_meta("cash", 9_960.123456789012)
    store.commit()
    store.close()
    again = StateStore.open(path, readonly=True)
    assert again.load_positions() == {"BTC/USDT": PositionRow("BTC/USDT", 0.5, 100.0, -3.0, 2, 1, 10.0, 13.0)}
    [point] = again.load_equity()
    assert (point.ts, point.equity, point.cash) == (HOUR, 10_010.5, 9_960.5)
    assert again.load_risk() == {"peak": 10_010.5, "levels": [1, 2]}
    assert again.load_meta()["cash"] == 9_960.123456789012  # floats survive exactly


def test_paper_book_round_trip(tmp_path: Path) -> None:
    paper = PaperExchange(PaperSettings(), interval_ms=HOUR)
    paper.on_candle(Candle("BTC/USDT", 0, 100, 101, 99, 100, 1e9))
    paper.place_order(OrderRequest("a", "BTC/USDT", Side.BUY, 1.0, created_ts=HOUR))
    paper.place_order(OrderRequest("b", "BTC/USDT", Side.BUY, 2.0, created_ts=HOUR))
    paper.on_candle(Candle("BTC/USDT", HOUR, 100, 101, 99, 100, 1e9))
    store = StateStore.open(tmp_path / "state.db")
    assert store.load_paper_book() is None
    store.stage_paper_book(paper.drain_changes())
    store.commit()
    book = store.load_paper_book()
    assert book is not None
    assert [o.client_order_id for o in book.orders] == ["a", "b"]
    assert [o.status for o in book.orders] == [OrderStatus.FILLED, OrderStatus.FILLED]
    assert [f.fill_id for f in book.fills] == ["a-f1", "b-f1"]
    assert {b.currency: b.total for b in book.balances} == {c: b.total for c, b in paper.fetch_balances().items()}
    assert book.clock_ms == 2 * HOUR and book.eligible_ts == {"a": HOUR, "b": HOUR}


def test_read_only_refuses_writes_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with pytest.raises(StateError, match="does not exist"):
        StateStore.open(path, readonly=True)
    StateStore.open(path).close()
    reader = StateStore.open(path, readonly=True)
    reader.stage_meta("x", 1)
    with pytest.raises(StateError, match="read-only"):
        reader.commit()


def test_schema_is_checked(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StateError, match="not a slsbot state file"):
        StateStore.open(other, readonly=True)
    newer = tmp_path / "newer.db"
    StateStore.open(newer).close()
    connection = sqlite3.connect(newer)
    connection.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    connection.commit()
    connection.close()
    with pytest.raises(StateError, match="newer than this runtime"):
        StateStore.open(newer)


def test_a_failed_commit_keeps_nothing(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    store.stage_cursor("BTC/USDT", 1)
    store.stage_order(order("a"))
    broken = order("broken")
    broken.quantity = float("nan")  # SQLite stores NaN as NULL, which quantity's NOT NULL refuses
    store.stage_order(broken)
    with pytest.raises(StateError, match="cannot write"):
        store.commit()
    assert store.load_cursor() == {} and store.load_orders() == []


def _version_1_file(path: Path) -> None:
    """A state file as schema version 1 wrote it: every table but ``risk_decisions``."""
    StateStore.open(path).close()
    connection = sqlite3.connect(path)
    connection.execute("DROP TABLE risk_decisions")
    connection.execute("UPDATE schema_version SET version = 1")
    connection.commit()
    connection.close()


def test_a_version_1_file_is_migrated_additively_when_opened_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _version_1_file(path)
    writer = StateStore.open(path)
    writer.stage_cursor("BTC/USDT", 7)
    writer.commit()
    writer.close()
    connection = sqlite3.connect(path)
    assert connection.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    connection.close()
    store = StateStore.open(path)
    assert store.load_cursor() == {"BTC/USDT": 7}
    store.stage_risk_decision(
        ts=5,
        symbol="BTC/USDT",
        side="buy",
        is_entry=True,
        action="reduced",
        requested_quantity=None,
        quantity=0.5,
        events=[("per_trade_max", "cut to 2%"), ("leverage", "cut again")],
    )
    store.commit()
    (decision,) = store.load_risk_decisions()
    assert (decision.rule, decision.message, decision.quantity, decision.requested_quantity) == (
        "per_trade_max",
        "cut to 2%",
        0.5,
        None,
    )
    assert decision.events == [
        {"rule": "per_trade_max", "message": "cut to 2%"},
        {"rule": "leverage", "message": "cut again"},
    ]


def test_aconnection_only_has_no_risk_decisions_and_stays_version_1(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _version_1_file(path)
    reader = StateStore.open(path, readonly=True)
    assert reader.load_risk_decisions() == []
    reader.close()
    connection = sqlite3.connect(path)
    assert connection.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    connection.close()


def test_risk_decisions_limit_keeps_the_newest_oldest_first(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    for ts in range(5):
        store.stage_risk_decision(
            ts=ts, symbol="X/USDT", side="buy", is_entry=True, action="rejected",
            requested_quantity=1.0, quantity=0.0, events=[("long_only", f"no {ts}")],
        )  # fmt: skip
    store.commit()
    assert [d.ts for d in store.load_risk_decisions(limit=2)] == [3, 4]
    assert [d.ts for d in store.load_risk_decisions()] == [0, 1, 2, 3, 4]
