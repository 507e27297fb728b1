"""The ``BookPersistence`` capability: the paper exchange offers its book, a ccxt exchange none; a book stored and
restored through the capability alone settles a shutdown flatten exactly as the original would."""

from __future__ import annotations

from pathlib import Path

import ccxt

from slsbot.api import PaperSettings
from slsbot_runtime.domain.types import Candle, OrderRequest, OrderType, Side
from slsbot_runtime.exchange.base import BookPersistence
from slsbot_runtime.exchange.ccxt_exchange import CcxtExchange
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.persistence.store import StateStore

HOUR = 3_600_000
T0 = 1_700_000_000_000 // HOUR * HOUR
SYMBOL = "BTC/USDT"


def paper() -> PaperExchange:
    return PaperExchange(PaperSettings(starting_balance=10_000.0), interval_ms=HOUR)


def store_book(book: BookPersistence, path: Path) -> None:
    """What the engine's commit does with the capability."""
    store = StateStore.open(path)
    store.stage_paper_book(book.drain_changes())
    store.stage_meta("paper_last_close", book.last_closes())
    store.commit()
    store.close()


def restore_book(book: BookPersistence, path: Path) -> None:
    """What the engine's start does with it."""
    store = StateStore.open(path)
    stored = store.load_paper_book()
    assert stored is not None
    book.restore(
        orders=stored.orders,
        eligible_ts=stored.eligible_ts,
        fills=stored.fills,
        balances=stored.balances,
        clock_ms=stored.clock_ms,
        last_close=store.load_meta().get("paper_last_close"),
    )
    store.close()


def test_the_paper_exchange_offers_its_own_book_and_ccxt_none() -> None:
    exchange = paper()
    assert exchange.book_persistence() is exchange
    assert CcxtExchange(ccxt.binance()).book_persistence() is None


def test_a_restored_book_settles_a_flatten_as_the_original_would(tmp_path: Path) -> None:
    original = paper()
    original.place_order(OrderRequest("sls-buy", SYMBOL, Side.BUY, 0.5, OrderType.MARKET, created_ts=T0 + HOUR))
    original.on_candle(Candle(SYMBOL, T0 + HOUR, 100.0, 101.0, 99.0, 100.5, 1_000.0))
    original.on_candle(Candle(SYMBOL, T0 + 2 * HOUR, 100.5, 106.0, 100.0, 105.0, 1_000.0))
    original.place_order(OrderRequest("sls-exit", SYMBOL, Side.SELL, 0.5, OrderType.MARKET, created_ts=T0 + 3 * HOUR))
    store_book(original, tmp_path / "state.db")

    restored = paper()
    restore_book(restored.book_persistence(), tmp_path / "state.db")
    assert restored.fetch_open_orders() == original.fetch_open_orders()
    assert restored.fetch_balances() == original.fetch_balances()
    settled, expected = restored.settle_now(), original.settle_now()
    assert settled == expected and len(settled) == 1 and settled[0].price < 105.0  # at the last close, adverse


def test_changes_come_in_placement_order_after_a_restore_too(tmp_path: Path) -> None:
    limit = OrderType.LIMIT
    original = paper()
    for number in (1, 2):  # two resting limit orders, stored, then restored into a new exchange
        request = OrderRequest(f"sls-old{number}", SYMBOL, Side.BUY, 0.2, limit, 50.0, created_ts=T0 + HOUR)
        original.place_order(request)
    store_book(original, tmp_path / "state.db")
    restored = paper()
    restore_book(restored, tmp_path / "state.db")
    assert not restored.drain_changes().orders
    restored.place_order(OrderRequest("sls-new", SYMBOL, Side.BUY, 0.2, limit, 50.0, created_ts=T0 + 2 * HOUR))
    restored.cancel_order("sls-old2", SYMBOL)  # changed after the newer order was placed
    restored.cancel_order("sls-old1", SYMBOL)
    changes = restored.drain_changes()
    assert [(o.client_order_id, o.exchange_order_id) for o in changes.orders] == [
        ("sls-old1", "paper-1"),
        ("sls-old2", "paper-2"),
        ("sls-new", "paper-3"),
    ]
