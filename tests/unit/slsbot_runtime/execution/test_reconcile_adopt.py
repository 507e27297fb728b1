"""Reconciliation's adoption step: a state that lost its tail (restored from an older backup, or cut by a crash)
takes over the orders of its own that the exchange has and it lacks, books their fills once, and never takes
another strategy's orders on the same account. On a real paper exchange and a real state file."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slsbot_runtime.domain.types import Candle, OrderRequest, OrderStatus, OrderType, Side
from slsbot_runtime.execution.client_ids import legacy_client_order_id, legacy_client_order_ids
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.execution.reconcile import adoption_start, reconcile
from slsbot_runtime.persistence.store import StateStore

HOUR = 3_600_000
SYMBOL = "BTC/USDT"
Make = Callable[..., OrderManager]
FlakyExchange = Any  # the wrapper from conftest.py


def restarted(make_manager: Make, state_path: Path) -> OrderManager:
    """A new manager loaded from what the state file holds, as after a restart."""
    manager = make_manager()
    stored = StateStore.open(state_path, readonly=True)
    manager.load(stored.load_orders(), stored.load_fills())
    manager.ledger.restore(
        cash=stored.load_meta().get("cash", 10_000.0),
        positions=stored.load_positions(),
        trade_count=stored.load_meta().get("trade_count", 0),
    )
    stored.close()
    return manager


def copy_database(source: Path, target: Path) -> None:
    """What a backup and a restore of the state file do: a consistent copy (SQLite's online backup)."""
    with sqlite3.connect(source) as reader, sqlite3.connect(target) as writer:
        reader.backup(writer)
    reader.close()
    writer.close()


def save(manager: OrderManager) -> None:
    manager.store.stage_meta("cash", manager.ledger.cash)
    manager.store.stage_meta("trade_count", manager.ledger.trade_count)
    manager.store.commit()


def trade(
    manager: OrderManager,
    exchange: FlakyExchange,
    side: Side,
    hour: int,
    quantity: float,
    candle_at: Callable[..., Candle],
    price: float = 100.0,
) -> str:
    """Decide on candle ``hour``, send, and book the fill on candle ``hour + 1`` at ``price``."""
    order = manager.create_intent(
        SYMBOL, side, quantity, candle_ts=hour * HOUR, created_ts=(hour + 1) * HOUR, reason=f"{side} at {hour}"
    )
    manager.send_pending()
    manager.apply_fills(exchange.on_candle(candle_at(hour + 1, price=price)))
    return order.client_order_id


def resting_buy(manager: OrderManager, hour: int) -> str:
    """A limit buy far below the market: it stays open."""
    order = manager.create_intent(
        SYMBOL,
        Side.BUY,
        0.5,
        candle_ts=hour * HOUR,
        created_ts=(hour + 1) * HOUR,
        order_type=OrderType.LIMIT,
        limit_price=50.0,
        reason="enter long (limit)",
    )
    manager.send_pending()
    return order.client_order_id


@pytest.fixture
def lost_tail(
    make_manager: Make, exchange: FlakyExchange, state_path: Path, candle_at: Callable[..., Candle], tmp_path: Path
) -> tuple[OrderManager, list[str]]:
    """A bot that bought on hour 0 (state backed up then), then made a round trip, bought again and left a limit
    order open; the state file is then put back to the backup. Returns the bot as it was before the loss (what the
    exchange saw) and the ids the restored state lacks."""
    manager = make_manager()
    exchange.on_candle(candle_at(0))
    trade(manager, exchange, Side.BUY, 0, 1.0, candle_at)
    save(manager)
    backup = tmp_path / "backup.db"
    copy_database(state_path, backup)
    lost = [
        trade(manager, exchange, Side.SELL, 1, 1.0, candle_at, price=110.0),
        trade(manager, exchange, Side.BUY, 2, 2.0, candle_at, price=105.0),
        resting_buy(manager, 3),
    ]
    save(manager)
    manager.store.close()
    copy_database(backup, state_path)
    return manager, lost


def test_orders_the_state_lost_are_adopted_and_their_fills_booked_once(
    make_manager: Make, exchange: FlakyExchange, state_path: Path, lost_tail: tuple[OrderManager, list[str]]
) -> None:
    before, lost = lost_tail
    again = restarted(make_manager, state_path)
    assert set(again.orders) == set(before.orders) - set(lost)
    report = reconcile(again, symbols=[SYMBOL], cursor={SYMBOL: 0})
    assert report.adopted == lost and report.fills_booked == 2 and report.problems == []
    for cid, order in before.orders.items():
        mine, theirs = again.orders[cid], exchange.fetch_order(cid, SYMBOL)
        assert (mine.status, mine.side, mine.quantity, mine.filled_quantity) == (
            theirs.status,
            theirs.side,
            theirs.quantity,
            theirs.filled_quantity,
        )
        assert (mine.exchange_order_id, mine.type, mine.limit_price) == (
            order.exchange_order_id,
            order.type,
            order.limit_price,
        )
    assert again.orders[lost[2]].status == OrderStatus.OPEN  # the resting order, adopted from the open orders
    # the books equal the exchange's, and the round trip's result is what the bot booked before the loss
    assert again.ledger.quantity(SYMBOL) == pytest.approx(exchange.paper.balance("BTC")) == 2.0
    assert again.ledger.cash == pytest.approx(exchange.paper.balance("USDT"))
    assert again.ledger.cash == pytest.approx(before.ledger.cash)
    assert again.ledger.realized() == pytest.approx(before.ledger.realized())
    assert again.has_unfinished(SYMBOL)  # the open order is followed like any other from now on


def test_a_second_reconcile_and_a_second_restart_book_nothing_twice(
    make_manager: Make, exchange: FlakyExchange, state_path: Path, lost_tail: tuple[OrderManager, list[str]]
) -> None:
    before, _ = lost_tail
    again = restarted(make_manager, state_path)
    reconcile(again, symbols=[SYMBOL], cursor={SYMBOL: 0})
    cash, trades = again.ledger.cash, again.ledger.trade_count
    second = reconcile(again, symbols=[SYMBOL], cursor={SYMBOL: 0})
    assert (second.adopted, second.fills_booked) == ([], 0)
    assert (again.ledger.cash, again.ledger.trade_count) == (cash, trades)
    save(again)  # the reconcile's changes are written, as the runtime does after it
    again.store.close()
    third = restarted(make_manager, state_path)
    assert set(third.orders) == set(before.orders)
    report = reconcile(third, symbols=[SYMBOL], cursor={SYMBOL: 0})
    assert (report.adopted, report.fills_booked) == ([], 0)
    assert third.ledger.cash == pytest.approx(exchange.paper.balance("USDT"))


def test_another_strategys_orders_on_the_same_account_are_not_adopted(
    make_manager: Make,
    exchange: FlakyExchange,
    state_path: Path,
    candle_at: Callable[..., Candle],
    tmp_path: Path,
) -> None:
    exchange.features = {**exchange.features, "exclusive_account": False}  # two bots share the account
    other = OrderManager(
        exchange=exchange,
        store=StateStore.open(tmp_path / "other.db"),
        ledger=Ledger(cash=10_000.0, quote_currency="USDT"),
        strategy_key="default/other",
    )
    mine = make_manager()
    exchange.on_candle(candle_at(0))
    trade(mine, exchange, Side.BUY, 0, 1.0, candle_at)
    save(mine)
    mine.store.close()
    theirs = [trade(other, exchange, Side.BUY, 1, 3.0, candle_at), resting_buy(other, 2)]
    again = restarted(make_manager, state_path)
    report = reconcile(again, symbols=[SYMBOL], cursor={SYMBOL: 0})
    assert report.adopted == [] and report.fills_booked == 0
    assert not set(theirs) & set(again.orders)
    assert again.ledger.quantity(SYMBOL) == 1.0 and exchange.paper.balance("BTC") == 4.0


def test_a_new_state_adopts_nothing_and_a_symbol_without_fills_starts_at_its_cursor() -> None:
    assert adoption_start(SYMBOL, last_fill_ts=5 * HOUR, cursor={SYMBOL: 9 * HOUR}) == 5 * HOUR
    assert adoption_start(SYMBOL, last_fill_ts=None, cursor={SYMBOL: 9 * HOUR}) == 9 * HOUR
    assert adoption_start(SYMBOL, last_fill_ts=None, cursor={"ETH/USDT": 7 * HOUR, "SOL/USDT": 8 * HOUR}) == 7 * HOUR
    assert adoption_start(SYMBOL, last_fill_ts=None, cursor={}) is None


def test_a_new_state_on_an_account_this_strategy_traded_before_takes_nothing_over(
    make_manager: Make, exchange: FlakyExchange, state_path: Path, candle_at: Callable[..., Candle]
) -> None:
    earlier = make_manager()
    exchange.on_candle(candle_at(0))
    trade(earlier, exchange, Side.BUY, 0, 1.0, candle_at)
    earlier.store.close()
    state_path.unlink()  # the state file is deleted: the new one starts from nothing
    exchange.features = {**exchange.features, "exclusive_account": False}  # the cash check is not what is tested
    fresh = make_manager()
    report = reconcile(fresh, symbols=[SYMBOL], cursor={})
    assert report.adopted == [] and fresh.orders == {}


def test_an_order_made_under_the_old_id_format_after_the_backup_is_adopted_and_not_sent_again(
    make_manager: Make, exchange: FlakyExchange, state_path: Path, candle_at: Callable[..., Candle], tmp_path: Path
) -> None:
    """A state backed up before an upgrade, restored after it: the orders the old version made after the backup have
    old-format ids, which do not say their strategy; they are recognised as the old ids of this strategy's decisions
    since the backup, and a decision made again in the catch-up finds its order under that id."""
    exchange.features = {**exchange.features, "exclusive_account": False}  # another bot trades on the account too
    manager = make_manager()
    exchange.on_candle(candle_at(0))
    trade(manager, exchange, Side.BUY, 0, 1.0, candle_at)
    save(manager)
    manager.store.close()
    mine = legacy_client_order_id("default/test", SYMBOL, 1 * HOUR, 0)  # the old version sold on candle 1
    theirs = legacy_client_order_id("default/other", SYMBOL, 1 * HOUR, 0)  # another strategy, also old
    exchange.paper.place_order(OrderRequest(mine, SYMBOL, Side.SELL, 1.0, created_ts=2 * HOUR))
    exchange.paper.place_order(OrderRequest(theirs, SYMBOL, Side.BUY, 2.0, created_ts=2 * HOUR))
    exchange.on_candle(candle_at(2, price=110.0))
    again = restarted(make_manager, state_path)
    report = reconcile(again, symbols=[SYMBOL], cursor={SYMBOL: 0}, interval_ms=HOUR)
    assert report.adopted == [mine] and report.fills_booked == 1
    assert theirs not in again.orders
    assert again.ledger.quantity(SYMBOL) == 0.0
    decided_again = again.create_intent(SYMBOL, Side.SELL, 1.0, candle_ts=1 * HOUR, created_ts=2 * HOUR)
    assert decided_again is again.orders[mine] and again.send_pending() == []
    assert mine not in exchange.placed and exchange.placed.count(decided_again.client_order_id) == 0


def test_old_format_ids_are_recognised_only_among_this_strategys_decisions_since_the_start() -> None:
    ids = legacy_client_order_ids("default/test", SYMBOL, first_ts=HOUR + 1, last_ts=3 * HOUR, interval_ms=HOUR)
    assert len(ids) == 2 * 8  # candles opening at 2h and 3h, eight intents each
    assert legacy_client_order_id("default/test", SYMBOL, 2 * HOUR, 7) in ids
    assert legacy_client_order_id("default/test", SYMBOL, HOUR, 0) not in ids  # before the start
    assert legacy_client_order_id("default/other", SYMBOL, 2 * HOUR, 0) not in ids
