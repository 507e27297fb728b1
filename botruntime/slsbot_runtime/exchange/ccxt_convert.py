"""Pure translations from ccxt's unified structures (orders, trades, balances, OHLCV rows) to runtime types.

No I/O; a malformed structure raises ``ExchangeError`` (or ``DataError`` for candles) naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

from slsbot_runtime.domain.errors import DataError, ExchangeError
from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import Balance, Candle, Fill, Order, OrderRequest, OrderStatus, OrderType, Side

_CLOSED_STATUSES = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
}


def _number(raw: Mapping[str, Any], key: str, default: float | None = None) -> float | None:
    value = raw.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ExchangeError(f"exchange returned a non-numeric {key!r}: {value!r}") from None
    return number if math.isfinite(number) else default


def order_status(ccxt_status: str | None, filled: float) -> OrderStatus:
    """ccxt says open/closed/canceled/expired/rejected; the runtime also tells a partial fill apart."""
    if ccxt_status in _CLOSED_STATUSES:
        return _CLOSED_STATUSES[ccxt_status]
    return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN


def order_from_ccxt(raw: Mapping[str, Any], request: OrderRequest | None = None) -> Order:
    """A runtime ``Order`` from a ccxt order structure; fields the exchange left out come from ``request``."""
    client_order_id = raw.get("clientOrderId") or (request.client_order_id if request else None)
    symbol = raw.get("symbol") or (request.symbol if request else None)
    side = raw.get("side") or (request.side.value if request else None)
    if not client_order_id or not symbol or side not in ("buy", "sell"):
        raise ExchangeError(
            f"exchange returned an order without clientOrderId/symbol/side: "
            f"clientOrderId={client_order_id!r} symbol={symbol!r} side={side!r}"
        )
    quantity = _number(raw, "amount", request.quantity if request else 0.0) or 0.0
    filled = _number(raw, "filled", 0.0) or 0.0
    order_type = OrderType.LIMIT if raw.get("type") == "limit" else OrderType.MARKET
    if raw.get("type") is None and request is not None:
        order_type = request.type
    created = int(raw.get("timestamp") or (request.created_ts if request else 0) or 0)
    updated = int(raw.get("lastUpdateTimestamp") or raw.get("lastTradeTimestamp") or created)
    exchange_id = raw.get("id")
    return Order(
        client_order_id=str(client_order_id),
        symbol=str(symbol),
        side=Side(side),
        quantity=quantity,
        type=order_type,
        limit_price=_number(raw, "price") if order_type is OrderType.LIMIT else None,
        status=order_status(raw.get("status"), filled),
        exchange_order_id=str(exchange_id) if exchange_id not in (None, "") else None,
        filled_quantity=filled,
        average_price=_number(raw, "average") if filled > 0 else None,
        created_ts=created,
        updated_ts=updated,
        reason=request.reason if request else "",
    )


def fill_from_ccxt(raw: Mapping[str, Any], client_order_id: str) -> Fill:
    fee = raw.get("fee") or {}
    side = raw.get("side")
    if not raw.get("id") or side not in ("buy", "sell") or raw.get("timestamp") is None:
        raise ExchangeError(f"exchange returned a trade without id/side/timestamp: {raw.get('id')!r}")
    return Fill(
        fill_id=str(raw["id"]),
        client_order_id=client_order_id,
        symbol=str(raw.get("symbol")),
        side=Side(side),
        quantity=_number(raw, "amount", 0.0) or 0.0,
        price=_number(raw, "price", 0.0) or 0.0,
        fee=_number(fee, "cost", 0.0) or 0.0,
        fee_currency=str(fee.get("currency") or ""),
        ts=int(raw["timestamp"]),
    )


def balances_from_ccxt(raw: Mapping[str, Any]) -> dict[str, Balance]:
    """Currencies with a non-zero balance; ccxt puts per-currency totals under ``total`` and ``free``."""
    totals = raw.get("total") or {}
    frees = raw.get("free") or {}
    balances: dict[str, Balance] = {}
    for currency, total in totals.items():
        total_value = float(total or 0.0)
        free_value = float(frees.get(currency) or 0.0)
        if total_value == 0.0 and free_value == 0.0:
            continue
        balances[currency] = Balance(currency=currency, total=total_value, free=free_value)
    return balances


def candle_from_row(symbol: str, row: Sequence[Any]) -> Candle:
    """One ccxt OHLCV row ``[ts_ms, open, high, low, close, volume]`` as a ``Candle``."""
    if len(row) < 6:
        raise DataError(f"{symbol}: OHLCV row has {len(row)} fields, expected 6: {list(row)!r}")
    try:
        ts = int(row[0])
        open_, high, low, close, volume = (float(v) if v is not None else math.nan for v in row[1:6])
    except (TypeError, ValueError):
        raise DataError(f"{symbol}: OHLCV row is not numeric: {list(row)!r}") from None
    if not all(math.isfinite(v) for v in (open_, high, low, close, volume)):
        raise DataError(f"{symbol}: OHLCV row at {ts} has a missing or infinite value: {list(row)!r}")
    return Candle(symbol=symbol, ts=ts, open=open_, high=high, low=low, close=close, volume=volume)


def market_rules_from_ccxt(market: Mapping[str, Any], precision_mode: int, *, source: str) -> MarketRules | None:
    """A market's step, tick and minimums from ccxt's market structure (``precision`` and ``limits``, which ccxt
    reads from the venue's filters, e.g. Binance's LOT_SIZE, PRICE_FILTER and NOTIONAL). ``precision_mode`` is the
    client's ``precisionMode``: tick sizes, or decimal places; None for any other mode or a market without them."""
    symbol = market.get("symbol")
    precision = market.get("precision") or {}
    amount, price = _number(precision, "amount"), _number(precision, "price")
    if not symbol or amount is None or price is None:
        return None
    if precision_mode == DECIMAL_PLACES:
        amount, price = float(f"1e-{int(amount)}"), float(f"1e-{int(price)}")
    elif precision_mode != TICK_SIZE:
        return None
    if amount <= 0 or price <= 0:
        return None
    limits = market.get("limits") or {}
    min_amount = _number(limits.get("amount") or {}, "min", 0.0) or 0.0
    min_notional = _number(limits.get("cost") or {}, "min", 0.0) or 0.0
    return MarketRules(str(symbol), amount, price, max(min_amount, 0.0), max(min_notional, 0.0), source)
