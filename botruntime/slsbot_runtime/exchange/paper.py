"""A simulated spot exchange that fills orders against recorded or live candles.

Conventions (also in docs/concepts/runtime-loop.md):

* The exchange clock is the close time of the newest candle it has seen; an order is *submitted* at
  ``max(clock, request.created_ts)``. It may fill on the first candle whose open time is at or after
  ``submitted + latency_ms``. With no latency, a decision taken at the close of candle t fills at the
  open of t+1; an order submitted fewer than ``latency_ms`` before a candle's open waits one more candle.
* Every order meets the market's rules (``market_rules``: Binance's filters for the recorded pairs unless
  given others): its quantity is rounded down to the amount step and a limit price to the nearest tick, and
  an order below the minimum amount or the minimum notional (at its limit, or at the last close seen) is
  refused with ``OrderRejected`` naming the field.
* Market orders fill at that candle's open, moved against the trader by half the spread plus the
  slippage (buys higher, sells lower), on the tick (rounded against the trader) and never outside the
  candle's [low, high]. Limit orders fill when the candle trades *through* the price (low below a buy
  limit, high above a sell limit), at the limit or at the open if the open is better.
* At most ``max_volume_participation`` of a candle's volume fills per candle, rounded down to the step; the
  rest stays open for the next candle. A candle with no volume (mark-price data) does not cap the fill.
* The fee (``fee_rate`` of the notional, per side) is paid in the quote currency.
* Balances are checked when an order fills: a buy is cut to what the quote balance pays for (fee and any
  interest owed included), a sell to the base balance held, or with shorts allowed to what the collateral
  allows (``paper_margin``: initial margin on every short, hourly borrow interest collected with the buy
  that repays). An order cut to nothing, or to less than the market's minimum notional (dust no venue would
  take back), is rejected; one cut after a partial fill is canceled.
* ``place_order`` is idempotent on ``client_order_id``; ids of orders and fills are deterministic
  (``paper-<n>``, ``<client id>-f<n>``), so a replay produces exactly the same book.

The book (orders, fills, balances, clock) is exported as changes with ``drain_changes`` and restored
with ``restore``, so the runtime stores it in its state file in the same transaction as its own fills.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import ClassVar

from slsbot.api import PaperSettings
from slsbot_runtime.domain.errors import OrderNotFound, OrderRejected
from slsbot_runtime.domain.market_rules import MarketRules
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
from slsbot_runtime.exchange.base import BookChanges, BookPersistence, Exchange
from slsbot_runtime.exchange.market_defaults import default_market_rules
from slsbot_runtime.exchange.paper_margin import BorrowBook, short_sell_room

DUST_FRACTION = 1e-9  # a fill smaller than this share of the order is dust: the order is cut instead

# the members compared on every order, read once (Python 3.11 reads ``Side.BUY`` through a Python-level hook)
_BUY, _SELL = Side.BUY, Side.SELL
_MARKET, _LIMIT = OrderType.MARKET, OrderType.LIMIT
_OPEN, _FILLED, _PARTIALLY_FILLED = OrderStatus.OPEN, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED


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


class PaperExchange(Exchange, BookPersistence):
    features: ClassVar[dict[str, bool]] = {
        "fetch_order_by_client_id": True,
        "cancel_by_client_id": True,
        "fetch_my_trades": True,
        "watch_ohlcv": False,
        "simulated": True,
        "exclusive_account": True,  # every balance belongs to this bot: reconcile compares them exactly
    }

    def __init__(
        self,
        settings: PaperSettings,
        *,
        interval_ms: int,
        allow_short: bool = False,
        market_rules: Mapping[str, MarketRules] | None = None,
    ) -> None:
        """``market_rules`` per symbol replace the defaults (``market_defaults``) for those symbols."""
        self.settings = settings
        self.interval_ms = interval_ms
        self.allow_short = allow_short
        self.quote_currency = settings.quote_currency
        half_spread = settings.spread_bps / 2.0
        self._adverse = (half_spread + settings.slippage_bps) / 10_000.0
        self._rules: dict[str, MarketRules] = dict(market_rules or {})
        self._borrows = BorrowBook(settings.short_borrow_rate_per_day)
        self._orders: dict[str, Order] = {}
        #: Each order's number in placement order (its ``paper-N`` id's N): the order the book's changes are stored in.
        self._placed: dict[str, int] = {}
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
        quantity, limit_price = self._check_request(request)
        submitted = request.created_ts if request.created_ts > self._clock_ms else self._clock_ms  # max(clock, created)
        cid = request.client_order_id
        order = Order(
            cid,
            request.symbol,
            request.side,
            quantity,
            request.type,
            limit_price,
            _OPEN,
            f"paper-{len(self._orders) + 1}",
            0.0,
            None,
            submitted,
            submitted,
            request.reason,
        )
        self._orders[cid] = order
        self._placed[cid] = len(self._orders)
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

    def market_rules(self, symbol: str) -> MarketRules:
        rules = self._rules.get(symbol)
        if rules is None:
            rules = self._rules[symbol] = default_market_rules(symbol)
        return rules

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
        """Fill every resting market order at the last close seen, moved against the trader like any market fill.

        Used when the runtime shuts down and flattens: no next candle will come to fill the exit, and the
        last close is the best estimate of the next open. There is no candle range to keep the price in and no
        volume to cap the fill; everything else holds (tick, balances, collateral, interest to the clock).
        """
        fills: list[Fill] = []
        for symbol, ids in list(self._open_by_symbol.items()):
            close = self._last_close.get(symbol)
            if close is None:
                continue
            at_close = Candle(symbol, self._clock_ms, close, close, close, close, 0.0)
            for cid in list(ids):
                if self._orders[cid].type == OrderType.MARKET:
                    fill = self._match(self._orders[cid], at_close, math.inf, bounded=False)
                    if fill is not None:
                        fills.append(fill)
        return fills

    def mark(self, symbol: str, close: float) -> None:
        """Take ``close`` as the last close of ``symbol``, as ``on_candle`` does: for a caller that skips candles on
        which nothing of its own happens (the fast backtest), so prices, minimums and collateral see what the
        candle-by-candle run sees."""
        self._last_close[symbol] = close

    def has_open_orders(self, symbol: str) -> bool:
        """Whether an order of ``symbol`` rests on the book (``fetch_open_orders`` without the copies)."""
        return bool(self._open_by_symbol.get(symbol))

    def last_closes(self) -> dict[str, float]:
        """The last close seen per symbol (stored with the book, so ``settle_now`` works after a restart)."""
        return dict(self._last_close)

    def balance(self, currency: str) -> float:
        return self._balances.get(currency, 0.0)

    # -- persistence ----------------------------------------------------------------------------------------

    def book_persistence(self) -> BookPersistence:
        """This exchange's book lives here: the runtime stores it in its state file."""
        return self

    def drain_changes(self) -> BookChanges:
        """Orders, fills and balances changed since the last call (then forgotten)."""
        changes = BookChanges(clock_ms=self._clock_ms)
        for cid in sorted(self._changed_orders, key=self._placed.__getitem__):  # placement order
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
        fills = list(fills)
        self._orders = {}
        self._placed = {}
        self._open_by_symbol = {}
        for order in sorted(orders, key=_placement_number):
            self._orders[order.client_order_id] = copy_order(order)
            self._placed[order.client_order_id] = _placement_number(order)
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
        self._borrows.rebuild(fills)
        self._changed_orders = set()
        self._new_fills = []
        self._balances_changed = not stored

    # -- matching ---------------------------------------------------------------------------------------------

    def _check_request(self, request: OrderRequest) -> tuple[float, float | None]:
        """The quantity and limit price as the market takes them (on its step and tick); OrderRejected naming the
        field when the request is malformed or below the market's minimums."""
        cid = request.client_order_id
        if not (math.isfinite(request.quantity) and request.quantity > 0):
            raise OrderRejected(f"paper: order {cid}: quantity must be positive and finite, got {request.quantity}")
        limit_price = request.limit_price
        is_limit = request.type == _LIMIT
        if is_limit and not (limit_price is not None and math.isfinite(limit_price) and limit_price > 0):
            raise OrderRejected(f"paper: order {cid}: a limit order needs a positive limit_price, got {limit_price}")
        _, quote = split_symbol(request.symbol)
        if quote != self.quote_currency:
            raise OrderRejected(
                f"paper: {request.symbol} is quoted in {quote}, but the paper account holds "
                f"{self.quote_currency}; set account.paper.quoteCurrency"
            )
        rules = self.market_rules(request.symbol)
        quantity = rules.floor_amount(request.quantity)
        if is_limit and limit_price is not None:
            limit_price = rules.round_price(limit_price)
            if limit_price <= 0:
                raise OrderRejected(
                    f"paper: order {cid}: limit_price {request.limit_price:g} rounds to 0 at {request.symbol}'s "
                    f"tick {rules.price_tick:g}"
                )
        reference = limit_price if is_limit else self._last_close.get(request.symbol)
        problem = rules.order_problem(quantity, reference)
        if problem is not None:
            raise OrderRejected(f"paper: order {cid} for {request.quantity:g} {request.symbol}: {problem}")
        return quantity, limit_price

    def _match(self, order: Order, candle: Candle, volume_left: float, *, bounded: bool = True) -> Fill | None:
        price = self._fill_price(order, candle, bounded)
        if price is None:
            return None
        remaining = order.remaining
        quantity = 0.0 if volume_left < 0.0 else volume_left  # min(remaining, max(volume_left, 0.0)), without calls
        quantity = quantity if quantity < remaining else remaining
        if quantity < remaining:  # cut by the volume: a whole number of steps
            quantity = self.market_rules(order.symbol).floor_amount(quantity)
        if quantity <= QUANTITY_EPSILON:
            return None
        affordable, short_of = self._affordable(order, price, candle.ts)
        if affordable >= quantity:
            return self._execute(order, candle.ts, quantity, price)
        too_small = affordable * price < self.market_rules(order.symbol).min_notional  # a cut leaves no dust behind
        if too_small or affordable <= max(QUANTITY_EPSILON, remaining * DUST_FRACTION):
            status = OrderStatus.CANCELED if order.filled_quantity > 0 else OrderStatus.REJECTED
            self._finish(order, status, f"insufficient {short_of}", candle.ts)
            return None
        fill = self._execute(order, candle.ts, affordable, price)
        if not order.status.is_terminal:  # _execute has just set it
            self._finish(order, OrderStatus.CANCELED, f"insufficient {short_of} for the rest", candle.ts)
        return fill

    def _fill_price(self, order: Order, candle: Candle, bounded: bool) -> float | None:
        buy = order.side is _BUY
        if order.type == _MARKET:
            rules = self.market_rules(order.symbol)
            if buy:
                price = rules.round_price(candle.open * (1.0 + self._adverse), 1)
                return candle.high if bounded and candle.high < price else price  # min(price, high) when bounded
            price = rules.round_price(candle.open * (1.0 - self._adverse), -1)
            return candle.low if bounded and candle.low > price else price  # max(price, low) when bounded
        limit = order.limit_price
        assert limit is not None
        if buy:
            return min(candle.open, limit) if candle.low < limit or candle.open <= limit else None
        return max(candle.open, limit) if candle.high > limit or candle.open >= limit else None

    def _affordable(self, order: Order, price: float, ts: int) -> tuple[float, str]:
        """How much of ``order`` may fill at ``price`` (on the step), and what limits it."""
        base, quote = split_symbol(order.symbol)
        rules = self.market_rules(order.symbol)
        if order.side is _BUY:
            cash = self._balances.get(quote, 0.0) - self._borrows.owed(base, ts) * price
            # a hair under the exact figure, so rounding never leaves the quote balance below zero
            cash = 0.0 if cash < 0.0 else cash  # max(cash, 0.0), without the builtin's call
            most = cash / (price * (1.0 + self.settings.fee_rate)) * (1 - 1e-12)
            return rules.floor_amount(most), "balance"
        held = self._balances.get(base, 0.0)
        if not self.allow_short:
            return max(held, 0.0), "balance"
        room = short_sell_room(
            held=held,
            price=price,
            equity=self._equity(order.symbol, price, ts),
            other_shorts=self._other_shorts(base),
            margin=self.settings.short_initial_margin,
            fee_rate=self.settings.fee_rate,
        )
        return (held if room <= held else max(rules.floor_amount(room * (1 - 1e-12)), held)), "margin"

    def _equity(self, symbol: str, price: float, ts: int) -> float:
        """Quote plus every base balance at its last price (``price`` for ``symbol``), less the interest owed."""
        quote = self.quote_currency
        value = self._balances.get(quote, 0.0)
        for currency in sorted(self._balances):
            held = self._balances[currency]
            if currency == quote or held == 0.0:
                continue
            pair = f"{currency}/{quote}"
            mark = price if pair == symbol else self._last_close.get(pair, 0.0)
            value += (held - self._borrows.owed(currency, ts)) * mark
        return value

    def _other_shorts(self, base: str) -> float:
        """The notional of every short but ``base``'s, at the last closes."""
        quote = self.quote_currency
        total = 0.0
        for currency in sorted(self._balances):
            held = self._balances[currency]
            if currency not in (quote, base) and held < 0.0:
                total += -held * self._last_close.get(f"{currency}/{quote}", 0.0)
        return total

    def _execute(self, order: Order, ts: int, quantity: float, price: float) -> Fill:
        base, quote = split_symbol(order.symbol)
        notional = quantity * price
        fee = notional * self.settings.fee_rate
        borrows = self._borrows
        collects = borrows.collects_on(order.side, base)
        if collects:
            fee += borrows.owed(base, ts) * price  # the interest owed on the short, bought back at this price
        if order.side is _BUY:
            self._balances[quote] = self._balances.get(quote, 0.0) - (notional + fee)
            self._balances[base] = self._balances.get(base, 0.0) + quantity
        else:
            self._balances[base] = self._balances.get(base, 0.0) - quantity
            self._balances[quote] = self._balances.get(quote, 0.0) + (notional - fee)
        if collects or self._balances[base] < 0.0:
            borrows.after_fill(base, self._balances[base], ts, repaid=collects)
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
        if order.remaining <= QUANTITY_EPSILON * (order.quantity if order.quantity > 1.0 else 1.0):  # max(1, q)
            self._finish(order, _FILLED, order.reason, ts)
        else:
            order.status = _PARTIALLY_FILLED
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


def _placement_number(order: Order) -> int:
    """N of the book's ``paper-N`` id: the order's number in placement order."""
    return int((order.exchange_order_id or "paper-0").split("-")[-1])
