"""The paper exchange hands out copies of its orders, equal to ``dataclasses.replace`` of them and detached."""

from __future__ import annotations

from dataclasses import fields, replace

from slsbot.api import PaperSettings
from slsbot_runtime.domain.types import Order, OrderRequest, OrderStatus, OrderType, Side
from slsbot_runtime.exchange.paper import PaperExchange, copy_order, split_symbol


def every_field_set() -> Order:
    """An order whose every field differs from its default, so a field the copy forgot shows."""
    values = {
        "client_order_id": "c1",
        "symbol": "ETH/USDT",
        "side": Side.SELL,
        "quantity": 2.5,
        "type": OrderType.LIMIT,
        "limit_price": 3_000.0,
        "status": OrderStatus.PARTIALLY_FILLED,
        "exchange_order_id": "paper-7",
        "filled_quantity": 1.0,
        "average_price": 3_001.0,
        "created_ts": 11,
        "updated_ts": 12,
        "reason": "exit long",
    }
    assert set(values) == {f.name for f in fields(Order)}, "a new Order field: give it a value here and copy it"
    order = Order(**values)
    assert all(getattr(order, f.name) != f.default for f in fields(Order))
    return order


def test_copy_order_equals_replace_and_is_detached() -> None:
    order = every_field_set()
    copied = copy_order(order)
    assert copied == replace(order) and copied is not order
    copied.filled_quantity = 2.0
    assert order.filled_quantity == 1.0


def test_orders_handed_out_do_not_change_the_book() -> None:
    exchange = PaperExchange(PaperSettings(starting_balance=10_000.0), interval_ms=3_600_000)
    placed = exchange.place_order(OrderRequest("c1", "BTC/USDT", Side.BUY, 0.01, created_ts=1))
    placed.status = OrderStatus.CANCELED
    fetched = exchange.fetch_order("c1", "BTC/USDT")
    assert fetched is not None and fetched.status == OrderStatus.OPEN
    assert exchange.fetch_open_orders("BTC/USDT") == [fetched]


def test_split_symbol() -> None:
    assert split_symbol("BTC/USDT") == ("BTC", "USDT")
    assert split_symbol("BTC/USDT:USDT") == ("BTC", "USDT")
