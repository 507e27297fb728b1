"""Consistent copies of a live runtime state file (SQLite's online backup API) and their summaries."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from slsbot.adapters.sqlite_snapshot import (
    SnapshotError,
    integrity_problems,
    snapshot_database,
    summarize_database,
    summarize_state,
)
from slsbot_runtime.domain.types import Fill, Order, OrderStatus, Side
from slsbot_runtime.persistence.store import StateStore


def trade(store: StateStore, i: int) -> None:
    """One order, its fill and an equity point, committed together (one transaction)."""
    cid = f"o-{i}"
    store.stage_order(Order(cid, "BTC/USDT", Side.BUY, 0.01, status=OrderStatus.FILLED, filled_quantity=0.01))
    store.stage_fill(Fill(f"f-{i}", cid, "BTC/USDT", Side.BUY, 0.01, 100.0 + i, 0.01, "USDT", 1_000 + i))
    store.stage_equity(1_000 + i, "BTC/USDT", 10_000.0 + i, 9_000.0)
    store.commit()


def write_state(path: Path, trades: int) -> None:
    store = StateStore.open(path)
    try:
        for i in range(trades):
            trade(store, i)
    finally:
        store.close()


def test_snapshot_is_a_sound_copy_with_the_same_summary(tmp_path: Path) -> None:
    live = tmp_path / "state.db"
    write_state(live, 25)
    copy = tmp_path / "copy" / "state.db"
    snapshot_database(live, copy)
    assert integrity_problems(copy) == []
    summary = summarize_state(copy)
    assert summary == summarize_state(live)
    assert summary["tables"]["orders"]["rows"] == 25
    assert summary["tables"]["fills"]["rows"] == 25
    assert summary["lastEquity"] == 10_024.0
    assert not copy.with_name("state.db-wal").exists()  # one self-contained file


def test_snapshot_while_a_writer_keeps_writing_is_consistent(tmp_path: Path) -> None:
    """Every copy holds whole transactions: as many fills as orders, and a sound file, while a runtime-like writer
    commits an order and its fill together as fast as it can (most of them still in the -wal file)."""
    live = tmp_path / "state.db"
    write_state(live, 1)
    stop = threading.Event()
    written = [1]

    def writer() -> None:
        store = StateStore.open(live)
        try:
            while not stop.is_set():
                trade(store, written[0])
                written[0] += 1
        finally:
            store.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    counts = []
    try:
        deadline = time.monotonic() + 30
        while len(counts) < 15 and time.monotonic() < deadline:
            copy = tmp_path / f"copy-{len(counts)}.db"
            snapshot_database(live, copy)
            assert integrity_problems(copy) == []
            with sqlite3.connect(copy) as db:
                orders = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
                fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
                equity = db.execute("SELECT COUNT(*) FROM equity").fetchone()[0]
            assert orders == fills == equity
            counts.append(orders)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert len(counts) == 15
    assert counts[-1] > counts[0] >= 1  # the writer moved on while the copies were taken


def test_summary_differs_when_a_row_changes(tmp_path: Path) -> None:
    live = tmp_path / "state.db"
    write_state(live, 3)
    before = summarize_state(live)
    with sqlite3.connect(live) as db:
        db.execute("UPDATE fills SET price = price + 1 WHERE fill_id = 'f-1'")
    after = summarize_state(live)
    assert after["tables"]["fills"]["rows"] == 3
    assert after["tables"]["fills"]["digest"] != before["tables"]["fills"]["digest"]
    assert after["tables"]["orders"] == before["tables"]["orders"]


def test_summary_tolerates_a_schema_without_some_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, extra TEXT)")
        db.execute("INSERT INTO orders VALUES ('a', 'x')")
    summary = summarize_state(path)
    assert set(summary["tables"]) == {"orders"}
    assert summary["lastEquity"] is None
    assert summarize_database(path)["tables"]["orders"]["rows"] == 1


def test_missing_or_damaged_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match=r"nothing.db: no such file"):
        snapshot_database(tmp_path / "nothing.db", tmp_path / "copy.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(SnapshotError, match=r"junk.db"):
        snapshot_database(junk, tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists()
    assert integrity_problems(junk)
