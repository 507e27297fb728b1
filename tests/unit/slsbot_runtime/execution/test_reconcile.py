"""Reconciliation after a restart: every path of the algorithm, on a real paper exchange."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import Candle, Fill, OrderStatus, Side
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.execution.reconcile import reconcile
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
        cash=stored.load_meta().get("cash", 10_000.0), positions=stored.load_positions(), trade_count=0
    )
    return manager


def save(manager: OrderManager) -> None:
    manager.store.stage_meta("cash", manager.ledger.cash)
    manager.store.commit()
    manager.store.close()


def buy(manager: OrderManager, hour: int = 0, quantity: float = 1.0):
    return manager.create_intent(SYMBOL, Side.BUY, quantity, candle_ts=hour * HOUR, created_ts=(hour + 1) * HOUR)


def test_a_clean_state_has_nothing_to_do(make_manager: Make, state_path: Path) -> None:
    save(make_manager())
    report = reconcile(restarted(make_manager, state_path))
    assert (report.checked, report.resent, report.fills_booked, report.problems) == (0, [], 0, [])


def test_a_pending_intent_the_exchange_never_saw_is_resent_with_its_id(
    make_manager: Make, exchange: FlakyExchange, state_path: Path, candle_at: Callable[..., Candle]
) -> None:
    manager = make_manager()
    order = buy(manager)
    manager.commit()  # on disk, then the process dies before sending
    save(manager)
    again = restarted(make_manager, state_path)
    report = reconcile(again)
    assert report.resent == [order.client_order_id]
    assert exchange.placed == [order.client_order_id]
    assert again.orders[order.client_order_id].status == OrderStatus.OPEN
    again.apply_fills(exchange.on_candle(candle_at(1)))
    assert again.ledger.quantity(SYMBOL) == 1.0


def test_a_pending_intent_the_exchange_has_is_taken_over_with_its_fills(
    make_manager: Make, exchange: FlakyExchange, state_path: Path, candle_at: Callable[..., Candle]
) -> None:
    manager = make_manager()
    exchange.on_candle(candle_at(0))
    order = buy(manager)
    manager.send_pending()  # sent; the acknowledgement never reached the disk
    manager.store.close()
    exchange.on_candle(candle_at(1, price=101.0))  # filled while the runtime was down
    again = restarted(make_manager, state_path)
    report = reconcile(again)
    assert report.resent == [] and report.updated == [order.client_order_id] and report.fills_booked == 1
    assert exchange.placed == [order.client_order_id]
    mine = again.orders[order.client_order_id]
    assert mine.status == OrderStatus.FILLED and mine.average_price == 101.0
    assert again.ledger.quantity(SYMBOL) == 1.0
    assert again.ledger.cash == pytest.approx(exchange.paper.balance("USDT"))


def test_a_pending_intent_the_exchange_holds_open_is_followed_and_never_sent_again(
    make_manager: Make, exchange: FlakyExchange, state_path: Path, candle_at: Callable[..., Candle]
) -> None:
    manager = make_manager()
    exchange.on_candle(candle_at(0))
    order = buy(manager)
    manager.send_pending()  # resting on the book; the acknowledgement never reached the disk
    manager.store.close()
    again = restarted(make_manager, state_path)
    assert again.orders[order.client_order_id].status == OrderStatus.PENDING
    reconcile(again)
    assert again.orders[order.client_order_id].status == OrderStatus.OPEN
    assert not again.has_unsent  # the exchange has it: nothing is left to send
    assert again.send_pending() == [] and exchange.placed == [order.client_order_id]
    assert again.submissions == 0
    again.refresh(SYMBOL)  # followed like any open order from now on
    again.apply_fills(exchange.on_candle(candle_at(1, price=102.0)))
    assert again.orders[order.client_order_id].status == OrderStatus.FILLED
    assert again.ledger.quantity(SYMBOL) == 1.0


def test_fills_of_an_open_order_that_arrive_while_down_are_booked_once(
    make_manager: Make, exchange: FlakyExchange, state_path: Path, candle_at: Callable[..., Candle]
) -> None:
    manager = make_manager()
    exchange.paper.settings = exchange.paper.settings.model_copy(update={"max_volume_participation": 0.5})
    exchange.on_candle(candle_at(0))
    order = buy(manager, quantity=4.0)
    manager.send_pending()
    manager.apply_fills(exchange.on_candle(candle_at(1, volume=2.0)))  # 1 of 4 booked
    save(manager)
    exchange.on_candle(candle_at(2, volume=4.0))  # 2 more while down
    again = restarted(make_manager, state_path)
    report = reconcile(again)
    assert report.fills_booked == 1  # the first fill was already booked; only the new one counts
    assert again.orders[order.client_order_id].filled_quantity == 3.0
    assert again.orders[order.client_order_id].status == OrderStatus.PARTIALLY_FILLED
    assert again.ledger.quantity(SYMBOL) == 3.0
    assert reconcile(again).fills_booked == 0  # a second pass changes nothing


def test_an_acknowledged_order_the_exchange_does_not_know_is_unexplained(
    make_manager: Make, exchange: FlakyExchange, state_path: Path
) -> None:
    manager = make_manager()
    order = buy(manager)
    manager.send_pending()
    save(manager)
    exchange.paper.restore(orders=[], eligible_ts={}, fills=[], balances=[], clock_ms=0)  # a wiped account
    with pytest.raises(StateError, match=rf"order {order.client_order_id} \(BTC/USDT\) is open here but the exchange"):
        reconcile(restarted(make_manager, state_path))


def test_a_position_the_balances_do_not_hold_is_unexplained(make_manager: Make, state_path: Path) -> None:
    manager = make_manager()
    manager.ledger.apply(Fill("ghost", "x", SYMBOL, Side.BUY, 0.5, 100.0, 0.0, "USDT", 0))
    manager.store.stage_position(manager.ledger.positions[SYMBOL])
    save(manager)
    with pytest.raises(StateError) as caught:
        reconcile(restarted(make_manager, state_path))
    message = str(caught.value)
    assert "BTC/USDT: position 0.5 BTC but the exchange balance is 0.0" in message
    assert "cash: 9950.0 USDT booked but the exchange balance is 10000.0" in message
