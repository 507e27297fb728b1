"""What a commit guarantees (``Durability``): a runtime's store has each commit on disk when ``commit()`` returns;
a backtest's (``Durability.NONE``) writes nothing, not even at ``flush()``, and keeps staged exactly the fills and
equity curve the commits would have written.

A crash is a connection closed with writes only staged, as when the process dies; what is on disk is read through a
second, read-only connection, as ``slsbot report`` or a restarted runtime would read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slsbot.api import PaperSettings
from slsbot_runtime.domain.types import Candle, Fill, Order, OrderRequest, OrderStatus, Side
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.persistence.store import Durability, PositionRow, StateStore

HOUR = 3_600_000
SYMBOL = "BTC/USDT"


def stage_candle(store: StateStore, ts: int) -> None:
    store.stage_equity(ts, SYMBOL, 100_000.0 + ts, 50_000.0)
    store.stage_cursor(SYMBOL, ts)


def on_disk(path: Path) -> tuple[dict[str, int], list[int]]:
    reader = StateStore.open(path, readonly=True)
    try:
        return reader.load_cursor(), [point.ts for point in reader.load_equity()]
    finally:
        reader.close()


def test_a_runtime_store_has_every_commit_on_disk_and_a_crash_loses_only_what_was_staged(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path)  # what a runtime opens
    assert store.durability is Durability.EVERY_COMMIT
    for ts in (1, 2, 3):
        stage_candle(store, ts)
        store.commit()
        assert on_disk(path) == ({SYMBOL: ts}, list(range(1, ts + 1)))
    stage_candle(store, 4)  # the process dies with this candle staged, before its commit
    store.close()
    assert on_disk(path) == ({SYMBOL: 3}, [1, 2, 3])


def test_a_backtest_store_writes_nothing_at_commit_nor_at_flush(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path, durability=Durability.NONE)
    for ts in (1, 2, 3):
        stage_candle(store, ts)
        store.commit()
        assert on_disk(path) == ({}, [])
    store.flush()
    assert on_disk(path) == ({}, [])
    assert store.has_staged
    assert store.staged_equity() == ([1, 2, 3], [100_001.0, 100_002.0, 100_003.0])
    store.close()  # a crash or the end of the run: nothing was ever written
    assert on_disk(path) == ({}, [])


def order(cid: str, status: OrderStatus = OrderStatus.PENDING, filled: float = 0.0) -> Order:
    return Order(cid, SYMBOL, Side.BUY, 0.5, status=status, filled_quantity=filled, created_ts=1, updated_ts=2)


def stage_a_session(store: StateStore) -> None:
    """Two candles with orders, fills, positions, risk, meta and a paper book, committed as the loop commits."""
    paper = PaperExchange(PaperSettings(), interval_ms=HOUR)
    paper.on_candle(Candle(SYMBOL, 0, 100.0, 101.0, 99.0, 100.0, 10.0))
    for cid in ("c", "a", "b"):
        store.stage_order(order(cid))
    paper.place_order(OrderRequest("a", SYMBOL, Side.BUY, 0.5, created_ts=HOUR))
    store.stage_paper_book(paper.drain_changes())
    store.stage_risk_json(0, '{"ts": 0}')
    store.stage_meta("cash", 10_000.0)
    stage_candle(store, 0)
    store.commit()
    paper.on_candle(Candle(SYMBOL, HOUR, 100.0, 102.0, 99.0, 101.0, 10.0))
    store.stage_order(order("a", OrderStatus.FILLED, 0.5))  # an update keeps the order's place
    store.stage_order(order("d"))
    store.stage_fill(Fill("a-f1", "a", SYMBOL, Side.BUY, 0.5, 100.0, 0.05, "USDT", HOUR))
    store.stage_position(PositionRow(SYMBOL, 0.5, 100.1))
    store.stage_risk_decision(
        ts=HOUR, symbol=SYMBOL, side="buy", is_entry=True, action="reduced", requested_quantity=1.0, quantity=0.5,
        events=[("max_per_trade", "cut to 0.5")],
    )  # fmt: skip
    store.stage_paper_book(paper.drain_changes())
    store.stage_risk_json(HOUR, '{"ts": 3600000}')
    store.stage_meta("cash", 9_949.95)
    stage_candle(store, HOUR)
    store.commit()


def everything(path: Path) -> dict[str, Any]:
    reader = StateStore.open(path, readonly=True)
    try:
        return {
            "orders": reader.load_orders(),
            "fills": reader.load_fills(),
            "positions": reader.load_positions(),
            "equity": reader.load_equity(),
            "cursor": reader.load_cursor(),
            "risk": reader.load_risk(),
            "risk_decisions": reader.load_risk_decisions(),
            "meta": reader.load_meta(),
            "paper": reader.load_paper_book(),
        }
    finally:
        reader.close()


def test_a_store_that_never_writes_keeps_the_fills_and_equity_the_commits_write(tmp_path: Path) -> None:
    """What a backtest reads from memory is what a runtime's commits put in the file, duplicates included: a fill
    staged twice is stored once (the first), and an equity row staged again for the same candle replaces the earlier
    one at the end of the curve (``INSERT OR REPLACE`` gives it a new rowid)."""
    stores = {}
    for durability in Durability:
        store = StateStore.open(tmp_path / f"{durability}.db", durability=durability)
        stage_a_session(store)
        store.stage_fill(Fill("a-f1", "a", SYMBOL, Side.BUY, 0.25, 99.0, 0.02, "USDT", 2 * HOUR))  # a fill again
        store.stage_fill(Fill("a-f2", "a", SYMBOL, Side.BUY, 0.25, 101.0, 0.02, "USDT", 2 * HOUR))
        store.stage_equity(0, SYMBOL, 99_999.0, 50_000.0)  # the first candle's row again
        store.commit()
        stores[durability] = store
    committed = everything(tmp_path / f"{Durability.EVERY_COMMIT}.db")
    assert [f.fill_id for f in committed["fills"]] == ["a-f1", "a-f2"] and committed["fills"][0].price == 100.0
    assert [(p.ts, p.equity) for p in committed["equity"]] == [(HOUR, 100_000.0 + HOUR), (0, 99_999.0)]
    kept = stores[Durability.NONE]
    assert kept.staged_fills() == committed["fills"]
    assert kept.staged_equity() == ([p.ts for p in committed["equity"]], [p.equity for p in committed["equity"]])
    assert everything(tmp_path / f"{Durability.NONE}.db")["fills"] == []
    for store in stores.values():
        store.close()


def test_an_unknown_durability_is_refused_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^durability: 'batched' is not one of everyCommit, none \(Durability\)$"):
        StateStore.open(tmp_path / "state.db", durability="batched")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
