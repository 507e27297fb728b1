"""The order manager: intents on disk before they are sent, bounded retries, fills booked once."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slsbot_runtime.domain.errors import AuthenticationError, ExchangeUnavailable, InsufficientFunds
from slsbot_runtime.domain.types import Candle, Order, OrderRequest, OrderStatus, Side
from slsbot_runtime.execution.client_ids import client_order_id, legacy_client_order_id
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.persistence.store import StateStore

HOUR = 3_600_000
SYMBOL = "BTC/USDT"
Make = Callable[..., OrderManager]
FlakyExchange = Any  # the wrapper from conftest.py


def buy(manager: OrderManager, quantity: float = 1.0, hour: int = 0):
    return manager.create_intent(
        SYMBOL, Side.BUY, quantity, candle_ts=hour * HOUR, created_ts=(hour + 1) * HOUR, reason="enter long"
    )


def test_the_intent_is_on_disk_as_pending_before_it_is_sent(
    make_manager: Make, exchange: FlakyExchange, state_path: Path
) -> None:
    seen_on_disk: list[tuple[str, str]] = []

    def look(request: OrderRequest) -> None:
        reader = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True)
        seen_on_disk.extend(reader.execute("SELECT client_order_id, status FROM orders").fetchall())
        reader.close()

    exchange.before_place = look
    manager = make_manager()
    order = buy(manager)
    manager.send_pending()
    assert seen_on_disk == [(order.client_order_id, "pending")]
    assert order.status == OrderStatus.OPEN and order.exchange_order_id == "paper-1"


def test_a_temporary_error_is_not_retried_here_the_intent_waits_for_the_next_send(
    make_manager: Make, exchange: FlakyExchange
) -> None:
    """Retries are the exchange adapter's (see test_order_retries.py): one call per send here."""
    manager = make_manager()
    exchange.place_failures = [ExchangeUnavailable("down"), ExchangeUnavailable("down")]
    order = buy(manager)
    assert manager.send_pending() == []
    assert order.status == OrderStatus.PENDING and manager.submissions == 1
    assert manager.send_pending() == []
    assert manager.submissions == 2 and exchange.place_failures == []
    assert manager.send_pending() == [order]
    assert exchange.placed == [order.client_order_id]
    assert manager.send_pending() == []  # nothing left to send


def test_a_rejection_is_recorded_and_an_auth_error_stops(make_manager: Make, exchange: FlakyExchange) -> None:
    manager = make_manager()
    exchange.place_failures = [InsufficientFunds("balance too low for 1 BTC")]
    order = buy(manager)
    manager.send_pending()
    assert order.status == OrderStatus.REJECTED and "balance too low" in order.reason
    exchange.place_failures = [AuthenticationError("invalid key")]
    second = buy(manager, hour=1)
    with pytest.raises(AuthenticationError):
        manager.send_pending()
    assert second.status == OrderStatus.PENDING


def test_partial_fills_are_booked_once(
    candle_at: Callable[..., Candle], make_manager: Make, exchange: FlakyExchange
) -> None:
    manager = make_manager()
    exchange.paper.settings = exchange.paper.settings.model_copy(update={"max_volume_participation": 0.5})
    exchange.on_candle(candle_at(0))
    order = buy(manager, quantity=3.0)
    manager.send_pending()
    first = exchange.on_candle(candle_at(1, volume=4.0))
    assert [f.quantity for f in manager.apply_fills(first)] == [2.0]
    assert manager.apply_fills(first) == []  # the same fill again: nothing
    assert order.status == OrderStatus.PARTIALLY_FILLED and manager.ledger.quantity(SYMBOL) == 2.0
    second = exchange.on_candle(candle_at(2, volume=4.0))
    manager.apply_fills(second + first)
    assert order.status == OrderStatus.FILLED and manager.ledger.quantity(SYMBOL) == 3.0
    assert manager.ledger.trade_count == 2


def test_fills_the_exchange_has_are_fetched_on_refresh(
    candle_at: Callable[..., Candle], make_manager: Make, exchange: FlakyExchange
) -> None:
    manager = make_manager()
    exchange.on_candle(candle_at(0))
    order = buy(manager)
    manager.send_pending()
    exchange.on_candle(candle_at(1))  # fills, but the manager is not told
    manager.refresh(SYMBOL)
    assert order.status == OrderStatus.FILLED
    assert manager.ledger.quantity(SYMBOL) == 1.0 and not manager.has_unfinished(SYMBOL)


def test_fills_that_cannot_be_fetched_on_refresh_wait_for_the_next_refresh_and_are_booked_once(
    candle_at: Callable[..., Candle], make_manager: Make, exchange: FlakyExchange
) -> None:
    """The exchange shows the order filled, but its fills cannot be read right now (still failing after the adapter's
    retries): the refresh goes on without them (the error does not leave the candle half done), the order stays
    unfinished, and the next refresh books them, once."""
    errors: list[Exception] = []
    manager = make_manager(on_exchange_error=errors.append)
    exchange.on_candle(candle_at(0))
    order = buy(manager)
    manager.send_pending()
    exchange.on_candle(candle_at(1))  # fills on the exchange, the manager is not told
    exchange.fetch_fills_failures = [ExchangeUnavailable("GET /api/v3/myTrades: connection refused")]
    manager.refresh(SYMBOL)
    assert [type(e) for e in errors] == [ExchangeUnavailable]
    assert order.status == OrderStatus.PARTIALLY_FILLED and order.filled_quantity == 0.0
    assert manager.has_unfinished(SYMBOL) and manager.ledger.quantity(SYMBOL) == 0.0
    manager.refresh(SYMBOL)
    assert order.status == OrderStatus.FILLED and manager.ledger.quantity(SYMBOL) == 1.0
    manager.refresh(SYMBOL)
    assert manager.ledger.trade_count == 1 and not manager.has_unfinished(SYMBOL)


def test_a_canceled_order_whose_fills_cannot_be_fetched_stays_unfinished_until_they_are(
    candle_at: Callable[..., Candle], make_manager: Make, exchange: FlakyExchange
) -> None:
    """A terminal status from the exchange with fills not booked here would never be looked at again: the order is
    kept partially filled until its fills are booked."""
    manager = make_manager()
    exchange.paper.settings = exchange.paper.settings.model_copy(update={"max_volume_participation": 0.5})
    exchange.on_candle(candle_at(0))
    order = buy(manager, quantity=3.0)
    manager.send_pending()
    exchange.on_candle(candle_at(1, volume=4.0))  # 2 of 3 filled on the exchange, not told
    exchange.paper.cancel_order(order.client_order_id, SYMBOL)  # canceled on the exchange (by hand)
    exchange.fetch_fills_failures = [ExchangeUnavailable("down")]
    manager.refresh(SYMBOL)
    assert order.status == OrderStatus.PARTIALLY_FILLED and manager.has_unfinished(SYMBOL)
    manager.refresh(SYMBOL)
    assert order.status == OrderStatus.CANCELED and order.filled_quantity == 2.0
    assert manager.ledger.quantity(SYMBOL) == 2.0 and not manager.has_unfinished(SYMBOL)


def test_cancel_then_replace(candle_at: Callable[..., Candle], make_manager: Make, exchange: FlakyExchange) -> None:
    manager = make_manager()
    exchange.paper.settings = exchange.paper.settings.model_copy(update={"max_volume_participation": 0.5})
    exchange.on_candle(candle_at(0))
    order = buy(manager, quantity=4.0)
    manager.send_pending()
    manager.apply_fills(exchange.on_candle(candle_at(1, volume=2.0)))
    manager.cancel(order, ts=2 * HOUR)
    assert order.status == OrderStatus.CANCELED and order.filled_quantity == 1.0
    replacement = buy(manager, quantity=3.0, hour=1)
    assert replacement.client_order_id != order.client_order_id
    manager.send_pending()
    manager.apply_fills(exchange.on_candle(candle_at(2)))
    assert manager.ledger.quantity(SYMBOL) == 4.0


def test_a_pending_intent_is_canceled_locally_when_never_sent(make_manager: Make, exchange: FlakyExchange) -> None:
    manager = make_manager()
    order = buy(manager)
    manager.cancel(order, ts=HOUR)
    assert order.status == OrderStatus.CANCELED and exchange.placed == []
    assert manager.send_pending() == []


def test_a_known_id_is_recognised_after_a_restart(
    make_manager: Make, exchange: FlakyExchange, state_path: Path
) -> None:
    manager = make_manager()
    order = buy(manager)
    manager.send_pending()
    manager.store.commit()  # the acknowledgement, as the loop commits it with the next candle
    manager.store.close()
    again = make_manager()
    stored = StateStore.open(state_path, readonly=True)
    again.load(stored.load_orders(), stored.load_fills())
    same = buy(again)
    assert same.client_order_id == order.client_order_id and same.status == OrderStatus.OPEN
    assert again.send_pending() == [] and exchange.placed == [order.client_order_id]
    fresh = again.create_intent(SYMBOL, Side.SELL, 1.0, candle_ts=0, created_ts=HOUR, fresh=True)
    assert fresh.client_order_id != order.client_order_id and fresh.status == OrderStatus.PENDING


def test_an_unacknowledged_send_is_resent_with_the_same_id(
    make_manager: Make, exchange: FlakyExchange, state_path: Path
) -> None:
    manager = make_manager()
    order = buy(manager)
    manager.send_pending()  # sent, but the process dies before the acknowledgement is committed
    manager.store.close()
    again = make_manager()
    stored = StateStore.open(state_path, readonly=True)
    again.load(stored.load_orders(), stored.load_fills())
    assert again.orders[order.client_order_id].status == OrderStatus.PENDING
    assert [o.client_order_id for o in again.send_pending()] == [order.client_order_id]
    assert exchange.placed == [order.client_order_id] * 2
    assert len(exchange.paper.fetch_open_orders()) == 1  # the exchange recognised the id: one order


def test_an_order_filled_at_once_is_stored_with_the_exchanges_id(
    make_manager: Make, exchange: FlakyExchange, state_path: Path, candle_at: Callable[..., Candle]
) -> None:
    """A real exchange fills a market order before it answers: the answer is terminal and carries fills, and
    the order must still reach the state file with the exchange's order id."""
    paper = exchange.paper

    class FillsAtOnce(type(exchange)):  # type: ignore[misc]
        def place_order(self, request: OrderRequest) -> Any:
            paper.place_order(request)
            paper.on_candle(candle_at(1))
            return paper.fetch_order(request.client_order_id, request.symbol)

    manager = make_manager()
    manager.exchange = FillsAtOnce(paper)
    order = buy(manager)
    manager.send_pending()
    manager.store.commit()
    assert order.status == OrderStatus.FILLED and order.exchange_order_id == "paper-1"
    (stored,) = StateStore.open(state_path, readonly=True).load_orders()
    assert stored.exchange_order_id == "paper-1" and stored.status == OrderStatus.FILLED


def test_the_intent_is_stored_on_the_markets_step_so_the_resend_is_the_same_order(
    make_manager: Make, exchange: FlakyExchange, state_path: Path
) -> None:
    sent: list[float] = []
    exchange.before_place = lambda request: sent.append(request.quantity)
    manager = make_manager()
    order = buy(manager, quantity=0.123456789)  # BTC/USDT steps by 0.00001
    assert order.quantity == 0.12345 and order.status == OrderStatus.PENDING
    manager.send_pending()  # sent, and the process dies before the acknowledgement is committed
    manager.store.close()
    stored = StateStore.open(state_path, readonly=True)
    [on_disk] = stored.load_orders()
    assert on_disk.quantity == 0.12345
    again = make_manager()
    again.load([on_disk], [])
    again.send_pending()
    assert sent == [0.12345, 0.12345]
    [remote] = exchange.paper.fetch_open_orders()
    assert remote.quantity == on_disk.quantity  # the exchange's order and the stored intent agree


def test_a_quantity_below_one_step_is_stored_as_rejected_and_never_sent(
    make_manager: Make, exchange: FlakyExchange, state_path: Path
) -> None:
    manager = make_manager()
    order = buy(manager, quantity=4e-6)
    assert order.status == OrderStatus.REJECTED and order.quantity == 4e-6
    assert order.reason.startswith("not sent: quantity: rounds to 0 at BTC/USDT's amount step 1e-05 BTC")
    assert manager.unfinished() == [] and not manager.has_unsent
    assert manager.send_pending() == [] and exchange.placed == []
    manager.store.commit()
    [stored] = StateStore.open(state_path, readonly=True).load_orders()
    assert stored.status == OrderStatus.REJECTED


def test_a_decision_made_again_finds_its_order_stored_under_the_old_id_format_and_sends_nothing(
    make_manager: Make, exchange: FlakyExchange, state_path: Path
) -> None:
    """An upgrade from ids without the strategy's tag: a candle decided again in the catch-up after the upgrade
    gets a new-format id, but its order is in the state (and on the exchange) under the old one."""
    old_id = legacy_client_order_id("default/test", SYMBOL, 0, 0)
    exchange.paper.place_order(OrderRequest(old_id, SYMBOL, Side.BUY, 1.0, created_ts=HOUR))
    upgraded = make_manager()
    upgraded.load([Order(old_id, SYMBOL, Side.BUY, 1.0, status=OrderStatus.OPEN, exchange_order_id="paper-1")], [])
    again = buy(upgraded)  # the same decision: candle 0, the first intent on it
    assert again.client_order_id == old_id and again is upgraded.orders[old_id]
    assert upgraded.send_pending() == [] and exchange.placed == []
    after = buy(upgraded, hour=1)  # a new decision gets a new-format id
    assert after.client_order_id == client_order_id("default/test", SYMBOL, HOUR, 0) != old_id
    assert upgraded.send_pending() == [after] and exchange.placed == [after.client_order_id]
