"""``TradingModeGuard``: the trading mode in force (``domain.trading_mode``), kept in the state file, and what it
does to orders.

* Every change is staged in the state file's meta and committed *before* it is in force (and before ``POST
  /trading-mode`` is answered); a change that cannot be written changes nothing.
* ``gate`` is asked by the order manager before each send: in ``safe`` an order that would open or add to a position
  is marked rejected with the reason and never sent, the others go out ``reduce_only``; in ``halted`` nothing goes
  out but the halt's own flatten (and a shutdown's).
* ``settle`` does a halt's work once the books are reconciled: cancel every unfinished order, close every position
  when ``flatten`` was asked, then mark it done (``settled``) in the same state file. A restart in the middle does
  it again from what is left (cancelled orders stay cancelled, a closed position is not closed twice: the flatten
  sizes each exit from the position and the exits already working).
* ``go_safe`` is the runtime's own move: ``healing.rejectLimit`` rejected or failed orders in a row, or a
  disagreement with the exchange, put a ``normal`` runtime in ``safe`` at once. Only the control plane sets
  ``normal`` again.
* ``hold_entries`` / ``release_entries``: ``safe`` for a moment (a key rotation), in this process only and never
  written, then the mode that was in force before. A change meanwhile (the control plane's, or ``go_safe``) wins: the
  release then restores nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from slsbot.api.health import TradingMode
from slsbot_runtime.domain.errors import ExchangeError, StateError
from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.domain.trading_mode import META_KEY, TradingModeState, refusal, would_increase
from slsbot_runtime.domain.types import QUANTITY_EPSILON, Order, OrderStatus, Side
from slsbot_runtime.engine.loop_state import LoopState
from slsbot_runtime.engine.settings import LoopSettings
from slsbot_runtime.exchange.base import BookPersistence
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.persistence.store import StateStore

FLATTEN_REASON = "flatten on halt"
SETTLE_EVERY_S = 1.0  # how often an unfinished halt looks again at its orders (wall clock)


class TradingModeGuard:
    def __init__(
        self,
        settings: LoopSettings,
        *,
        state: LoopState,
        store: StateStore,
        orders: OrderManager,
        ledger: Ledger,
        book: BookPersistence | None,
        commit: Callable[[], None],
        cancel: Callable[[str, int], None],
        log: StrategyLog,
        metrics: RuntimeMetrics | None,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.state = state
        self.store = store
        self.orders = orders
        self.ledger = ledger
        self.book = book
        self.commit = commit
        self.cancel = cancel
        self.log = log
        self.metrics = metrics
        self.current = TradingModeState()
        self.clock = clock
        self.closing = False  # a halt's or a shutdown's flatten is sending its exits
        self._settled_at = -math.inf  # when settle last looked (wall clock)
        self._held: TradingModeState | None = None  # the hold in force (hold_entries), until released or replaced
        orders.gate = self.gate
        self._shown()

    @property
    def mode(self) -> TradingMode:
        return self.current.mode

    def load(self, meta: dict[str, object]) -> None:
        """The mode stored in the state file (``Restart.load``); a halt not yet settled is settled after the
        reconciliation."""
        self._put(TradingModeState.load(dict(meta)))

    # -- what orders may do ----------------------------------------------------------------------------------

    def gate(self, order: Order) -> str | None:
        current = self.current
        if current.mode is TradingMode.NORMAL:
            return None
        working = [
            (o.side, o.quantity - o.filled_quantity)
            for o in self.orders.unfinished(order.symbol)
            if o.client_order_id != order.client_order_id
        ]
        increases = would_increase(self.ledger.quantity(order.symbol), working, order.side, order.quantity)
        return refusal(current, increases=increases, closing=self.closing)

    # -- changes -------------------------------------------------------------------------------------------------

    def set(self, mode: TradingMode, *, reason: str | None, flatten: bool) -> TradingModeState:
        """Persist the new mode, then put it in force (a halt cancels and flattens now if the books are reconciled,
        else right after the reconciliation). StateError when it cannot be written: nothing changed."""
        halted = mode is TradingMode.HALTED
        after = TradingModeState(mode, reason, flatten and halted, settled=not halted)
        if halted and self.current.mode is TradingMode.HALTED and self.current.settled and not flatten:
            after = TradingModeState(mode, reason, self.current.flatten, settled=True)  # asked again: nothing to redo
        self._persist(after)
        self.log.info(
            "trading mode %s%s (%s)", mode, " with flatten" if after.flatten else "", reason or "no reason given"
        )
        if halted and not after.settled and self.state.reconciled:
            self._settled_at = -math.inf
            self.settle()
        return self.current

    def go_safe(self, reason: str) -> bool:
        """The runtime's own move to ``safe`` (only from ``normal``); True when it changed the mode."""
        holding = self._held is not None and self.current is self._held
        if self.current.mode is not TradingMode.NORMAL and not holding:
            return False
        self._held = None  # a hold's release must not undo the runtime's own move
        self.log.warning("trading mode safe: %s; new entries stop until the control plane sets normal", reason)
        try:
            self._persist(TradingModeState(TradingMode.SAFE, reason))
        except StateError as error:  # not written: in force in this process all the same, safe is the cautious side
            self.log.error("could not write the trading mode to the state file: %s", error)
            self._put(TradingModeState(TradingMode.SAFE, reason))
        return True

    def hold_entries(self, reason: str) -> TradingModeState | None:
        """Stop new entries for a moment: ``safe`` in force now, not written to the state file (a restart ends the
        hold). Returns the state to give back to ``release_entries``; None when the mode in force already stops
        every entry (``safe``, ``halted``): nothing to hold or release then."""
        before = self.current
        if before.mode is not TradingMode.NORMAL:
            return None
        self._put(TradingModeState(TradingMode.SAFE, reason))
        self._held = self.current
        return before

    def release_entries(self, before: TradingModeState | None) -> bool:
        """Put ``before`` back in force, unless the mode was changed since the hold; True when it did."""
        held, self._held = self._held, None
        if before is None or held is None or self.current is not held:
            return False
        self._put(before)
        return True

    def settle(self) -> None:
        """A halt's work, once: cancel every unfinished order but the halt's own exits, close every position when
        asked, and note it done once nothing is left working. Until then it is asked again (each tick, at most
        every ``SETTLE_EVERY_S``): an exchange that fills the exits later is refreshed, a failed cancel retried."""
        current = self.current
        if current.mode is not TradingMode.HALTED or current.settled:
            return
        now = self.clock()
        if now - self._settled_at < SETTLE_EVERY_S:
            return
        self._settled_at = now
        orders = self.orders
        ts = (self.state.last_ts if self.state.last_ts is not None else 0) + self.settings.interval_ms
        for symbol in {o.symbol for o in orders.unfinished() if o.status is not OrderStatus.PENDING}:
            try:
                orders.refresh(symbol)
            except ExchangeError as error:
                self.log.warning("halt: could not refresh %s, trying again: %s", symbol, error)
        for order in orders.unfinished():
            if order.reason != FLATTEN_REASON:
                self.cancel(order.client_order_id, ts)
        if current.flatten:
            self._flatten(ts)
        left = orders.unfinished()
        if left:  # a cancel failed, or the exits are still working: asked again
            self.log.info("halt: %d orders still working, looking again", len(left))
            self.commit()
            return
        self._persist(TradingModeState(TradingMode.HALTED, current.reason, current.flatten, settled=True))
        self.log.info(
            "halted: orders cancelled%s; %d open positions remain",
            ", positions closed" if current.flatten else "",
            self.ledger.open_positions(),
        )

    def _flatten(self, ts: int) -> None:
        orders = self.orders
        self.closing = True
        try:
            for symbol, row in sorted(self.ledger.positions.items()):
                held = row.quantity
                working = sum(o.side.sign * (o.quantity - o.filled_quantity) for o in orders.unfinished(symbol))
                net = held + working
                if abs(net) > QUANTITY_EPSILON and abs(held) > QUANTITY_EPSILON:
                    orders.create_intent(
                        symbol,
                        Side.SELL if net > 0 else Side.BUY,
                        abs(net),
                        candle_ts=ts,
                        created_ts=ts,
                        reason=FLATTEN_REASON,
                        fresh=True,
                    )
            orders.send_pending()
            if self.book is not None:
                orders.apply_fills(self.book.settle_now())
        finally:
            self.closing = False

    def _persist(self, after: TradingModeState) -> None:
        before = self.current
        self.store.stage_meta(META_KEY, after.meta_value())
        try:
            self.commit()
        except StateError:
            self.store.stage_meta(META_KEY, before.meta_value())  # not written: nothing may change later either
            raise
        self._put(after)

    def _put(self, state: TradingModeState) -> None:
        self.current = state
        self.orders.reduce_only = state.mode is not TradingMode.NORMAL
        self._shown()

    def _shown(self) -> None:
        if self.metrics is not None:
            self.metrics.set_trading_mode(str(self.current.mode))
