"""ccxt's unified orders, trades, balances and OHLCV rows become runtime types; malformed ones are refused
naming the field."""

from __future__ import annotations

import ccxt
import pytest

from slsbot_runtime.domain.errors import DataError, ExchangeError
from slsbot_runtime.domain.types import OrderRequest, OrderStatus, OrderType, Side
from slsbot_runtime.exchange.ccxt_convert import (
    balances_from_ccxt,
    candle_from_row,
    fill_from_ccxt,
    market_rules_from_ccxt,
    order_from_ccxt,
    order_status,
)


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("open", 0.0, OrderStatus.OPEN),
        ("open", 0.4, OrderStatus.PARTIALLY_FILLED),
        (None, 0.0, OrderStatus.OPEN),
        ("closed", 1.0, OrderStatus.FILLED),
        ("canceled", 0.4, OrderStatus.CANCELED),
        ("expired", 0.0, OrderStatus.CANCELED),
        ("rejected", 0.0, OrderStatus.REJECTED),
    ],
)
def test_order_status(status, filled, expected):
    assert order_status(status, filled) is expected


def test_a_full_ccxt_order():
    raw = {
        "id": "42",
        "clientOrderId": "c1",
        "symbol": "BTC/USDT",
        "side": "sell",
        "type": "limit",
        "amount": 0.5,
        "filled": 0.2,
        "price": "61000.5",
        "average": 61000.5,
        "status": "open",
        "timestamp": 1000,
        "lastUpdateTimestamp": 2000,
    }

    order = order_from_ccxt(raw)

    assert (order.client_order_id, order.exchange_order_id, order.side, order.type) == (
        "c1",
        "42",
        Side.SELL,
        OrderType.LIMIT,
    )
    assert (order.quantity, order.filled_quantity, order.remaining) == pytest.approx((0.5, 0.2, 0.3))
    assert (order.limit_price, order.average_price, order.status) == (61000.5, 61000.5, OrderStatus.PARTIALLY_FILLED)
    assert (order.created_ts, order.updated_ts) == (1000, 2000)


def test_an_answer_with_ids_only_is_completed_from_the_request():
    request = OrderRequest("c2", "ETH/USDT", Side.BUY, 1.5, reason="entry", created_ts=5)

    order = order_from_ccxt({"id": "7", "clientOrderId": "c2"}, request)

    assert (order.symbol, order.side, order.quantity, order.type) == ("ETH/USDT", Side.BUY, 1.5, OrderType.MARKET)
    assert (order.status, order.reason, order.average_price) == (OrderStatus.OPEN, "entry", None)


def test_an_order_without_client_id_or_side_is_refused():
    with pytest.raises(ExchangeError, match="clientOrderId"):
        order_from_ccxt({"id": "1", "symbol": "BTC/USDT", "side": "buy"})
    with pytest.raises(ExchangeError, match="non-numeric 'amount'"):
        order_from_ccxt({"clientOrderId": "c", "symbol": "BTC/USDT", "side": "buy", "amount": "lots"})


def test_a_trade_becomes_a_fill():
    raw = {
        "id": "t9",
        "side": "buy",
        "symbol": "BTC/USDT",
        "amount": 0.01,
        "price": 60000.0,
        "timestamp": 77,
        "fee": {"cost": 0.00001, "currency": "BTC"},
    }

    fill = fill_from_ccxt(raw, "c1")

    assert (fill.fill_id, fill.client_order_id, fill.quantity, fill.price) == ("t9", "c1", 0.01, 60000.0)
    assert (fill.fee, fill.fee_currency, fill.ts) == (0.00001, "BTC", 77)
    assert fill_from_ccxt({**raw, "fee": None}, "c1").fee == 0.0
    with pytest.raises(ExchangeError):
        fill_from_ccxt({**raw, "timestamp": None}, "c1")


def test_balances_keep_non_zero_currencies():
    raw = {"total": {"USDT": 100.0, "BTC": 0.0, "ETH": 2.0}, "free": {"USDT": 60.0, "ETH": None}}

    balances = balances_from_ccxt(raw)

    assert sorted(balances) == ["ETH", "USDT"]
    assert (balances["USDT"].total, balances["USDT"].free, balances["ETH"].free) == (100.0, 60.0, 0.0)


def test_candle_rows():
    candle = candle_from_row("BTC/USDT", [1000, "1", 2, 0.5, 1.5, 10])
    assert (candle.ts, candle.open, candle.high, candle.low, candle.close, candle.volume) == (1000, 1, 2, 0.5, 1.5, 10)
    for bad, match in [([1, 2, 3], "6"), ([1, "x", 2, 3, 4, 5], "not numeric"), ([1, None, 2, 3, 4, 5], "missing")]:
        with pytest.raises(DataError, match=match):
            candle_from_row("BTC/USDT", bad)


# ccxt's market for Binance's BTCUSDT spot (its captured test markets), trimmed to the fields read
BINANCE_BTC = {
    "symbol": "BTC/USDT",
    "precision": {"amount": 0.00001, "price": 0.01, "base": 1e-8, "quote": 1e-8},
    "limits": {"amount": {"min": 0.00001, "max": 9000}, "price": {"min": 0.01}, "cost": {"min": 5, "max": 9e6}},
}


def test_market_rules_come_from_ccxts_precision_and_limits() -> None:
    rules = market_rules_from_ccxt(BINANCE_BTC, ccxt.TICK_SIZE, source="binance markets")
    assert rules is not None
    assert (rules.symbol, rules.amount_step, rules.price_tick) == ("BTC/USDT", 0.00001, 0.01)
    assert (rules.min_amount, rules.min_notional, rules.source) == (0.00001, 5.0, "binance markets")


def test_decimal_place_precision_becomes_a_step_and_unknown_modes_give_none() -> None:
    places = {**BINANCE_BTC, "precision": {"amount": 5, "price": 2}, "limits": {}}
    rules = market_rules_from_ccxt(places, ccxt.DECIMAL_PLACES, source="x")
    assert rules is not None and (rules.amount_step, rules.price_tick, rules.min_notional) == (0.00001, 0.01, 0.0)
    assert market_rules_from_ccxt(BINANCE_BTC, ccxt.SIGNIFICANT_DIGITS, source="x") is None
    assert market_rules_from_ccxt({"symbol": "BTC/USDT", "precision": {}}, ccxt.TICK_SIZE, source="x") is None
