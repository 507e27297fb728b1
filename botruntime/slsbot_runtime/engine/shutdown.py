"""``Shutdown``: the loop's last act on ``POST /shutdown``: cancel, flatten, persist, say what is left.

A plain stop (neither flag) only flushes the state. ``cancelOrders`` cancels every unfinished order; ``flatten``
also closes every position at market through the order manager, as fresh intents stored before they are sent (so
a crash in the middle is reconciled like any other). A book kept in this process (``BookPersistence``) has no next
candle to fill the exits: it settles them at once at its last close; a real exchange is then asked until the
orders are done or ``fill_deadline_s`` has passed. Nothing is canceled or flattened on books that disagree with the
exchange: a loop asked to stop while it was still replaying reconciles first, and a halted one does nothing but
persist. The runtime process then writes the drain marker (``drained``).
"""

from __future__ import annotations

from collections.abc import Callable

from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.domain.types import QUANTITY_EPSILON, Side
from slsbot_runtime.engine.loop_state import LoopState
from slsbot_runtime.engine.refusals import EntryRefusals
from slsbot_runtime.engine.restart import Restart
from slsbot_runtime.engine.settings import LoopSettings
from slsbot_runtime.engine.status_publisher import StatusPublisher
from slsbot_runtime.exchange.base import BookPersistence
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.execution.order_manager import OrderManager

FLATTEN_POLL_S = 0.2  # how often a flatten at shutdown asks the exchange whether its orders filled


class Shutdown:
    def __init__(
        self,
        settings: LoopSettings,
        *,
        state: LoopState,
        restart: Restart,
        book: BookPersistence | None,
        ledger: Ledger,
        orders: OrderManager,
        cancel: Callable[[str, int], None],
        refusals: EntryRefusals,
        publisher: StatusPublisher,
        log: StrategyLog,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        """``cancel(client_order_id, ts)``: the loop's own cancel, which logs a failure and leaves the order to the
        next attempt."""
        self.settings = settings
        self.state = state
        self.restart = restart
        self.book = book
        self.ledger = ledger
        self.orders = orders
        self.cancel = cancel
        self.refusals = refusals
        self.publisher = publisher
        self.log = log
        self.clock = clock
        self.sleep = sleep

    def shutdown(self, *, cancel_orders: bool, flatten: bool, fill_deadline_s: float) -> None:
        """Cancel open orders, close every position at market when asked, persist. Phase ``finished``."""
        state, restart = self.state, self.restart
        if not state.reconciled and state.halt_reason is None and (cancel_orders or flatten):
            try:
                restart.reconcile()  # asked to stop while replaying: the books must be right before acting
            except StateError:
                self.log.error("shutdown: not canceling or flattening, the state disagrees with the exchange")
        if state.reconciled and state.halt_reason is None:
            ts = state.last_ts if state.last_ts is not None else 0
            if cancel_orders or flatten:
                for order in self.orders.unfinished():
                    self.cancel(order.client_order_id, ts + self.settings.interval_ms)
            if flatten:
                self._flatten(ts, fill_deadline_s, "flatten at shutdown")
        restart.flush()
        state.finished = True
        self.refusals.flush()
        left = (len(self.orders.unfinished()), self.ledger.open_positions())
        state.finish_note = f"shut down (cancelOrders={cancel_orders}, flatten={flatten}): trades no more"
        self.log.info(
            "shut down (cancelOrders=%s, flatten=%s) after %d candles: %d open orders and %d open positions "
            "remain, equity %.2f %s, state flushed",
            cancel_orders,
            flatten,
            state.processed,
            *left,
            self.ledger.equity(),
            self.settings.quote_currency,
        )
        self.publisher.publish()

    def close_out(self, reason: str, fill_deadline_s: float) -> bool:
        """A kill switch: cancel every open order and close every position at market now, without ending the loop
        (the risk manager keeps it flat and entry-free from then on); committed. False, doing nothing, on books not
        reconciled with the exchange yet (the first new candle's risk verdict then flattens)."""
        state = self.state
        if not state.reconciled or state.halt_reason is not None:
            return False
        ts = state.last_ts if state.last_ts is not None else 0
        for order in self.orders.unfinished():
            self.cancel(order.client_order_id, ts + self.settings.interval_ms)
        self._flatten(ts, fill_deadline_s, reason)
        self.restart.commit()
        return True

    def _flatten(self, ts: int, deadline_s: float, reason: str) -> None:
        orders = self.orders
        for symbol, row in sorted(self.ledger.positions.items()):
            if abs(row.quantity) > QUANTITY_EPSILON:
                side = Side.SELL if row.quantity > 0 else Side.BUY
                orders.create_intent(
                    symbol,
                    side,
                    abs(row.quantity),
                    candle_ts=ts,
                    created_ts=ts + self.settings.interval_ms,
                    reason=reason,
                    fresh=True,
                )
        orders.send_pending()
        if self.book is not None:
            orders.apply_fills(self.book.settle_now())
        deadline = self.clock() + deadline_s
        while orders.unfinished() and self.clock() < deadline:
            for symbol in {o.symbol for o in orders.unfinished()}:
                orders.refresh(symbol)
            if orders.unfinished():
                self.sleep(FLATTEN_POLL_S)
