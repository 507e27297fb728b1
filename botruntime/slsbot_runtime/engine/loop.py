"""``TradingLoop``: everything that happens to one candle, in order.

Per candle (see docs/concepts/runtime-loop.md):

1. gap and warmup bookkeeping;
2. ``exchange.on_candle`` (the paper exchange matches resting orders here), fills booked once;
3. unfinished orders of the symbol refreshed from the exchange;
4. features and the ensemble decision;
5. the risk manager's ``on_candle``, then the plan (cancel, exit, or an entry sized by ``evaluate``);
6. new intents staged as pending, the candle's cursor and equity staged, then, if there is anything to
   send, the whole state committed *before* the orders go out;
7. a commit every ``commit_every_candles`` candles or ``commit_interval_s`` seconds otherwise; metrics.

What a commit writes is the state store's ``Durability``: a runtime's store writes each one; a backtest's store
(``Durability.NONE``) writes nothing at all and keeps what was staged for the backtest to read: the same loop
without the transactions.

Candles at or before the stored cursor are only replayed: the gap tracker and the deciders see them (features and
strategies rebuild themselves), nothing is sent and nothing is booked.

Beside the candle, each concern has its collaborator: ``Restart`` (load the state file, commit, reconcile with
the exchange before the first new candle), ``Shutdown`` (cancel, flatten, persist), ``StatusPublisher`` (the
``/status`` snapshot, the idle reason, the phase metric) and ``RiskWatch`` (breaker log lines). They share
``LoopState``; a book kept in the process (the paper exchange's) reaches them through the exchange's
``BookPersistence`` capability, so nothing here asks which exchange it holds.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping

from slsbot.api.account import VaultRotation
from slsbot.api.health import TradingMode
from slsbot_runtime.data.gaps import GapTracker
from slsbot_runtime.domain.errors import (
    ConfigError,
    ExchangeError,
    ExchangeUnavailable,
    StateError,
    TemporaryExchangeError,
)
from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.domain.types import QUANTITY_EPSILON, Candle, Fill, OrderRequest, Side
from slsbot_runtime.engine.health import HealthRecorder, SignalConfidence, redact
from slsbot_runtime.engine.key_rotation import CredentialSource, KeyRotation, SecretVersionLike
from slsbot_runtime.engine.loop_state import LoopState
from slsbot_runtime.engine.monitoring import MonitoringView
from slsbot_runtime.engine.planning import (
    CancelOrder,
    ExitPosition,
    ProposeEntry,
    WorkingOrder,
    plan_symbol,
    target_sign,
)
from slsbot_runtime.engine.refusals import EntryRefusals
from slsbot_runtime.engine.restart import Restart
from slsbot_runtime.engine.risk_record import RiskDecisionRecorder
from slsbot_runtime.engine.risk_watch import RiskWatch
from slsbot_runtime.engine.settings import LoopSettings
from slsbot_runtime.engine.shutdown import Shutdown
from slsbot_runtime.engine.signals import Decider, SymbolDecision
from slsbot_runtime.engine.status import RuntimeStatus
from slsbot_runtime.engine.status_publisher import PUBLISH_INTERVAL_S, ModelStatus, StatusPublisher
from slsbot_runtime.engine.track_record import SignalTrackRecord
from slsbot_runtime.engine.trading_guard import TradingModeGuard
from slsbot_runtime.exchange.base import Exchange, RotatableKeys
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.execution.reconcile import ReconcileReport
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.base import RiskAction, TradeProposal
from slsbot_runtime.risk.headroom import Headroom, HeadroomLimits
from slsbot_runtime.risk.manager import RiskManager

__all__ = ["LoopSettings", "TradingLoop"]

log = logging.getLogger(__name__)

_REJECTED = RiskAction.REJECTED  # read once: Python 3.11 reads an enum member through a Python-level hook
_NORMAL, _HALTED = TradingMode.NORMAL, TradingMode.HALTED


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
        models: ModelStatus | None = None,
    ) -> None:
        missing = [s for s in settings.symbols if s not in deciders]
        if missing:
            raise ValueError(f"no decider for {', '.join(missing)}")
        self.settings = settings
        self.exchange = exchange
        self.store = store
        self.deciders = dict(deciders)
        self.metrics = metrics
        self.models = models  # the signal models' status for /status (the deciders drive them)
        self.log = StrategyLog(log, settings.strategy_key)
        self.risk_decisions = RiskDecisionRecorder(store, metrics)
        self.monitoring = MonitoringView(self.deciders.values(), metrics, models=models)
        self.refusals = EntryRefusals(self.log, clock)
        self.ledger = Ledger(cash=settings.starting_cash, quote_currency=settings.quote_currency)
        #: The health counters (orders, fills, reconciliation here; data and the exchange from the runtime process).
        self.health = HealthRecorder(metrics=metrics, clock=clock)
        self.confidence = SignalConfidence()  # of the signals that set a target (the health block's)
        self.orders = OrderManager(
            exchange=exchange,
            store=store,
            ledger=self.ledger,
            strategy_key=settings.strategy_key,
            on_fill=self._on_fill,
            commit=self.commit,
            on_submit=self._on_submit,
            on_outcome=self._on_outcome,
            on_unknown=self._on_mismatch,
            on_exchange_error=self.health.exchange_error,
        )
        self.gaps = GapTracker(interval_ms=settings.interval_ms, warmup_candles=settings.warmup_candles)
        self.records = {s: SignalTrackRecord(settings.round_trip_cost) for s in settings.symbols}
        #: Symbols whose decider may score anomalies (``Decider.scores_anomalies``): only their scores, None included,
        #: go to the risk manager's anomaly rule (the others never have one to give).
        self._scored = frozenset(s for s, d in self.deciders.items() if getattr(d, "scores_anomalies", True))
        #: Candles opened before this (ms) are processed but not traded: a live feed catching up on history.
        self.trade_from_ts: int | None = None
        self._orders_seen = -1
        self.state = state = LoopState(starting_equity=settings.starting_cash, paused=settings.paused)
        book = exchange.book_persistence()
        self.risk_watch = RiskWatch(risk, self.log)
        self.publisher = StatusPublisher(
            name=settings.name,
            symbols=settings.symbols,
            warmup_candles=settings.warmup_candles,
            state=state,
            ledger=self.ledger,
            orders=self.orders,
            gaps=self.gaps,
            risk=risk,
            refusals=self.refusals,
            metrics=metrics,
            clock=clock,
            monitoring=self.monitoring,
            models=models,
        )
        self.restart = Restart(
            settings,
            state=state,
            store=store,
            book=book,
            ledger=self.ledger,
            orders=self.orders,
            risk=risk,
            risk_watch=self.risk_watch,
            refusals=self.refusals,
            publisher=self.publisher,
            log=self.log,
            clock=clock,
        )
        self._shutdown = Shutdown(
            settings,
            state=state,
            restart=self.restart,
            book=book,
            ledger=self.ledger,
            orders=self.orders,
            cancel=self._cancel,
            refusals=self.refusals,
            publisher=self.publisher,
            log=self.log,
            clock=clock,
            sleep=sleep,
        )
        self.restart.on_reconciled = self._on_reconciled
        self.restart.on_exchange_error = self.health.exchange_error
        self.restart.on_exchange_ok = self.health.exchange_ok
        self.modes = TradingModeGuard(
            settings,
            state=state,
            store=store,
            orders=self.orders,
            ledger=self.ledger,
            book=book,
            commit=self.commit,
            cancel=self._cancel,
            log=self.log,
            metrics=metrics,
            clock=clock,
        )
        self.publisher.modes = self.modes
        #: The exchange key's rotation from Vault (``attach_key_rotation``); None for keys from files.
        self.rotation: KeyRotation | None = None
        self._risk = risk
        self._clock = clock

    # -- what the runtime and the tests read, and may swap before start ------------------------------------------

    @property
    def risk(self) -> RiskManager:
        return self._risk

    @risk.setter
    def risk(self, risk: RiskManager) -> None:
        self._risk = self.risk_watch.risk = self.publisher.risk = self.restart.risk = risk

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._clock = self.publisher.clock = self.restart.clock = self._shutdown.clock = self.modes.clock = clock
        self.health.clock = clock

    @property
    def status(self) -> RuntimeStatus:
        """The last published snapshot (what ``/status`` serves)."""
        return self.publisher.status

    @property
    def paused(self) -> bool:
        return self.state.paused

    @property
    def halt_reason(self) -> str | None:
        return self.state.halt_reason

    @property
    def processed(self) -> int:
        return self.state.processed

    @property
    def replayed(self) -> int:
        return self.state.replayed

    @property
    def reconcile_report(self) -> ReconcileReport | None:
        return self.restart.report

    # -- life cycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the stored state; the next candles up to the cursor are replayed, then reconciled."""
        self.restart.load()
        self.modes.load(self.store.load_meta())
        self.publisher.publish()

    def run(self, candles: Iterable[Candle]) -> None:
        """Start, process every candle, finish: the whole loop in-process (backtests use this)."""
        self.start()
        process = self.process
        for candle in candles:
            process(candle)
        self.finish()

    def finish(self) -> None:
        """The feed ended: reconcile if no candle needed it yet, write everything (``Restart.flush``), phase
        ``finished``."""
        state = self.state
        if not state.reconciled:
            self.restart.reconcile()
        self.restart.flush()
        state.finished = True
        state.finish_note = f"the feed ended after {state.processed} candles: nothing more to trade"
        self.refusals.flush()
        self.publisher.publish()

    def halt(self, reason: str) -> None:
        """Stop trading for good (state that cannot be reconciled); the process keeps reporting. The reason is shown
        ``redact``-ed: it may quote an exchange's error, and the status is read by the control plane."""
        self.state.halt_reason = redact(reason)
        self.publisher.publish()

    def pause(self) -> None:
        self.state.paused = True
        self.publisher.publish()

    def resume(self) -> None:
        self.state.paused = False
        self.publisher.publish()

    def apply_headroom(self, headroom: Headroom | None, *, fill_deadline_s: float = 30.0) -> None:
        """Enforce the control plane's account or global headroom (``risk.headroom``) from the next entry on; its
        expiry is measured on this loop's wall clock. With its kill switch on: cancel every order and close every
        position now (``Shutdown.close_out``), and the risk manager keeps the books flat until a push lifts it."""
        risk = self._risk
        limits = None if headroom is None else HeadroomLimits.following(risk.headroom, headroom, self._clock)
        was_killed = risk.headroom is not None and risk.headroom.kill_switch
        risk.set_headroom(limits)
        if limits is not None and limits.kill_switch and not was_killed:
            reason = f"kill switch of the {headroom.scope} RiskPolicy {headroom.policy!r}"  # type: ignore[union-attr]
            self.log.warning("%s: cancelling every order and closing every position now", reason)
            if self._shutdown.close_out(reason, fill_deadline_s):
                self.state.must_flatten = self.state.risk_fed = True
        self.publisher.publish()

    def recheck_headroom(self) -> None:
        """The headroom's expiry has come: its kill switch and limits stop (the policy's own limits hold)."""
        self._risk.set_headroom(self._risk.headroom)
        self.publisher.publish()

    def beat(self) -> None:
        """Show the loop is alive while a candle waits on something slow of its own (a replay waiting for a model's
        retrain), without anything else ``tick`` does."""
        self.publisher.publish()

    def tick(self) -> None:
        """The feed has no candle waiting (pacing, a quiet live feed): a restarted loop that has replayed up to
        what the feed had reconciles now instead of with the next new candle, and is ready once warm; show the loop
        is alive."""
        state = self.state
        unreconciled = state.started and not state.reconciled and not state.finished and state.halt_reason is None
        if unreconciled and state.exchange_wait.due(self._clock()):
            # a temporary exchange error is recorded (state.exchange_wait, health, /status) and tried again once due
            with contextlib.suppress(TemporaryExchangeError):
                self.restart.reconcile()
        if state.reconciled and not state.ever_warm and state.last_ts is not None:
            # caught up with the feed (nothing waiting) and warm from what it replayed: ready now, not with the next
            # candle, an interval away (an hour on 1h) after a restart between two candles
            state.ever_warm = all(self.gaps.is_warm(s) for s in self.settings.symbols)
        if state.reconciled and not state.finished and not self.modes.current.settled:
            self.modes.settle()  # a halt asked before the reconciliation, or left half done by a restart
        rotation = self.rotation
        if rotation is not None and state.reconciled and not state.finished and state.halt_reason is None:
            rotation.tick()
        self.publisher.publish()

    def attach_key_rotation(
        self, source: CredentialSource, in_use: SecretVersionLike, settings: VaultRotation
    ) -> KeyRotation:
        """Rotate the exchange's key to each new version of the secret, between candles (``engine.key_rotation``)."""
        if not isinstance(self.exchange, RotatableKeys):
            raise ConfigError("account.vault: this exchange cannot switch keys while trading")
        self.rotation = KeyRotation(
            source=source,
            exchange=self.exchange,
            in_use=in_use,
            settings=settings,
            orders=self.orders,
            modes=self.modes,
            on_mismatch=self._on_mismatch,
            log=self.log,
            metrics=self.metrics,
        )
        return self.rotation

    def commit(self) -> None:
        """Write everything staged, and what only changes in memory, in one transaction, if the store writes its
        commits (``Restart.commit``)."""
        self.restart.commit()

    def shutdown(self, *, cancel_orders: bool, flatten: bool, fill_deadline_s: float = 30.0) -> None:
        """Cancel open orders, close every position at market when asked, persist (``Shutdown``)."""
        self._shutdown.shutdown(cancel_orders=cancel_orders, flatten=flatten, fill_deadline_s=fill_deadline_s)

    def _snapshot(self) -> RuntimeStatus:
        """The status as it is now, unpublished."""
        return self.publisher.snapshot()

    # -- one candle ---------------------------------------------------------------------------------------------

    def process(self, candle: Candle) -> bool:
        """Process one candle; False when it was only replayed (at or before the stored cursor).

        ``TemporaryExchangeError`` means the reconciliation before the first new candle could not reach the exchange
        (``engine.exchange_wait``): nothing of this candle was done, and it is to be passed again once ``tick`` has
        reconciled (it tries again when the backoff is over; until then this raises at once, without a call). No other
        temporary exchange error leaves this method: after the reconciliation each one is waited out where it
        happens (an unsent intent stays pending, an order not refreshed or its fills not fetched is looked at with
        the next candle)."""
        state = self.state
        symbol, ts, close = candle.symbol, candle.ts, candle.close
        cursor = state.cursor.get(symbol)
        if cursor is not None and ts <= cursor:
            self._replay(candle)
            return False
        if state.halt_reason is not None:
            raise StateError(f"trading is halted: {state.halt_reason}")
        if not state.reconciled:
            wait = state.exchange_wait
            if wait.waiting and not wait.due(self._clock()):
                raise ExchangeUnavailable(f"waiting for the exchange to reconcile: {wait.error}")
            self.restart.reconcile()
            self.modes.settle()  # a halt left half done by a restart
        gap = self.gaps.observe(candle)
        if gap is not None and self.metrics is not None:
            self.metrics.feed_gaps.labels(symbol).inc(gap.missing)
        orders, ledger = self.orders, self.ledger
        fills = self.exchange.on_candle(candle)
        if fills:
            orders.apply_fills(fills)
        if orders.unfinished_by_symbol.get(symbol):  # has_unfinished, without the call (every candle)
            orders.refresh(symbol)
        ledger.prices[symbol] = close  # ledger.mark, without the call
        metrics = self.metrics
        started = time.perf_counter() if metrics is not None else 0.0  # the decision latency metric's
        decision = self.deciders[symbol].decide(candle)
        equity = ledger.equity()
        state.watermark.observe(equity)
        risk = self._risk
        scores = {symbol: decision.anomaly_score} if symbol in self._scored else None
        must_flatten = risk.observe(ts, equity, {symbol: close}, scores)
        state.risk_fed = True
        if must_flatten != state.must_flatten or risk.breaker_changes != self.risk_watch.seen:
            self.risk_watch.changed(ts, must_flatten, state.must_flatten)
        state.must_flatten = must_flatten
        direction = decision.direction
        # no opinion (most candles): target_sign answers None for a direction of 0 (without a risk flatten)
        signal = (
            None if direction == 0.0 else target_sign(direction, long_only=self.settings.long_only, must_flatten=False)
        )
        flatten = must_flatten or risk.closes_positions  # allocation 0: close what is held
        if signal is not None or flatten or not state.ever_warm:  # else _trade would change nothing and plan nothing
            self._trade(candle, decision, flatten, signal)
        if signal is not None:  # a track record moves only with a target
            self.records[symbol].observe(signal, close)
            self.confidence.observe(decision.confidence)
        elapsed = time.perf_counter() - started if metrics is not None else 0.0
        self.store.stage_candle(ts, symbol, equity, ledger.cash)
        state.cursor[symbol] = ts
        state.last_ts = ts
        state.staged += 1
        state.processed += 1
        now = self._clock()
        if orders.unsent:  # an intent waits to be sent (OrderManager.has_unsent)
            orders.send_pending()
            self.commit()  # the exchange's answers (ids, statuses) on disk now, not with a later candle
        elif state.staged >= self.settings.commit_every_candles or now - state.last_commit >= (
            self.settings.commit_interval_s
        ):
            self.commit()
        if metrics is not None:
            self._observe(candle, elapsed, equity)
        if now - self.publisher.published_at >= PUBLISH_INTERVAL_S:
            self.publisher.publish()
        return True

    def _replay(self, candle: Candle) -> None:
        self.gaps.observe(candle)
        self.ledger.mark(candle.symbol, candle.close)
        decision = self.deciders[candle.symbol].decide(candle)
        self._follow_signal(candle, decision)
        state = self.state
        state.last_ts = candle.ts
        state.replayed += 1
        if self.metrics is not None:
            self.metrics.candles_replayed.inc()
        if state.replayed % 1024 == 0:
            self.publisher.publish()

    def _trade(self, candle: Candle, decision: SymbolDecision, must_flatten: bool, signal: int | None) -> None:
        """Plan and act on one candle; ``signal`` is ``target_sign`` of the decision (None: no opinion)."""
        symbol = candle.symbol
        if self.trade_from_ts is not None and candle.ts < self.trade_from_ts:
            return
        warm = self.gaps.is_warm(symbol)
        state = self.state
        if warm and not state.ever_warm:
            state.ever_warm = all(self.gaps.is_warm(s) for s in self.settings.symbols)
        if signal is None and not must_flatten:
            return  # no opinion and nothing to flatten: the plan keeps everything as it is (most candles)
        mode = self.modes.current.mode
        if mode is _HALTED:
            return  # halted: no orders at all
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
            entries_allowed=warm and not state.paused and mode is _NORMAL,
            rules=self.exchange.market_rules(symbol),  # a rest below one amount step is dust: flat
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
        if target is not None:  # as process does: a restart rebuilds the confidence figures from the replay
            self.confidence.observe(decision.confidence)

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
        verdict = self._risk.evaluate(proposal, self.ledger.snapshot(candle.ts))  # the attribute, not the property
        self.risk_decisions.record(candle.ts, proposal, verdict)
        if verdict.quantity > QUANTITY_EPSILON:
            order = self.orders.create_intent(
                candle.symbol,
                side,
                verdict.quantity,
                candle_ts=candle.ts,
                created_ts=candle.ts + self.settings.interval_ms,
                reason=reason,
            )
            self.health.expect(order.client_order_id, candle.close)

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
        verdict = self._risk.evaluate(proposal, self.ledger.snapshot(candle.ts))  # the attribute, not the property
        self.risk_decisions.record(candle.ts, proposal, verdict)
        if verdict.action == _REJECTED:
            self.refusals.refused(candle.symbol, candle.ts + self.settings.interval_ms, verdict.events)
            return
        if verdict.quantity > QUANTITY_EPSILON:
            if self.refusals.streaks:
                self.refusals.accepted(candle.symbol)
            driver = f" ({decision.driver})" if decision.driver else ""
            order = self.orders.create_intent(
                candle.symbol,
                side,
                verdict.quantity,
                candle_ts=candle.ts,
                created_ts=candle.ts + self.settings.interval_ms,
                reason=reason + driver,
            )
            self.health.expect(order.client_order_id, candle.close)

    def _cancel(self, client_order_id: str, ts: int) -> None:
        order = self.orders.orders[client_order_id]
        try:
            self.orders.cancel(order, ts=ts)
        except ExchangeError as error:
            self.health.exchange_error(error)
            self.log.warning("cancel of %s failed, will retry next candle: %s", client_order_id, error)

    # -- metrics ----------------------------------------------------------------------------------------------

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
        order = self.orders.orders.get(fill.client_order_id)
        done = order is None or order.status.is_terminal
        self.health.fill(fill.client_order_id, fill.side, fill.price, done=done)

    # -- health and the trading mode ---------------------------------------------------------------------------

    def set_trading_mode(self, mode: TradingMode, *, reason: str | None, flatten: bool) -> None:
        """The control plane's ``POST /trading-mode``: persisted, then in force (``TradingModeGuard.set``)."""
        self.modes.set(mode, reason=reason, flatten=flatten)
        self.publisher.publish()

    def _on_outcome(self, outcome: str, error: Exception | None) -> None:
        streak = self.health.order_outcome(outcome, error)
        limit = self.settings.reject_limit
        if streak >= limit and self.modes.go_safe(
            f"{streak} orders in a row rejected or failed (healing.rejectLimit {limit}); last: "
            f"{'none' if error is None else type(error).__name__}"
        ):
            self.publisher.publish()

    def _on_mismatch(self, problem: str) -> None:
        problem = redact(problem)
        self.health.reconcile_problem(problem)
        if self.modes.go_safe(f"the books disagree with the exchange: {problem[:160]}"):
            self.publisher.publish()

    def _on_reconciled(self, problem: str | None) -> None:
        if problem is None:
            self.health.reconcile_ok()
        else:
            self._on_mismatch(problem)

    def _on_submit(self, request: OrderRequest) -> None:
        if self.metrics is not None:
            self.metrics.order_submissions.inc()


def _unit(value: float) -> float:
    value = 0.0 if value < 0.0 else value  # min(max(value, 0.0), 1.0) without the builtins' calls
    return 1.0 if value > 1.0 else value
