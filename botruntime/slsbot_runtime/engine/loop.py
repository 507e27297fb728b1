"""``TradingLoop``: everything that happens to one candle, in order, and the restart that repeats it.

Per candle (see docs/concepts/runtime-loop.md):

1. gap and warmup bookkeeping;
2. ``exchange.on_candle`` (the paper exchange matches resting orders here), fills booked once;
3. unfinished orders of the symbol refreshed from the exchange;
4. features and the ensemble decision;
5. the risk manager's ``on_candle``, then the plan (cancel, exit, or an entry sized by ``evaluate``);
6. new intents staged as pending, the candle's cursor and equity staged, then, if there is anything to
   send, the whole state committed *before* the orders go out;
7. a commit every ``commit_every_candles`` candles or ``commit_interval_s`` seconds otherwise; metrics.

Restart: ``start()`` loads orders, fills, positions, cash, the risk snapshot and the paper book. Candles at
or before the stored cursor are replayed through the gap tracker and the deciders only (features and
strategies rebuild themselves; nothing is sent and nothing is booked). The first newer candle triggers
reconciliation with the exchange, then normal processing continues. Because the cursor, the intents and
the paper book always move together in one transaction, the restarted run is the uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from slsbot_runtime.data.gaps import GapTracker
from slsbot_runtime.domain.errors import ExchangeError, StateError
from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.domain.timeframes import utc_minute
from slsbot_runtime.domain.types import QUANTITY_EPSILON, Candle, Fill, OrderRequest, Side
from slsbot_runtime.engine.idle import describe_idle
from slsbot_runtime.engine.monitoring import MonitoringView
from slsbot_runtime.engine.planning import (
    CancelOrder,
    ExitPosition,
    ProposeEntry,
    WorkingOrder,
    plan_symbol,
    target_sign,
)
from slsbot_runtime.engine.profit import META_MAX_DRAWDOWN, META_PEAK, EquityWatermark, profit_figures
from slsbot_runtime.engine.refusals import EntryRefusals
from slsbot_runtime.engine.risk_record import RiskDecisionRecorder
from slsbot_runtime.engine.signals import Decider, SymbolDecision
from slsbot_runtime.engine.status import Phase, RuntimeStatus
from slsbot_runtime.engine.track_record import SignalTrackRecord
from slsbot_runtime.exchange.base import Exchange
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.execution.reconcile import ReconcileReport, reconcile
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.base import RiskAction, RiskEvent, TradeProposal
from slsbot_runtime.risk.manager import RiskManager

log = logging.getLogger(__name__)
FLATTEN_POLL_S = 0.2  # how often a flatten at shutdown asks the exchange whether its orders filled
PUBLISH_INTERVAL_S = 0.02  # the status snapshot is rebuilt at most this often while candles stream


@dataclass(frozen=True, slots=True)
class LoopSettings:
    name: str
    strategy_key: str  # namespace/name: part of every client order id
    symbols: tuple[str, ...]
    interval_ms: int
    warmup_candles: int
    starting_cash: float
    quote_currency: str
    long_only: bool = True
    fixed_quantity: float | None = None
    paused: bool = False
    round_trip_cost: float = 0.002  # fees of an entry and an exit, for the signal track record
    commit_every_candles: int = 1000
    commit_interval_s: float = 0.5


class TradingLoop:
    def __init__(
        self,
        settings: LoopSettings,
        *,
        exchange: Exchange,
        store: StateStore,
        deciders: Mapping[str, Decider],
        risk: RiskManager,
        metrics: RuntimeMetrics | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        missing = [s for s in settings.symbols if s not in deciders]
        if missing:
            raise ValueError(f"no decider for {', '.join(missing)}")
        self.settings = settings
        self.exchange = exchange
        self.store = store
        self.deciders = dict(deciders)
        self.risk = risk
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.log = StrategyLog(log, settings.strategy_key)
        self.risk_decisions = RiskDecisionRecorder(store, metrics)
        self.monitoring = MonitoringView(self.deciders.values(), metrics)
        self.refusals = EntryRefusals(self.log, clock)
        self.watermark = EquityWatermark()
        self.starting_equity = settings.starting_cash  # the stored one from start() on
        self.ledger = Ledger(cash=settings.starting_cash, quote_currency=settings.quote_currency)
        self.orders = OrderManager(
            exchange=exchange,
            store=store,
            ledger=self.ledger,
            strategy_key=settings.strategy_key,
            on_fill=self._on_fill,
            commit=self.commit,
            on_submit=self._on_submit,
        )
        self.gaps = GapTracker(interval_ms=settings.interval_ms, warmup_candles=settings.warmup_candles)
        self.records = {s: SignalTrackRecord(settings.round_trip_cost) for s in settings.symbols}
        self.paused = settings.paused
        self.phase = Phase.STARTING
        self.halt_reason: str | None = None
        self.reconcile_report: ReconcileReport | None = None
        self.replayed = 0
        self.processed = 0
        #: Candles opened before this (ms) are processed but not traded: a live feed catching up on history.
        self.trade_from_ts: int | None = None
        self._cursor: dict[str, int] = {}
        self._started = False
        self._reconciled = False
        self._ever_warm = False
        self._finished = False
        self._risk_fed = False  # the risk manager has taken a candle from this loop
        self._must_flatten = False  # the risk manager's verdict after the last candle
        self._last_ts: int | None = None
        self._staged = 0
        self._orders_seen = -1
        self._published_at = 0.0
        self._phase_shown = False
        self._breaker_seen = 0  # risk.breaker_changes when the tripped levels were last looked at
        self._breakers: dict[int, str] = {}  # the tripped breaker levels then
        self._finish_note: str | None = None  # what ended the loop, for the idle message
        self._last_commit = clock()
        self.status = self._snapshot()

    # -- life cycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the stored state; the next candles up to the cursor are replayed, then reconciled."""
        store = self.store
        meta = store.load_meta()
        stored_key = meta.get("strategy_key")
        if stored_key is not None and stored_key != self.settings.strategy_key:
            raise StateError(
                f"state: {store.path} belongs to strategy {stored_key}, not "
                f"{self.settings.strategy_key}; use another --state file"
            )
        if stored_key is None:
            store.stage_meta("strategy_key", self.settings.strategy_key)
            store.stage_meta("starting_cash", self.settings.starting_cash)
            store.stage_meta("quote_currency", self.settings.quote_currency)
        self.ledger.restore(
            cash=float(meta.get("cash", self.settings.starting_cash)),
            positions=store.load_positions(),
            trade_count=int(meta.get("trade_count", 0)),
        )
        self.starting_equity = float(meta.get("starting_cash", self.settings.starting_cash))
        if META_PEAK in meta:
            self.watermark = EquityWatermark(meta[META_PEAK], float(meta.get(META_MAX_DRAWDOWN, 0.0)))
        else:  # a state file from before the loop kept them: its equity rows say
            self.watermark = EquityWatermark(*store.equity_watermark())
        self.orders.load(store.load_orders(), store.load_fills())
        self._cursor = store.load_cursor()
        snapshot = store.load_risk()
        if snapshot is not None:
            self.risk.restore(snapshot)
        elif self.risk.last_ts is None:
            self.risk.set_opening_equity(self.ledger.equity())  # the first UTC day's loss counts from here
        for symbol, (first_ts, count, events) in store.load_refused_entries().items():
            if symbol in self.records:
                events = [RiskEvent(rule, message) for rule, message in events]
                self.refusals.restore(symbol, first_ts + self.settings.interval_ms, count, events)
        self._breaker_seen, self._breakers = self.risk.breaker_changes, self.risk.tripped_breaker_levels()
        for description in self._breakers.values():
            self.log.info("circuit breaker %s: still tripped", description)
        if isinstance(self.exchange, PaperExchange):
            book = store.load_paper_book()
            if book is not None:
                self.exchange.restore(
                    orders=book.orders,
                    eligible_ts=book.eligible_ts,
                    fills=book.fills,
                    balances=book.balances,
                    clock_ms=book.clock_ms,
                    last_close=meta.get("paper_last_close"),
                )
        self.phase = Phase.RECONCILING
        self._started = True
        self._publish()

    def run(self, candles: Iterable[Candle]) -> None:
        """Start, process every candle, finish: the whole loop in-process (backtests use this)."""
        self.start()
        for candle in candles:
            self.process(candle)
        self.finish()

    def finish(self) -> None:
        """The feed ended: reconcile if no candle needed it yet, commit, phase ``finished``."""
        if not self._reconciled:
            self._reconcile()
        self.commit()
        self._finished = True
        self._finish_note = f"the feed ended after {self.processed} candles: nothing more to trade"
        self.refusals.flush()
        self._publish()

    def halt(self, reason: str) -> None:
        """Stop trading for good (state that cannot be reconciled); the process keeps reporting."""
        self.halt_reason = reason
        self._publish()

    def pause(self) -> None:
        self.paused = True
        self._publish()

    def resume(self) -> None:
        self.paused = False
        self._publish()

    # -- one candle ---------------------------------------------------------------------------------------------

    def process(self, candle: Candle) -> bool:
        """Process one candle; False when it was only replayed (at or before the stored cursor)."""
        cursor = self._cursor.get(candle.symbol)
        if cursor is not None and candle.ts <= cursor:
            self._replay(candle)
            return False
        if self.halt_reason is not None:
            raise StateError(f"trading is halted: {self.halt_reason}")
        if not self._reconciled:
            self._reconcile()
        symbol, ts, close = candle.symbol, candle.ts, candle.close
        gap = self.gaps.observe(candle)
        if gap is not None and self.metrics is not None:
            self.metrics.feed_gaps.labels(symbol).inc(gap.missing)
        orders, ledger = self.orders, self.ledger
        fills = self.exchange.on_candle(candle)
        if fills:
            orders.apply_fills(fills)
        if orders.has_unfinished(symbol):
            orders.refresh(symbol)
        ledger.mark(symbol, close)
        started = time.perf_counter()
        decision = self.deciders[symbol].decide(candle)
        equity = ledger.equity()
        self.watermark.observe(equity)
        risk = self.risk
        risk.observe(ts, equity, {symbol: close}, {symbol: decision.anomaly_score})
        self._risk_fed = True
        must_flatten = risk.must_flatten
        if must_flatten != self._must_flatten or risk.breaker_changes != self._breaker_seen:
            self._risk_changed(ts, must_flatten)
        self._must_flatten = must_flatten
        self._trade(candle, decision, must_flatten)
        self._follow_signal(candle, decision)
        elapsed = time.perf_counter() - started
        self.store.stage_equity(ts, symbol, equity, ledger.cash)
        self.store.stage_cursor(symbol, ts)
        self._cursor[symbol] = ts
        self._last_ts = ts
        self._staged += 1
        self.processed += 1
        if orders.has_unsent:
            orders.send_pending()
            self.commit()  # the exchange's answers (ids, statuses) on disk now, not with a later candle
        elif self._staged >= self.settings.commit_every_candles or (
            self.clock() - self._last_commit >= self.settings.commit_interval_s
        ):
            self.commit()
        if self.metrics is not None:
            self._observe(candle, elapsed, equity)
        now = self.clock()
        if now - self._published_at >= PUBLISH_INTERVAL_S:
            self._publish()
        return True

    def _replay(self, candle: Candle) -> None:
        self.gaps.observe(candle)
        self.ledger.mark(candle.symbol, candle.close)
        decision = self.deciders[candle.symbol].decide(candle)
        self._follow_signal(candle, decision)
        self._last_ts = candle.ts
        self.replayed += 1
        if self.metrics is not None:
            self.metrics.candles_replayed.inc()
        if self.replayed % 1024 == 0:
            self._publish()

    def _reconcile(self) -> None:
        self.phase = Phase.RECONCILING
        self._publish()
        try:
            self.reconcile_report = reconcile(self.orders)
        except StateError as error:
            self.halt(str(error))
            raise
        self._reconciled = True
        self.commit()
        report = self.reconcile_report
        self.log.info(
            "reconciled after replaying %d candles: %d orders checked, %d resent, %d fills booked",
            self.replayed,
            report.checked,
            len(report.resent),
            report.fills_booked,
        )

    def _trade(self, candle: Candle, decision: SymbolDecision, must_flatten: bool) -> None:
        symbol = candle.symbol
        if self.trade_from_ts is not None and candle.ts < self.trade_from_ts:
            return
        warm = self.gaps.is_warm(symbol)
        if warm and not self._ever_warm:
            self._ever_warm = all(self.gaps.is_warm(s) for s in self.settings.symbols)
        # while warming up (warmupCandles candles after the start or a gap) only entries wait: exits, cancels
        # and risk flattening go on
        orders = self.orders
        working = (
            [WorkingOrder(o.client_order_id, o.side) for o in orders.unfinished(symbol)]
            if orders.has_unfinished(symbol)
            else []
        )
        actions = plan_symbol(
            direction=decision.direction,
            position=self.ledger.quantity(symbol),
            working=working,
            long_only=self.settings.long_only,
            must_flatten=must_flatten,
            entries_allowed=warm and not self.paused,
        )
        if not actions:
            return
        decided_at = candle.ts + self.settings.interval_ms  # the candle's close
        for action in actions:
            if isinstance(action, CancelOrder):
                self._cancel(action.client_order_id, decided_at)
            elif isinstance(action, ExitPosition):
                self._exit(candle, decision, action.side, action.reason)
            elif isinstance(action, ProposeEntry):
                self._enter(candle, decision, action.side, action.reason)

    def _follow_signal(self, candle: Candle, decision: SymbolDecision) -> None:
        target = target_sign(decision.direction, long_only=self.settings.long_only, must_flatten=False)
        self.records[candle.symbol].observe(target, candle.close)

    def _exit(self, candle: Candle, decision: SymbolDecision, side: Side, reason: str) -> None:
        quantity = abs(self.ledger.quantity(candle.symbol))
        if quantity <= QUANTITY_EPSILON:
            return
        proposal = TradeProposal(
            candle.symbol,
            side,
            candle.close,
            _unit(decision.confidence),
            is_entry=False,
            requested_quantity=quantity,
            rules=self.exchange.market_rules(candle.symbol),
        )
        verdict = self.risk.evaluate(proposal, self.ledger.snapshot(candle.ts))
        self.risk_decisions.record(candle.ts, proposal, verdict)
        if verdict.quantity > QUANTITY_EPSILON:
            self.orders.create_intent(
                candle.symbol,
                side,
                verdict.quantity,
                candle_ts=candle.ts,
                created_ts=candle.ts + self.settings.interval_ms,
                reason=reason,
            )

    def _enter(self, candle: Candle, decision: SymbolDecision, side: Side, reason: str) -> None:
        win_rate, payoff = self.records[candle.symbol].win_rate_and_payoff()
        proposal = TradeProposal(
            candle.symbol,
            side,
            candle.close,
            _unit(decision.confidence),
            is_entry=True,
            win_rate=win_rate,
            payoff_ratio=payoff,
            requested_quantity=self.settings.fixed_quantity,
            rules=self.exchange.market_rules(candle.symbol),
        )
        verdict = self.risk.evaluate(proposal, self.ledger.snapshot(candle.ts))
        self.risk_decisions.record(candle.ts, proposal, verdict)
        if verdict.action == RiskAction.REJECTED:
            self.refusals.refused(candle.symbol, candle.ts + self.settings.interval_ms, verdict.events)
            return
        if verdict.quantity > QUANTITY_EPSILON:
            if self.refusals.streaks:
                self.refusals.accepted(candle.symbol)
            driver = f" ({decision.driver})" if decision.driver else ""
            self.orders.create_intent(
                candle.symbol,
                side,
                verdict.quantity,
                candle_ts=candle.ts,
                created_ts=candle.ts + self.settings.interval_ms,
                reason=reason + driver,
            )

    def _cancel(self, client_order_id: str, ts: int) -> None:
        order = self.orders.orders[client_order_id]
        try:
            self.orders.cancel(order, ts=ts)
        except ExchangeError as error:
            self.log.warning("cancel of %s failed, will retry next candle: %s", client_order_id, error)

    # -- shutdown ---------------------------------------------------------------------------------------------------

    def shutdown(self, *, cancel_orders: bool, flatten: bool, fill_deadline_s: float = 30.0) -> None:
        """Cancel open orders, close every position at market when asked, persist. Phase ``finished``."""
        if not self._reconciled and self.halt_reason is None and (cancel_orders or flatten):
            try:
                self._reconcile()  # asked to stop while replaying: the books must be right before acting
            except StateError:
                self.log.error("shutdown: not canceling or flattening, the state disagrees with the exchange")
        if self._reconciled and self.halt_reason is None:
            ts = self._last_ts if self._last_ts is not None else 0
            if cancel_orders or flatten:
                for order in self.orders.unfinished():
                    self._cancel(order.client_order_id, ts + self.settings.interval_ms)
            if flatten:
                self._flatten(ts, fill_deadline_s)
        self.commit()
        self._finished = True
        self.refusals.flush()
        left = (len(self.orders.unfinished()), self.ledger.open_positions())
        self._finish_note = f"shut down (cancelOrders={cancel_orders}, flatten={flatten}): trades no more"
        self.log.info(
            "shut down (cancelOrders=%s, flatten=%s) after %d candles: %d open orders and %d open positions "
            "remain, equity %.2f %s, state flushed",
            cancel_orders,
            flatten,
            self.processed,
            *left,
            self.ledger.equity(),
            self.settings.quote_currency,
        )
        self._publish()

    def _flatten(self, ts: int, deadline_s: float) -> None:
        for symbol, row in sorted(self.ledger.positions.items()):
            if abs(row.quantity) > QUANTITY_EPSILON:
                side = Side.SELL if row.quantity > 0 else Side.BUY
                self.orders.create_intent(
                    symbol,
                    side,
                    abs(row.quantity),
                    candle_ts=ts,
                    created_ts=ts + self.settings.interval_ms,
                    reason="flatten at shutdown",
                    fresh=True,
                )
        self.orders.send_pending()
        if isinstance(self.exchange, PaperExchange):
            self.orders.apply_fills(self.exchange.settle_now())
        deadline = self.clock() + deadline_s
        while self.orders.unfinished() and self.clock() < deadline:
            for symbol in {o.symbol for o in self.orders.unfinished()}:
                self.orders.refresh(symbol)
            if self.orders.unfinished():
                self.sleep(FLATTEN_POLL_S)

    # -- state and status -----------------------------------------------------------------------------------------

    def commit(self) -> None:
        """Stage what only changes in memory (risk, cash, the paper book) and write it all in one transaction."""
        store = self.store
        risk_ts = self.risk.last_ts
        if self._risk_fed and risk_ts is not None:
            store.stage_risk_json(risk_ts, self.risk.snapshot_json())
        store.stage_meta("cash", self.ledger.cash)
        store.stage_meta("trade_count", self.ledger.trade_count)
        store.stage_meta(META_PEAK, self.watermark.peak)
        store.stage_meta(META_MAX_DRAWDOWN, self.watermark.max_drawdown_pct)
        if isinstance(self.exchange, PaperExchange):
            changes = self.exchange.drain_changes()
            if changes:
                store.stage_paper_book(changes)
            store.stage_meta("paper_last_close", self.exchange.last_closes())
        store.commit()
        self._staged = 0
        self._last_commit = self.clock()

    def tick(self) -> None:
        """The feed has no candle waiting (pacing, a quiet live feed): a restarted loop that has replayed up to
        what the feed had reconciles now instead of with the next new candle; show the loop is alive."""
        if self._started and not self._reconciled and not self._finished and self.halt_reason is None:
            self._reconcile()
        self._publish()

    def _phase(self) -> Phase:
        if self.halt_reason is not None:
            return Phase.HALTED
        if self._finished:
            return Phase.FINISHED
        if not self._reconciled:
            return self.phase
        if self._risk_fed and self._must_flatten:
            return Phase.HALTED
        if not all(self.gaps.is_warm(s) for s in self.settings.symbols):
            return Phase.WARMING_UP
        return Phase.PAUSED if self.paused else Phase.RUNNING

    def _snapshot(self) -> RuntimeStatus:
        phase = self._phase()
        ledger, settings = self.ledger, self.settings
        equity = ledger.equity()
        idle = describe_idle(
            phase,
            halt_reason=self.halt_reason,
            flatten_message=self.risk.halt_message() if phase is Phase.HALTED else None,
            finish_note=self._finish_note,
            replayed=self.replayed,
            warming=[(s, self.gaps.candles_since_gap(s)) for s in settings.symbols if not self.gaps.is_warm(s)],
            warmup_candles=settings.warmup_candles,
            refusals=self.refusals.idle_message(),
        )
        return RuntimeStatus(
            name=settings.name,
            phase=phase,
            equity=equity,
            cash=ledger.cash,
            open_positions=ledger.open_positions(),
            trade_count=ledger.trade_count,
            orders_total=len(self.orders.orders),
            last_candle_ts=self._last_ts,
            heartbeat=self.clock(),
            paused=self.paused,
            ready=self._reconciled and self._ever_warm and self.halt_reason is None,
            error=self.halt_reason,
            **profit_figures(ledger, equity, self.starting_equity, self.watermark)._asdict(),
            idle_reason=None if idle is None else idle.reason,
            idle_message=None if idle is None else idle.message,
            **self.monitoring.status(),
        )

    def _risk_changed(self, ts: int, must_flatten: bool) -> None:
        """The risk manager's breaker levels or its flatten verdict moved at candle ``ts``: one line each."""
        risk = self.risk
        self._breaker_seen = risk.breaker_changes
        tripped = risk.tripped_breaker_levels()
        drawdown = risk.state().drawdown_percent
        for number, description in tripped.items():
            if number not in self._breakers:
                self.log.info("circuit breaker %s tripped: drawdown %.2f%% from the peak", description, drawdown)
        for number, description in self._breakers.items():
            if number not in tripped:
                self.log.info(
                    "circuit breaker level %d released at %s: drawdown %.2f%% (was %s)",
                    number,
                    utc_minute(ts),
                    drawdown,
                    description,
                )
        self._breakers = tripped
        if must_flatten != self._must_flatten:
            if must_flatten:
                self.log.warning("%s", risk.halt_message() or "the risk policy flattens every position")
            else:
                self.log.info("the risk halt is over at %s: entries are allowed again", utc_minute(ts))

    def _publish(self) -> None:
        previous = self.status.phase
        self.status = self._snapshot()
        self._published_at = self.status.heartbeat
        if self.metrics is not None:
            self.metrics.heartbeat.set(self.status.heartbeat)
            if self.status.phase != previous or not self._phase_shown:
                self.metrics.set_phase(str(self.status.phase))
                self._phase_shown = True

    def _observe(self, candle: Candle, elapsed: float, equity: float) -> None:
        metrics = self.metrics
        assert metrics is not None
        metrics.candles.labels(candle.symbol).inc()
        metrics.decision_latency.observe(elapsed)
        metrics.equity.set(equity)
        metrics.cash.set(self.ledger.cash)
        metrics.position.labels(candle.symbol).set(self.ledger.quantity(candle.symbol))
        metrics.last_candle.set(candle.ts / 1000)
        if self.orders.version != self._orders_seen:
            self._orders_seen = self.orders.version
            for status, count in self.orders.status_counts().items():
                metrics.orders.labels(status).set(count)

    def _on_fill(self, fill: Fill) -> None:
        if self.metrics is not None:
            self.metrics.fills.labels(fill.symbol, str(fill.side)).inc()

    def _on_submit(self, request: OrderRequest) -> None:
        if self.metrics is not None:
            self.metrics.order_submissions.inc()


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)
