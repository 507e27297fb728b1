"""``StatusPublisher``: what the loop shows the outside world, rebuilt from its parts when asked.

``/status`` serves ``status``, the last published ``RuntimeStatus``: the phase (from ``LoopState``, the warmup and
the risk verdict), the account's figures (``profit``), and why no new trade is taken (``idle.describe_idle``). The
loop publishes at most every ``PUBLISH_INTERVAL_S`` while candles stream (``published_at`` says when it last did),
and at once when its life changes (start, reconciliation, pause, halt, finish, an idle tick). Publishing also sets
the heartbeat and phase metrics, and the risk manager's (drawdown and its limit, breaker level, kill switch).
Building a snapshot costs nothing that grows with the history.

A further concern of the status (the models' health, say) is one more part this class is given and asks in
``snapshot``, off the candle path; if it can keep the runtime from trading, it also gives ``describe_idle`` its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from slsbot_runtime.data.gaps import GapTracker
from slsbot_runtime.domain.trading_mode import TradingModeState
from slsbot_runtime.engine.exchange_wait import ExchangeWait
from slsbot_runtime.engine.exposure import account_figures
from slsbot_runtime.engine.idle import describe_idle
from slsbot_runtime.engine.loop_state import LoopState
from slsbot_runtime.engine.monitoring import MonitoringView
from slsbot_runtime.engine.profit import profit_figures
from slsbot_runtime.engine.refusals import EntryRefusals
from slsbot_runtime.engine.status import Phase, RuntimeStatus
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.risk.manager import RiskManager

PUBLISH_INTERVAL_S = 0.02  # the status snapshot is rebuilt at most this often while candles stream


class ModelStatus(Protocol):
    """What the status shows of the signal models (``ml.bank.ModelBank``): their states, and their drift (which
    ``MonitoringView`` shows beside the anomaly model's)."""

    def status(self) -> dict[str, dict[str, Any]]: ...

    def drift_status(self, refresh_ks: int = 1) -> dict[str, dict[str, Any]]: ...


class TradingModes(Protocol):
    """The trading mode in force (``engine.trading_guard.TradingModeGuard``)."""

    @property
    def current(self) -> TradingModeState: ...


class StatusPublisher:
    def __init__(
        self,
        *,
        name: str,
        symbols: tuple[str, ...],
        warmup_candles: int,
        state: LoopState,
        ledger: Ledger,
        orders: OrderManager,
        gaps: GapTracker,
        risk: RiskManager,
        refusals: EntryRefusals,
        metrics: RuntimeMetrics | None,
        clock: Callable[[], float],
        monitoring: MonitoringView | None = None,
        models: ModelStatus | None = None,
    ) -> None:
        self.name, self.symbols, self.warmup_candles = name, symbols, warmup_candles
        self.monitoring = monitoring  # anomaly scores and drift, when the strategy has monitoring models
        self.models = models  # the signal models' versions and states, when the strategy has signal models
        self.state = state
        self.ledger = ledger
        self.orders = orders
        self.gaps = gaps
        self.risk = risk
        self.refusals = refusals
        self.metrics = metrics
        self.clock = clock
        self.published_at = 0.0
        #: The trading mode in force (the loop's ``TradingModeGuard``), once the loop has one.
        self.modes: TradingModes | None = None
        self._phase_shown = False
        self.status = self.snapshot()

    def phase(self) -> Phase:
        state = self.state
        if state.halt_reason is not None:
            return Phase.HALTED
        if state.finished:
            return Phase.FINISHED
        if not state.reconciled:
            return state.startup_phase
        if state.risk_fed and state.must_flatten:
            return Phase.HALTED
        if not all(self.gaps.is_warm(s) for s in self.symbols):
            return Phase.WARMING_UP
        return Phase.PAUSED if state.paused else Phase.RUNNING

    def snapshot(self) -> RuntimeStatus:
        """The status as it is now (``status`` is the last published one)."""
        phase = self.phase()
        state, ledger, gaps = self.state, self.ledger, self.gaps
        equity = ledger.equity()
        mode = TradingModeState() if self.modes is None else self.modes.current
        idle = describe_idle(
            phase,
            halt_reason=state.halt_reason,
            flatten_message=self.risk.halt_message() if phase is Phase.HALTED else None,
            finish_note=state.finish_note,
            replayed=state.replayed,
            warming=[(s, gaps.candles_since_gap(s)) for s in self.symbols if not gaps.is_warm(s)],
            warmup_candles=self.warmup_candles,
            refusals=self.refusals.idle_message(),
            allocation_percent=self.risk.allocation_percent,
            trading_mode=str(mode.mode),
            trading_mode_reason=mode.reason,
            exchange_wait=_exchange_wait(state.exchange_wait),
        )
        risk = self.risk.state()
        return RuntimeStatus(
            name=self.name,
            phase=phase,
            equity=equity,
            cash=ledger.cash,
            open_positions=ledger.open_positions(),
            trade_count=ledger.trade_count,
            orders_total=len(self.orders.orders),
            last_candle_ts=state.last_ts,
            heartbeat=self.clock(),
            paused=state.paused,
            ready=state.reconciled and state.ever_warm and state.halt_reason is None,
            error=state.halt_reason,
            **profit_figures(ledger, equity, state.starting_equity, state.watermark)._asdict(),
            breaker_level=risk.breaker_level,
            breaker_action=risk.breaker_action,
            idle_reason=None if idle is None else idle.reason,
            idle_message=None if idle is None else idle.message,
            **(self.monitoring.status() if self.monitoring is not None else {}),
            models=None if self.models is None else self.models.status(),
            trading_mode=str(mode.mode),
            trading_mode_reason=mode.reason,
            **account_figures(ledger, self.orders, self.symbols, equity, self.risk.day_start_equity),
        )

    def publish(self) -> None:
        previous = self.status.phase
        self.status = self.snapshot()
        self.published_at = self.status.heartbeat
        if self.metrics is not None:
            self.metrics.heartbeat.set(self.status.heartbeat)
            if self.status.phase != previous or not self._phase_shown:
                self.metrics.set_phase(str(self.status.phase))
                self._phase_shown = True
            risk = self.risk
            state = risk.state()
            self.metrics.set_risk(
                drawdown_percent=state.drawdown_percent,
                limit_percent=risk.max_drawdown_percent,
                breaker_level=state.breaker_level,
                kill_switch=risk.kill_switch,
            )


def _exchange_wait(wait: ExchangeWait) -> str | None:
    """What the reconciliation waits for, in words (the idle message), or None."""
    if not wait.waiting:
        return None
    again = datetime.fromtimestamp(wait.retry_at, UTC).strftime("%H:%M:%S UTC")
    return f"{wait.error} ({wait.failures} attempts); trying again at {again}, nothing is sent meanwhile"
