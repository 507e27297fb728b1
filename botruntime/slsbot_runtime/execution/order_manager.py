"""Exactly-once order handling: intents persisted before they are sent, fills booked once.

The life of an order:

1. ``create_intent`` gives the decision a deterministic client order id and stages it as ``pending``.
   An id that already exists is recognised and returned: nothing new is created.
2. ``send_pending`` first commits the state store (so every intent is on disk), then sends each pending
   intent once. An intent the exchange could not take (a temporary error) stays pending and is sent again
   on the next call or by ``reconcile`` after a restart, always with the same id (the exchange answers a
   known id with the existing order).
3. ``apply_fills`` books each fill once (fill ids are remembered), updates the order and the ledger.
4. ``refresh`` follows orders still open on the exchange: status, and fills the exchange has that we miss.
5. ``adopt`` (the restart reconcile only) takes over an order of this strategy's that the exchange has and the state
   lacks, so that its fills are booked like any other's.

Every state change is staged in the store; the caller commits (the engine does it once per candle or batch).

The log gets one INFO line per order sent, fill booked and order canceled, and a WARNING per order the exchange
rejected, each starting with the strategy (``StrategyLog``) and naming the client order id.

Retries belong to the exchange adapter, not to this class: ``CcxtExchange`` retries each call with backoff and,
before resending an order, looks its client id up (it knows which calls are safe to repeat and how). Here each
operation is one call, so one order is attempted at most the adapter's ``max_attempts`` times per candle (a
retry loop here too made that 4 x N). What is still failing after the adapter's retries waits for the next
candle: an unsent intent stays pending, an order that could not be refreshed is refreshed next time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import replace

from slsbot_runtime.domain.errors import (
    AuthenticationError,
    OrderRejected,
    PermanentExchangeError,
    TemporaryExchangeError,
)
from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.domain.types import QUANTITY_EPSILON, Fill, Order, OrderRequest, OrderStatus, OrderType, Side
from slsbot_runtime.exchange.base import Exchange
from slsbot_runtime.execution.client_ids import (
    LEGACY_PREFIX,
    client_order_id,
    legacy_client_order_id,
    strategy_tag,
)
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.persistence.store import StateStore

log = logging.getLogger(__name__)

# the statuses set and compared on every order, read once (Python 3.11 reads an enum member through a Python-level hook)
_PENDING, _OPEN, _FILLED, _PARTIALLY_FILLED = (
    OrderStatus.PENDING,
    OrderStatus.OPEN,
    OrderStatus.FILLED,
    OrderStatus.PARTIALLY_FILLED,
)


def is_filled(order: Order) -> bool:
    quantity = order.quantity
    return quantity - order.filled_quantity <= QUANTITY_EPSILON * (quantity if quantity > 1.0 else 1.0)  # max(1, q)


class OrderManager:
    def __init__(
        self,
        *,
        exchange: Exchange,
        store: StateStore,
        ledger: Ledger,
        strategy_key: str,
        on_fill: Callable[[Fill], None] | None = None,
        commit: Callable[[], None] | None = None,
        on_submit: Callable[[OrderRequest], None] | None = None,
        on_outcome: Callable[[str, Exception | None], None] | None = None,
        on_unknown: Callable[[str], None] | None = None,
        on_exchange_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.exchange = exchange
        self.store = store
        self.ledger = ledger
        self.strategy_key = strategy_key
        #: The start of every client id this strategy makes (``client_ids.strategy_tag``): how its orders are told
        #: from other strategies' on the same account.
        self.tag = strategy_tag(strategy_key)
        self.log = StrategyLog(log, strategy_key)
        self.on_fill = on_fill
        self.on_submit = on_submit
        #: Each send's outcome, ``sent``, ``rejected`` or ``failed`` with the error (the runtime's health counters).
        self.on_outcome = on_outcome
        #: An order this process thinks open that the exchange does not know (a reconcile problem).
        self.on_unknown = on_unknown
        #: A call that still failed after the adapter's retries, other than a send (the runtime's health counters).
        self.on_exchange_error = on_exchange_error
        #: Asked before each send: why the order may not go out now (the trading mode), or None. A refused order is
        #: marked rejected with that reason and never sent.
        self.gate: Callable[[Order], str | None] | None = None
        self.reduce_only = False  # sent with every order (safe mode)
        self.commit = commit or store.commit  # makes every staged intent durable before a send
        self.orders: dict[str, Order] = {}
        #: Orders not yet filled, canceled or rejected: symbol -> client id -> order, oldest first. Read it, never
        #: change it: a plain attribute because the loop asks on every candle whether its symbol has any
        #: (``has_unfinished``).
        self.unfinished_by_symbol: dict[str, dict[str, Order]] = {}
        #: Intents staged and not yet acknowledged by the exchange, by client id, oldest first. Read it, never change
        #: it: a plain attribute because the loop asks whether it is empty on every candle.
        self.unsent: dict[str, Order] = {}
        self._seen_fills: set[str] = set()
        self._last_fill_ts: dict[str, int] = {}
        self._intent_seq: dict[tuple[str, int], int] = {}
        #: Some stored order has an id of the old format (``client_ids.legacy_client_order_id``): a decision made
        #: again also looks its old id up, so an order stored under it is not sent a second time.
        self._legacy_ids = False
        self.submissions = 0  # place_order calls made by this process
        self.version = 0  # bumped on every order change, so readers know when to copy

    # -- loading ------------------------------------------------------------------------------------------

    def load(self, orders: Iterable[Order], fills: Iterable[Fill]) -> None:
        """Take over the stored orders (creation order) and remember the stored fills as booked."""
        for order in orders:
            self.orders[order.client_order_id] = order
            if not OrderStatus(order.status).is_terminal:
                self.unfinished_by_symbol.setdefault(order.symbol, {})[order.client_order_id] = order
            if order.status == OrderStatus.PENDING:
                self.unsent[order.client_order_id] = order
            if order.client_order_id.startswith(LEGACY_PREFIX):
                self._legacy_ids = True
        for fill in fills:
            self._seen_fills.add(fill.fill_id)
            self._last_fill_ts[fill.symbol] = max(self._last_fill_ts.get(fill.symbol, 0), fill.ts)
        self.version += 1

    # -- queries -----------------------------------------------------------------------------------------------

    def unfinished(self, symbol: str | None = None) -> list[Order]:
        """Orders not yet filled, canceled or rejected (pending ones included), oldest first."""
        if symbol is not None:
            return list(self.unfinished_by_symbol.get(symbol, {}).values())
        wanted = {cid for by_id in self.unfinished_by_symbol.values() for cid in by_id}
        return [order for cid, order in self.orders.items() if cid in wanted]

    def has_unfinished(self, symbol: str) -> bool:
        return bool(self.unfinished_by_symbol.get(symbol))

    @property
    def has_unsent(self) -> bool:
        """Some intent is pending: ``send_pending`` has something to send."""
        return bool(self.unsent)

    def last_fill_ts(self, symbol: str) -> int | None:
        return self._last_fill_ts.get(symbol)

    # -- intents and sending ----------------------------------------------------------------------------------

    def create_intent(
        self,
        symbol: str,
        side: Side,
        quantity: float,
        *,
        candle_ts: int,
        created_ts: int,
        order_type: OrderType = OrderType.MARKET,
        limit_price: float | None = None,
        reason: str = "",
        fresh: bool = False,
    ) -> Order:
        """A pending order for this decision, staged for the store.

        The id comes from (strategy, symbol, candle, intent number on that candle). An id already known is
        the same decision seen again (a candle processed twice): the existing order is returned. With
        ``fresh`` (decisions not tied to a candle, such as a flatten at shutdown) known ids are skipped. When the
        state holds orders made before ids carried the strategy's tag, the decision's old-format id is looked up
        too: a decision made again across the upgrade finds its order under that id and is not sent twice.

        When the exchange knows the market's rules, the quantity is rounded down to its step (and a limit price to
        its tick) *before* the intent is staged, so the stored intent is exactly what is sent and resent. A
        quantity of less than one step is staged as ``rejected`` with the reason, and never sent.
        """
        key = (symbol, candle_ts)
        while True:
            seq = self._intent_seq.get(key, 0)
            self._intent_seq[key] = seq + 1
            cid = client_order_id(self.strategy_key, symbol, candle_ts, seq)
            known = self.orders.get(cid)
            if known is None and self._legacy_ids:
                known = self.orders.get(legacy_client_order_id(self.strategy_key, symbol, candle_ts, seq))
            if known is None:
                break
            if not fresh:
                return known
        if not (math.isfinite(quantity) and quantity > 0):
            raise ValueError(f"order quantity must be positive and finite, got {quantity} for {symbol}")
        status, refusal, requested = _PENDING, "", quantity
        rules = self.exchange.market_rules(symbol)
        if rules is not None:  # stored as it is sent: on the market's step and tick, as ccxt would send it
            quantity = rules.floor_amount(quantity)
            if limit_price is not None:
                limit_price = rules.round_price(limit_price)
            if quantity <= 0:
                quantity, status = requested, OrderStatus.REJECTED
                refusal = f"not sent: {rules.order_problem(0.0, limit_price)}"
        order = Order(
            cid,
            symbol,
            side,
            quantity,
            order_type,
            limit_price,
            status,
            None,
            0.0,
            None,
            created_ts,
            created_ts,
            refusal or reason,
        )
        self.orders[cid] = order
        if status is _PENDING:
            self.unfinished_by_symbol.setdefault(symbol, {})[cid] = order
            self.unsent[cid] = order
        else:
            log.warning("order %s for %s %s: %s", cid, requested, symbol, refusal)
        self._changed(order)
        return order

    def send_pending(self) -> list[Order]:
        """Commit the store, then send every pending intent (oldest first). Returns the orders sent."""
        if not self.unsent:
            return []
        self.commit()
        sent = []
        for order in list(self.unsent.values()):
            if self._send(order):
                sent.append(order)
        return sent

    def resend(self, order: Order) -> bool:
        """Send a stored pending intent again, with the same id (reconciliation after a restart)."""
        self.commit()
        return self._send(order)

    def _send(self, order: Order) -> bool:
        refusal = None if self.gate is None else self.gate(order)
        if refusal is not None:
            self.unsent.pop(order.client_order_id, None)
            self._set_status(order, OrderStatus.REJECTED, order.created_ts, reason=refusal[:200])
            self.log.warning("order %s not sent: %s", order.client_order_id, refusal)
            return False
        request = OrderRequest(
            order.client_order_id,
            order.symbol,
            order.side,
            order.quantity,
            order.type,
            order.limit_price,
            reduce_only=self.reduce_only,
            reason=order.reason,
            created_ts=order.created_ts,
        )

        self.submissions += 1
        if self.on_submit is not None:
            self.on_submit(request)
        try:
            remote = self.exchange.place_order(request)
        except TemporaryExchangeError as error:
            self.log.warning("order %s stays pending, will be sent again: %s", order.client_order_id, error)
            if self.on_outcome is not None:
                self.on_outcome("failed", error)
            return False
        except AuthenticationError:
            raise
        except (OrderRejected, PermanentExchangeError) as error:
            self.unsent.pop(order.client_order_id, None)
            self._set_status(order, OrderStatus.REJECTED, order.created_ts, reason=str(error)[:200])
            self.log.warning("order %s rejected by the exchange: %s", order.client_order_id, error)
            if self.on_outcome is not None:
                self.on_outcome("rejected" if isinstance(error, OrderRejected) else "failed", error)
            return False
        self.unsent.pop(order.client_order_id, None)
        if self.on_outcome is not None:
            self.on_outcome("sent", None)
        if self.log.isEnabledFor(logging.INFO):  # one check when nobody reads INFO (a backtest), not four calls
            self.log.info(
                "order sent: %s %.8g %s %s (%s), the exchange says %s: %s",
                order.side,
                order.quantity,
                order.symbol,
                order.type,
                order.client_order_id,
                remote.status,
                request.reason,
            )
        self.absorb(order, remote)
        return True

    def cancel(self, order: Order, *, ts: int) -> Order:
        """Cancel an order (a pending one is canceled locally: it was never acknowledged)."""
        if OrderStatus(order.status).is_terminal:
            return order
        never_sent = order.status == OrderStatus.PENDING and order.client_order_id in self.unsent
        if never_sent and self.exchange.fetch_order(order.client_order_id, order.symbol) is None:
            self.unsent.pop(order.client_order_id, None)
            self._set_status(order, OrderStatus.CANCELED, ts, reason="canceled before it was sent")
            self.log.info("order canceled before it was sent: %s", order.client_order_id)
            return order
        remote = self.exchange.cancel_order(order.client_order_id, order.symbol)
        self.unsent.pop(order.client_order_id, None)
        self.absorb(order, remote)
        self.log.info(
            "order canceled: %s %s %.8g %s (%s), %.8g filled, now %s",
            order.client_order_id,
            order.side,
            order.quantity,
            order.symbol,
            order.type,
            order.filled_quantity,
            order.status,
        )
        return order

    # -- following the exchange ----------------------------------------------------------------------------------

    def absorb(self, order: Order, remote: Order) -> None:
        """Take the exchange's view of ``order``: status and id; fetch fills we are missing.

        The exchange's id is taken first, so an order filled at once (a market order on a real exchange) is
        staged with it when its fills are booked; a terminal order whose id changed is staged too. The exchange has
        the order, so it is no longer waiting to be sent (a pending intent found on the exchange by reconcile). Fills
        that cannot be fetched right now (a temporary error) are fetched by the next refresh or reconciliation: the
        order is then partially filled here, never more filled than its booked fills say; the error never leaves this
        method, so a send that went out is never taken for one that did not."""
        self.unsent.pop(order.client_order_id, None)
        id_changed = order.exchange_order_id != remote.exchange_order_id
        order.exchange_order_id = remote.exchange_order_id
        quantity = order.quantity
        fills_missing = False
        if remote.filled_quantity > order.filled_quantity + QUANTITY_EPSILON * (quantity if quantity > 1.0 else 1.0):
            try:
                self.fetch_missing_fills(order.symbol, since_ts=order.created_ts)
            except TemporaryExchangeError as error:
                fills_missing = True
                self.log.warning("fills of %s not fetched, will be next time: %s", order.client_order_id, error)
                if self.on_exchange_error is not None:
                    self.on_exchange_error(error)
        status = remote.status
        if type(status) is not OrderStatus:
            status = OrderStatus(status)  # an adapter's plain string
        if (status is _FILLED and not is_filled(order)) or (fills_missing and status.is_terminal):
            status = _PARTIALLY_FILLED  # fills still on their way (or not fetched); the next refresh books them
        elif status is _PENDING:
            status = _OPEN
        if (id_changed or order.status is not status) and not order.status.is_terminal:
            self._set_status(order, status, max(remote.updated_ts, order.updated_ts), reason=remote.reason or None)
        elif id_changed:
            self._changed(order)

    def adopt(self, remote: Order) -> Order:
        """Take over an order of this strategy's that the exchange has and the state lacks (a state restored from an
        older backup, or one whose tail a crash lost): staged as the exchange shows it, open and with nothing filled
        yet, so that its fills are booked by ``apply_fills`` like any other order's, once each; ``absorb`` then
        gives it the exchange's status. An order already known is returned as it is."""
        cid = remote.client_order_id
        known = self.orders.get(cid)
        if known is not None:
            return known
        order = Order(
            cid,
            remote.symbol,
            Side(remote.side),
            remote.quantity,
            OrderType(remote.type),
            remote.limit_price,
            _OPEN,
            remote.exchange_order_id,
            0.0,
            None,
            remote.created_ts,
            remote.created_ts,
            remote.reason or "adopted from the exchange after a restart",
        )
        self.orders[cid] = order
        self.unfinished_by_symbol.setdefault(order.symbol, {})[cid] = order
        if cid.startswith(LEGACY_PREFIX):
            self._legacy_ids = True
        self._changed(order)
        self.log.warning(
            "order adopted from the exchange (the state did not have it): %s %.8g %s %s (%s), the exchange says %s, "
            "%.8g filled",
            order.side,
            order.quantity,
            order.symbol,
            order.type,
            cid,
            remote.status,
            remote.filled_quantity,
        )
        return order

    def refresh(self, symbol: str) -> None:
        """Bring the unfinished orders of ``symbol`` up to date with the exchange; an order the exchange cannot
        show right now (a temporary error) is left as it is until the next refresh."""
        for order in list(self.unfinished_by_symbol.get(symbol, {}).values()):
            if order.client_order_id in self.unsent:
                continue
            try:
                remote = self.exchange.fetch_order(order.client_order_id, order.symbol)
            except TemporaryExchangeError as error:
                self.log.warning("order %s not refreshed, will be next time: %s", order.client_order_id, error)
                if self.on_exchange_error is not None:
                    self.on_exchange_error(error)
                continue
            if remote is None:
                problem = (
                    f"order {order.client_order_id} ({order.symbol}) is {order.status} here but unknown to the exchange"
                )
                self.log.warning("%s", problem)
                if self.on_unknown is not None:
                    self.on_unknown(problem)
                continue
            self.absorb(order, remote)

    def fetch_missing_fills(self, symbol: str, *, since_ts: int = 0) -> list[Fill]:
        since = self._last_fill_ts.get(symbol, since_ts)
        fills = self.exchange.fetch_fills(symbol, since)
        return self.apply_fills(fills)

    def apply_fills(self, fills: Iterable[Fill]) -> list[Fill]:
        """Book fills not seen before and belonging to our orders; returns those booked."""
        booked = []
        for fill in fills:
            if fill.fill_id in self._seen_fills:
                continue
            order = self.orders.get(fill.client_order_id)
            if order is None:
                continue  # another client's trade on a shared account
            self._seen_fills.add(fill.fill_id)
            last = self._last_fill_ts.get(fill.symbol, 0)
            self._last_fill_ts[fill.symbol] = fill.ts if fill.ts > last else last  # max(last, ts), without the call
            position = self.ledger.apply(fill)
            filled_before = order.filled_quantity
            order.filled_quantity = filled_before + fill.quantity
            order.average_price = ((order.average_price or 0.0) * filled_before + fill.quantity * fill.price) / (
                order.filled_quantity
            )
            if not order.status.is_terminal:
                status = _FILLED if is_filled(order) else _PARTIALLY_FILLED
                self._set_status(order, status, fill.ts)
            else:
                order.updated_ts = max(order.updated_ts, fill.ts)
                self._changed(order)
            self.store.stage_fill(fill)
            self.store.stage_position(position)
            if self.log.isEnabledFor(logging.INFO):  # one check when nobody reads INFO (a backtest), not four calls
                self.log.info(
                    "fill: %s %.8g %s at %.8g, fee %.8g %s (%s, %.0f%% filled); position %.8g, realized PnL %.2f",
                    fill.side,
                    fill.quantity,
                    fill.symbol,
                    fill.price,
                    fill.fee,
                    fill.fee_currency,
                    fill.client_order_id,
                    order.filled_quantity / order.quantity * 100.0,
                    position.quantity,
                    position.realized_pnl,
                )
            if self.on_fill is not None:
                self.on_fill(fill)
            booked.append(fill)
        return booked

    # -- bookkeeping ----------------------------------------------------------------------------------------------

    def _set_status(self, order: Order, status: OrderStatus, ts: int, *, reason: str | None = None) -> None:
        order.status = status
        if ts > order.updated_ts:  # max(updated_ts, ts), without the builtin's call
            order.updated_ts = ts
        if reason:
            order.reason = reason
        if status.is_terminal:
            self.unfinished_by_symbol.get(order.symbol, {}).pop(order.client_order_id, None)
            self.unsent.pop(order.client_order_id, None)
        self._changed(order)

    def status_counts(self) -> dict[str, int]:
        """Orders per status (every status present, zero included)."""
        counts = {str(status): 0 for status in OrderStatus}
        for order in self.orders.values():
            counts[str(order.status)] += 1
        return counts

    def _changed(self, order: Order) -> None:
        self.store.stage_order(order)
        self.version += 1

    def copy_orders(self, *, newest_first: bool = True, limit: int | None = None) -> list[Order]:
        orders = list(self.orders.values())
        if newest_first:
            orders.reverse()
        return [replace(o) for o in orders[:limit]]
