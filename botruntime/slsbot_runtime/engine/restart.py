"""``Restart``: what a restarted loop finds in its state file, and how it gets there.

``commit`` and ``load`` are two halves of one format, kept side by side: ``commit`` stages what only changes in
memory (the risk snapshot, cash, the equity watermark, the changes of a book kept in this process) on top of what
the candles staged (the loop: each candle's cursor and equity row; the order manager: intents, fills, positions)
and writes it all in one transaction (a backtest's store, ``Durability.NONE``, never: it keeps what was staged);
``load`` reads every part of it back into the ledger, the order manager, the risk manager, the refusal streaks and
the book. ``reconcile`` then checks the loaded books against the exchange, once, before anything is sent for a new
candle (docs/concepts/runtime-loop.md#restart). An exchange that fails temporarily meanwhile is waited for
(``engine.exchange_wait``): the reconciliation is tried again after a backoff, never a halt.

The book is reached through the exchange's ``BookPersistence`` capability: the paper exchange hands out its own,
a real exchange none (it keeps its book itself; the reconciliation asks it).
"""

from __future__ import annotations

from collections.abc import Callable

from slsbot_runtime.domain.errors import StateError, TemporaryExchangeError
from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.engine.health import redact, safe_error_text
from slsbot_runtime.engine.loop_state import LoopState
from slsbot_runtime.engine.profit import META_MAX_DRAWDOWN, META_PEAK, EquityWatermark
from slsbot_runtime.engine.refusals import EntryRefusals
from slsbot_runtime.engine.risk_watch import RiskWatch
from slsbot_runtime.engine.settings import LoopSettings
from slsbot_runtime.engine.status import Phase
from slsbot_runtime.engine.status_publisher import StatusPublisher
from slsbot_runtime.exchange.base import BookPersistence
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.execution.reconcile import ReconcileReport, reconcile
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.base import RiskEvent
from slsbot_runtime.risk.manager import RiskManager


class Restart:
    def __init__(
        self,
        settings: LoopSettings,
        *,
        state: LoopState,
        store: StateStore,
        book: BookPersistence | None,
        ledger: Ledger,
        orders: OrderManager,
        risk: RiskManager,
        risk_watch: RiskWatch,
        refusals: EntryRefusals,
        publisher: StatusPublisher,
        log: StrategyLog,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.state = state
        self.store = store
        self.book = book
        self.ledger = ledger
        self.orders = orders
        self.risk = risk
        self.risk_watch = risk_watch
        self.refusals = refusals
        self.publisher = publisher
        self.log = log
        self.clock = clock
        self.report: ReconcileReport | None = None  # the reconciliation's, once it ran
        #: Told each reconciliation's outcome: None when the books agree, else the disagreement (before the halt).
        self.on_reconciled: Callable[[str | None], None] | None = None
        #: Told each temporary exchange error that stopped a reconciliation (the health block's exchange counters).
        self.on_exchange_error: Callable[[Exception], None] | None = None
        #: Told when the exchange answers a reconciliation again after failing (the health block's).
        self.on_exchange_ok: Callable[[], None] | None = None
        state.last_commit = clock()

    def load(self) -> None:
        """Read the stored state back; the loop then replays the candles up to the cursor and reconciles."""
        store, settings, state = self.store, self.settings, self.state
        meta = store.load_meta()
        stored_key = meta.get("strategy_key")
        if stored_key is not None and stored_key != settings.strategy_key:
            raise StateError(
                f"state: {store.path} belongs to strategy {stored_key}, not "
                f"{settings.strategy_key}; use another --state file"
            )
        if stored_key is None:
            store.stage_meta("strategy_key", settings.strategy_key)
            store.stage_meta("starting_cash", settings.starting_cash)
            store.stage_meta("quote_currency", settings.quote_currency)
        self.ledger.restore(
            cash=float(meta.get("cash", settings.starting_cash)),
            positions=store.load_positions(),
            trade_count=int(meta.get("trade_count", 0)),
        )
        state.starting_equity = float(meta.get("starting_cash", settings.starting_cash))
        if META_PEAK in meta:
            state.watermark = EquityWatermark(meta[META_PEAK], float(meta.get(META_MAX_DRAWDOWN, 0.0)))
        else:  # a state file from before the loop kept them: its equity rows say
            state.watermark = EquityWatermark(*store.equity_watermark())
        self.orders.load(store.load_orders(), store.load_fills())
        state.cursor = store.load_cursor()
        snapshot = store.load_risk()
        if snapshot is not None:
            self.risk.restore(snapshot)
        elif self.risk.last_ts is None:
            self.risk.set_opening_equity(self.ledger.equity())  # the first UTC day's loss counts from here
        for symbol, (first_ts, count, events) in store.load_refused_entries().items():
            if symbol in settings.symbols:
                events = [RiskEvent(rule, message) for rule, message in events]
                self.refusals.restore(symbol, first_ts + settings.interval_ms, count, events)
        self.risk_watch.resume()
        if self.book is not None:
            stored = store.load_paper_book()
            if stored is not None:
                self.book.restore(
                    orders=stored.orders,
                    eligible_ts=stored.eligible_ts,
                    fills=stored.fills,
                    balances=stored.balances,
                    clock_ms=stored.clock_ms,
                    last_close=meta.get("paper_last_close"),
                )
        state.startup_phase = Phase.RECONCILING
        state.started = True

    def commit(self) -> None:
        """Stage what only changes in memory (risk, cash, the book) and write it all in one transaction, if the store
        writes its commits (``Durability.EVERY_COMMIT``, a runtime's); staging it for a store that does not would be
        work for nothing."""
        if self.store.writes_commits:
            self._stage_memory()
            self.store.commit()
        self._committed()

    def flush(self) -> None:
        """``commit``, written even by a store whose commits do not write: the end of a run (the feed ended, a
        shutdown). A store that never writes (``Durability.NONE``, a backtest's) is not handed the in-memory part."""
        if self.store.writes:
            self._stage_memory()
            self.store.flush()
        self._committed()

    def _committed(self) -> None:
        self.state.staged = 0
        self.state.last_commit = self.clock()

    def _stage_memory(self) -> None:
        store, state = self.store, self.state
        risk_ts = self.risk.last_ts
        if state.risk_fed and risk_ts is not None:
            store.stage_risk_json(risk_ts, self.risk.snapshot_json())
        store.stage_meta("cash", self.ledger.cash)
        store.stage_meta("trade_count", self.ledger.trade_count)
        store.stage_meta(META_PEAK, state.watermark.peak)
        store.stage_meta(META_MAX_DRAWDOWN, state.watermark.max_drawdown_pct)
        book = self.book
        if book is not None:
            changes = book.drain_changes()
            if changes:
                store.stage_paper_book(changes)
            store.stage_meta("paper_last_close", book.last_closes())

    def reconcile(self) -> None:
        """Bring the loaded books in line with the exchange (``execution.reconcile``); a disagreement halts trading
        for good and raises ``StateError``.

        A temporary exchange error (still failing after the adapter's retries) is no disagreement: it is recorded in
        ``state.exchange_wait`` (when to try again, ``settings.reconcile_retry``) and raised unchanged; the books stay
        unreconciled, nothing is sent, and the next attempt starts over (the steps are idempotent: an order adopted
        or resent by this attempt is found by its client id, a fill booked by it is known by its id)."""
        state, publisher = self.state, self.publisher
        state.startup_phase = Phase.RECONCILING
        publisher.publish()
        wait = state.exchange_wait
        try:
            self.report = reconcile(
                self.orders,
                symbols=self.settings.symbols,
                cursor=state.cursor,
                interval_ms=self.settings.interval_ms,
            )
        except TemporaryExchangeError as error:
            delay = wait.failed(safe_error_text(error), self.clock(), self.settings.reconcile_retry)
            if self.on_exchange_error is not None:
                self.on_exchange_error(error)
            self.log.warning(
                "reconcile: the exchange does not answer (%s, attempt %d); trying again in %.0fs, nothing is sent "
                "meanwhile",
                wait.error,
                wait.failures,
                delay,
            )
            publisher.publish()
            raise
        except StateError as error:
            reason = redact(str(error))  # what the status shows: it may quote the exchange
            if self.on_reconciled is not None:
                self.on_reconciled(reason)
            state.halt_reason = reason
            publisher.publish()
            raise
        if wait.waiting:
            failures = wait.cleared()
            if self.on_exchange_ok is not None:
                self.on_exchange_ok()
            self.log.info("reconcile: the exchange answers again after %d failed attempts", failures)
        if self.on_reconciled is not None:
            self.on_reconciled(None)
        state.reconciled = True
        self.commit()
        report = self.report
        self.log.info(
            "reconciled after replaying %d candles: %d orders checked, %d resent, %d adopted, %d fills booked",
            state.replayed,
            report.checked,
            len(report.resent),
            len(report.adopted),
            report.fills_booked,
        )
