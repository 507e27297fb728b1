"""What a commit guarantees (``Durability``): a runtime's store has each commit on disk when ``commit()`` returns;
a backtest's (``Durability.NONE``) writes nothing until ``flush()``, and then exactly what the commits would have.

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


def test_a_backtest_store_writes_nothing_at_commit_and_everything_at_flush(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path, durability=Durability.NONE)
    for ts in (1, 2, 3):
        stage_candle(store, ts)
        store.commit()
        assert on_disk(path) == ({}, [])
    store.flush()
    assert on_disk(path) == ({SYMBOL: 3}, [1, 2, 3])
    assert not store.has_staged


def test_a_crash_loses_everything_a_backtest_store_did_not_flush(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path, durability=Durability.NONE)
    stage_candle(store, 1)
    store.flush()
    for ts in (2, 3):
        stage_candle(store, ts)
        store.commit()
    store.close()
    assert on_disk(path) == ({SYMBOL: 1}, [1])


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


def test_one_flush_writes_exactly_what_the_commits_write(tmp_path: Path) -> None:
    stores = {}
    for durability in Durability:
        path = tmp_path / f"{durability}.db"
        store = StateStore.open(path, durability=durability)
        stage_a_session(store)
        store.flush()
        store.close()
        stores[durability] = everything(path)
    committed = stores[Durability.EVERY_COMMIT]
    assert [o.client_order_id for o in committed["orders"]] == ["c", "a", "b", "d"]
    assert committed["paper"] is not None and len(committed["paper"].fills) == 1
    assert stores[Durability.NONE] == committed


def test_an_unknown_durability_is_refused_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^durability: 'batched' is not one of everyCommit, none \(Durability\)$"):
        StateStore.open(tmp_path / "state.db", durability="batched")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
