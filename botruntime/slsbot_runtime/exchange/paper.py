"""A simulated spot exchange that fills orders against recorded or live candles.

Conventions (also in docs/concepts/runtime-loop.md):

* The exchange clock is the close time of the newest candle it has seen; an order is *submitted* at
  ``max(clock, request.created_ts)``. It may fill on the first candle whose open time is at or after
  ``submitted + latency_ms``. With no latency, a decision taken at the close of candle t fills at the
  open of t+1; an order submitted fewer than ``latency_ms`` before a candle's open waits one more candle.
* Market orders fill at that candle's open, moved against the trader by half the spread plus the
  slippage (buys higher, sells lower). Limit orders fill when the candle trades *through* the price
  (low below a buy limit, high above a sell limit), at the limit or at the open if the open is better.
* At most ``max_volume_participation`` of a candle's volume fills per candle; the rest stays open for the
  next candle. A candle with no volume (mark-price data) does not cap the fill.
* The fee (``fee_rate`` of the notional, per side) is paid in the quote currency.
* Balances are checked when an order fills: a buy is cut to what the quote balance pays for (fee
  included), a sell to the base balance held (unless shorts are allowed). An order cut to nothing is
  rejected; one cut after a partial fill is canceled.
* ``place_order`` is idempotent on ``client_order_id``; ids of orders and fills are deterministic
  (``paper-<n>``, ``<client id>-f<n>``), so a replay produces exactly the same book.

The book (orders, fills, balances, clock) is exported as changes with ``drain_changes`` and restored
with ``restore``, so the runtime stores it in its state file in the same transaction as its own fills.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from slsbot.api import PaperSettings
from slsbot_runtime.domain.errors import OrderNotFound, OrderRejected
from slsbot_runtime.domain.types import (
    QUANTITY_EPSILON,
    Balance,
    Candle,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    split_symbol,
)
from slsbot_runtime.exchange.base import Exchange

DUST_FRACTION = 1e-9  # a fill smaller than this share of the order is dust: the order is cut instead


@dataclass(slots=True)
class BookChanges:
    """What changed in the book since the last ``drain_changes``: rows to upsert."""

    orders: list[Order] = field(default_factory=list)
    eligible_ts: dict[str, int] = field(default_factory=dict)  # client id -> first candle open time it may fill
    fills: list[Fill] = field(default_factory=list)
    balances: list[Balance] = field(default_factory=list)
    clock_ms: int = 0

    def __bool__(self) -> bool:
        return bool(self.orders or self.fills or self.balances)


def copy_order(order: Order) -> Order:
    """``dataclasses.replace(order)`` without its per-call field introspection (the book hands out copies on
    every call; a unit test keeps this in step with ``Order``'s fields)."""
    return Order(
        order.client_order_id,
        order.symbol,
        order.side,
        order.quantity,
        order.type,
        order.limit_price,
        order.status,
        order.exchange_order_id,
        order.filled_quantity,
        order.average_price,
        order.created_ts,
        order.updated_ts,
        order.reason,
    )


class PaperExchange(Exchange):
    features: ClassVar[dict[str, bool]] = {
        "fetch_order_by_client_id": True,
        "cancel_by_client_id": True,
        "fetch_my_trades": True,
        "watch_ohlcv": False,
        "simulated": True,
        "exclusive_account": True,  # every balance belongs to this bot: reconcile compares them exactly
    }

    def __init__(self, settings: PaperSettings, *, interval_ms: int, allow_short: bool = False) -> None:
        self.settings = settings
        self.interval_ms = interval_ms
        self.allow_short = allow_short
        self.quote_currency = settings.quote_currency
        half_spread = settings.spread_bps / 2.0
        self._adverse = (half_spread + settings.slippage_bps) / 10_000.0
        self._orders: dict[str, Order] = {}
        self._eligible_ts: dict[str, int] = {}
        self._open_by_symbol: dict[str, list[str]] = {}
        self._fill_count: dict[str, int] = {}
        self._fills: dict[str, list[Fill]] = {}
        self._balances: dict[str, float] = {settings.quote_currency: settings.starting_balance}
        self._last_close: dict[str, float] = {}
        self._clock_ms = 0
        self._changed_orders: set[str] = set()
        self._new_fills: list[Fill] = []
        self._balances_changed = True

    # -- the Exchange interface -------------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> Order:
        known = self._orders.get(request.client_order_id)
        if known is not None:
            return copy_order(known)
        self._check_request(request)
        submitted = max(self._clock_ms, request.created_ts)
        cid = request.client_order_id
        order = Order(
            cid,
            request.symbol,
            request.side,
            request.quantity,
            request.type,
            request.limit_price,
            OrderStatus.OPEN,
            f"paper-{len(self._orders) + 1}",
            0.0,
            None,
            submitted,
            submitted,
            request.reason,
        )
        self._orders[cid] = order
        self._eligible_ts[cid] = submitted + self.settings.latency_ms
        self._open_by_symbol.setdefault(order.symbol, []).append(cid)
        self._changed_orders.add(cid)
        return copy_order(order)

    def cancel_order(self, client_order_id: str, symbol: str) -> Order:
        """Cancel an open order; canceling a finished order returns it unchanged."""
        order = self._orders.get(client_order_id)
        if order is None or order.symbol != symbol:
            raise OrderNotFound(f"paper: no order {client_order_id} on {symbol}")
        if not OrderStatus(order.status).is_terminal:
            self._finish(order, OrderStatus.CANCELED, "canceled")
        return copy_order(order)

    def fetch_order(self, client_order_id: str, symbol: str) -> Order | None:
        order = self._orders.get(client_order_id)
        return copy_order(order) if order is not None and order.symbol == symbol else None

    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        symbols = [symbol] if symbol is not None else list(self._open_by_symbol)
        return [copy_order(self._orders[cid]) for s in symbols for cid in self._open_by_symbol.get(s, ())]

    def fetch_fills(self, symbol: str, since_ts: int = 0) -> list[Fill]:
        return [fill for fill in self._fills.get(symbol, ()) if fill.ts >= since_ts]

    def fetch_balances(self) -> dict[str, Balance]:
        reserved: dict[str, float] = {}
        for ids in self._open_by_symbol.values():
            for cid in ids:
                order = self._orders[cid]
                base, quote = split_symbol(order.symbol)
                if order.side is Side.SELL:
                    reserved[base] = reserved.get(base, 0.0) + order.remaining
                elif order.type == OrderType.LIMIT and order.limit_price is not None:
                    cost = order.remaining * order.limit_price * (1.0 + self.settings.fee_rate)
                    reserved[quote] = reserved.get(quote, 0.0) + cost
        return {
            currency: Balance(currency, total, total - reserved.get(currency, 0.0))
            for currency, total in self._balances.items()
        }

    def on_candle(self, candle: Candle) -> list[Fill]:
        """Match this symbol's resting orders against ``candle``; the fills, oldest order first."""
        closed = candle.ts + self.interval_ms
        if closed > self._clock_ms:
            self._clock_ms = closed
        symbol = candle.symbol
        self._last_close[symbol] = candle.close
        waiting = self._open_by_symbol.get(symbol)
        if not waiting:
            return []
        fills: list[Fill] = []
        volume_left = candle.volume * self.settings.max_volume_participation if candle.volume > 0 else math.inf
        for cid in list(waiting):
            if self._eligible_ts[cid] > candle.ts:
                continue
            fill = self._match(self._orders[cid], candle, volume_left)
            if fill is not None:
                volume_left -= fill.quantity
                fills.append(fill)
        return fills

    # -- simulation-only ----------------------------------------------------------------------------------

    def settle_now(self) -> list[Fill]:
        """Fill every resting market order at the last close seen (adjusted like any market fill).

        Used when the runtime shuts down and flattens: no next candle will come to fill the exit, and the
        last close is the best estimate of the next open. Volume is not capped here.
        """
        fills: list[Fill] = []
        for symbol, ids in list(self._open_by_symbol.items()):
            close = self._last_close.get(symbol)
            if close is None:
                continue
            at_close = Candle(symbol, self._clock_ms, close, close, close, close, 0.0)
            for cid in list(ids):
                if self._orders[cid].type == OrderType.MARKET:
                    fill = self._match(self._orders[cid], at_close, math.inf)
                    if fill is not None:
                        fills.append(fill)
        return fills

    def has_open_orders(self, symbol: str) -> bool:
        """Whether an order of ``symbol`` rests on the book (``fetch_open_orders`` without the copies)."""
        return bool(self._open_by_symbol.get(symbol))

    def last_closes(self) -> dict[str, float]:
        """The last close seen per symbol (stored with the book, so ``settle_now`` works after a restart)."""
        return dict(self._last_close)

    def balance(self, currency: str) -> float:
        return self._balances.get(currency, 0.0)

    # -- persistence ----------------------------------------------------------------------------------------

    def drain_changes(self) -> BookChanges:
        """Orders, fills and balances changed since the last call (then forgotten)."""
        changes = BookChanges(clock_ms=self._clock_ms)
        for cid in sorted(self._changed_orders, key=self._order_sequence):
            changes.orders.append(copy_order(self._orders[cid]))
            changes.eligible_ts[cid] = self._eligible_ts[cid]
        changes.fills = self._new_fills
        if self._balances_changed:
            changes.balances = [Balance(c, t, t) for c, t in self._balances.items()]
        self._changed_orders = set()
        self._new_fills = []
        self._balances_changed = False
        return changes

    def restore(
        self,
        *,
        orders: Iterable[Order],
        eligible_ts: dict[str, int],
        fills: Iterable[Fill],
        balances: Iterable[Balance],
        clock_ms: int,
        last_close: dict[str, float] | None = None,
    ) -> None:
        """Load a stored book (orders in placement order, fills oldest first), replacing this one."""
        self._orders = {}
        self._open_by_symbol = {}
        for order in sorted(orders, key=lambda o: int((o.exchange_order_id or "paper-0").split("-")[-1])):
            self._orders[order.client_order_id] = copy_order(order)
            if not OrderStatus(order.status).is_terminal:
                self._open_by_symbol.setdefault(order.symbol, []).append(order.client_order_id)
        self._eligible_ts = {cid: eligible_ts[cid] for cid in self._orders}
        self._fills = {}
        self._fill_count = {}
        for fill in fills:
            self._fills.setdefault(fill.symbol, []).append(fill)
            self._fill_count[fill.client_order_id] = self._fill_count.get(fill.client_order_id, 0) + 1
        stored = {b.currency: b.total for b in balances}
        self._balances = stored or {self.quote_currency: self.settings.starting_balance}
        self._clock_ms = clock_ms
        self._last_close = dict(last_close or {})
        self._changed_orders = set()
        self._new_fills = []
        self._balances_changed = not stored

    # -- matching ---------------------------------------------------------------------------------------------

    def _check_request(self, request: OrderRequest) -> None:
        if not (math.isfinite(request.quantity) and request.quantity > 0):
            raise OrderRejected(
                f"paper: order {request.client_order_id}: quantity must be positive and finite, got {request.quantity}"
            )
        if request.type == OrderType.LIMIT and not (
            request.limit_price is not None and math.isfinite(request.limit_price) and request.limit_price > 0
        ):
            raise OrderRejected(
                f"paper: order {request.client_order_id}: a limit order needs a positive "
                f"limit_price, got {request.limit_price}"
            )
        _, quote = split_symbol(request.symbol)
        if quote != self.quote_currency:
            raise OrderRejected(
                f"paper: {request.symbol} is quoted in {quote}, but the paper account holds "
                f"{self.quote_currency}; set account.paper.quoteCurrency"
            )

    def _match(self, order: Order, candle: Candle, volume_left: float) -> Fill | None:
        price = self._fill_price(order, candle)
        if price is None:
            return None
        quantity = min(order.remaining, max(volume_left, 0.0))
        if quantity <= QUANTITY_EPSILON:
            return None
        affordable = self._affordable(order, price)
        if affordable >= quantity:
            return self._execute(order, candle.ts, quantity, price)
        if affordable <= max(QUANTITY_EPSILON, order.remaining * DUST_FRACTION):
            status = OrderStatus.CANCELED if order.filled_quantity > 0 else OrderStatus.REJECTED
            self._finish(order, status, "insufficient balance", candle.ts)
            return None
        fill = self._execute(order, candle.ts, affordable, price)
        if not order.status.is_terminal:  # _execute has just set it
            self._finish(order, OrderStatus.CANCELED, "insufficient balance for the rest", candle.ts)
        return fill

    def _fill_price(self, order: Order, candle: Candle) -> float | None:
        buy = order.side is Side.BUY
        if order.type == OrderType.MARKET:
            return candle.open * (1.0 + self._adverse) if buy else candle.open * (1.0 - self._adverse)
        limit = order.limit_price
        assert limit is not None
        if buy:
            return min(candle.open, limit) if candle.low < limit or candle.open <= limit else None
        return max(candle.open, limit) if candle.high > limit or candle.open >= limit else None

    def _affordable(self, order: Order, price: float) -> float:
        base, quote = split_symbol(order.symbol)
        if order.side is Side.BUY:
            # a hair under the exact figure, so rounding never leaves the quote balance below zero
            return max(self._balances.get(quote, 0.0), 0.0) / (price * (1.0 + self.settings.fee_rate)) * (1 - 1e-12)
        if self.allow_short:
            return math.inf
        return max(self._balances.get(base, 0.0), 0.0)

    def _execute(self, order: Order, ts: int, quantity: float, price: float) -> Fill:
        base, quote = split_symbol(order.symbol)
        notional = quantity * price
        fee = notional * self.settings.fee_rate
        if order.side is Side.BUY:
            self._balances[quote] = self._balances.get(quote, 0.0) - (notional + fee)
            self._balances[base] = self._balances.get(base, 0.0) + quantity
        else:
            self._balances[base] = self._balances.get(base, 0.0) - quantity
            self._balances[quote] = self._balances.get(quote, 0.0) + (notional - fee)
        number = self._fill_count.get(order.client_order_id, 0) + 1
        self._fill_count[order.client_order_id] = number
        fill = Fill(
            f"{order.client_order_id}-f{number}",
            order.client_order_id,
            order.symbol,
            order.side,
            quantity,
            price,
            fee,
            quote,
            ts,
        )
        self._fills.setdefault(order.symbol, []).append(fill)
        self._new_fills.append(fill)
        self._balances_changed = True
        filled_before = order.filled_quantity
        order.filled_quantity = filled_before + quantity
        order.average_price = ((order.average_price or 0.0) * filled_before + notional) / order.filled_quantity
        order.updated_ts = ts
        if order.remaining <= QUANTITY_EPSILON * max(1.0, order.quantity):
            self._finish(order, OrderStatus.FILLED, order.reason, ts)
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
            self._changed_orders.add(order.client_order_id)
        return fill

    def _finish(self, order: Order, status: OrderStatus, reason: str, ts: int | None = None) -> None:
        order.status = status
        order.reason = reason
        order.updated_ts = self._clock_ms if ts is None else ts
        ids = self._open_by_symbol.get(order.symbol, [])
        if order.client_order_id in ids:
            ids.remove(order.client_order_id)
        self._changed_orders.add(order.client_order_id)

    def _order_sequence(self, client_order_id: str) -> int:
        return int((self._orders[client_order_id].exchange_order_id or "paper-0").split("-")[-1])
