"""``RuntimeProcess``: the loop thread of a running runtime, its pacing and the commands the HTTP server
passes to it.

The thread first *connects* (``app.connect_runtime``: the exchange, its clock, the balances, the feed). On a
live feed a failure there does not end the process: the error is shown in ``/status`` (phase ``halted`` for
a permanent one such as wrong credentials, ``starting`` for a temporary one) and in the log, and connecting
is tried again with a growing pause (2 s up to 5 min), so an exchange outage or a Secret rotated in place is
survived without a restart. Then the loop runs until the feed ends, a shutdown or a stop signal. A restarted
loop reconciles with the exchange before its first new candle: when the exchange fails temporarily then, the candle
is held and the reconciliation tried again with a growing pause (``engine.exchange_wait``; ``/status``:
``reconciling``, ``WaitingForExchange``), never a halt; only a state that disagrees with the exchange, or a
permanent error, halts trading.

A shutdown that cancels orders or flattens positions is a *drain*: once the loop did it, the drain marker is
written into the state file (``drained``) and the process stays up, trading nothing, serving ``/status`` with phase
``drained`` until it is stopped (under ``--until-end`` it exits instead). A process started on a drained state
file (``drained=``) never connects: it serves that status from the start. A shutdown asking for neither is a
plain stop: state flushed, exit 0, no marker.

A headroom (``POST /headroom``, ``risk.headroom``) is handled as an allocation: written to the state file (meta key
``headroom``) by the loop thread before it is answered, in force from then on and after a restart; its kill switch
cancels and flattens before the answer.

Commands from the HTTP threads (pause, resume, shutdown, allocation, headroom) go through one queue that the loop thread
empties between candles, so a change takes effect at the next candle and never in the middle of one. An allocation
(``POST /allocation``) is written to the state file by the loop thread before the request is answered; if the loop
does not take it within the timeout, it is withdrawn and nothing changes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from slsbot.api.health import TradingMode
from slsbot_runtime.activity import activity_json
from slsbot_runtime.allocation import META_KEY as ALLOCATION_KEY
from slsbot_runtime.allocation import Allocation
from slsbot_runtime.domain.errors import (
    ConfigError,
    DataError,
    ExchangeError,
    PermanentExchangeError,
    SlsbotRuntimeError,
    StateError,
    TemporaryExchangeError,
)
from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.domain.trading_mode import META_KEY as TRADING_MODE_KEY
from slsbot_runtime.domain.trading_mode import TradingModeState
from slsbot_runtime.domain.types import Candle, Order
from slsbot_runtime.drained import (
    DRAINED_PHASE,
    DrainedState,
    drained_from_status,
    drained_from_store,
    save_drained,
)
from slsbot_runtime.engine.health import Freshness, margin_used_percent, memory_usage, redact
from slsbot_runtime.engine.loop import TradingLoop
from slsbot_runtime.engine.status import Phase, RuntimeStatus
from slsbot_runtime.exchange.retry import RetryPolicy
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.performance import performance_json
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.headroom import META_KEY as HEADROOM_KEY
from slsbot_runtime.risk.headroom import Headroom

log = logging.getLogger(__name__)

IDLE_TICK_S = 0.1
COMMAND_TIMEOUT_S = 10.0  # how long an HTTP request waits for the loop thread to take its command
#: Pauses between attempts to connect a live runtime; only the delays are used (it never gives up).
CONNECT_RETRY = RetryPolicy(base_delay_s=2.0, max_delay_s=300.0)
EXIT_BAD_CONFIG = 2
DRAINED_REFUSAL = (
    "drained: this runtime cancelled its orders on POST /shutdown and trades no more; "
    "a new state file starts trading again"
)


@dataclass(slots=True)
class BuiltRuntime:
    loop: TradingLoop
    feed: Iterable[Candle]
    pace_s: float
    live_feed: bool
    store: StateStore
    #: The exchange's clock in ms (a live feed's), for the data's age; None in a replay.
    exchange_ms: Callable[[], int] | None = None


def waiting_status(name: str, *, error: str | None = None, permanent: bool = False) -> RuntimeStatus:
    """What ``/status`` shows before the loop exists: starting, or the error that keeps it from starting."""
    phase = Phase.HALTED if permanent else Phase.STARTING
    if permanent:
        idle = ("Halted", f"cannot start trading: {error}")
    else:
        idle = ("Starting", f"connecting, will try again: {error}" if error else "connecting to the exchange and feed")
    return RuntimeStatus(
        name=name,
        phase=phase,
        equity=0.0,
        cash=0.0,
        open_positions=0,
        trade_count=0,
        orders_total=0,
        last_candle_ts=None,
        heartbeat=time.time(),
        paused=False,
        ready=False,
        error=error,
        idle_reason=idle[0],
        idle_message=idle[1],
    )


class CommandReply:
    """The loop thread's answer to one command, or the command withdrawn when the loop did not take it in time
    (then it is never applied: the caller was told that nothing changed)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: SlsbotRuntimeError | None = None
        self._lock = threading.Lock()
        self._state = "waiting"  # -> taken (loop thread) or withdrawn (caller)

    def take(self) -> bool:
        """Loop thread: True when the command is to be applied now; False when its caller gave up."""
        with self._lock:
            if self._state == "withdrawn":
                return False
            self._state = "taken"
            return True

    def wait(self, what: str, timeout_s: float) -> Any:
        """The value, or StateError: not taken in time (withdrawn), dropped (drained), or its own error."""
        if not self.done.wait(timeout_s):
            with self._lock:
                if self._state == "waiting":
                    self._state = "withdrawn"
                    raise StateError(
                        f"{what}: the loop did not take it within {timeout_s:.0f}s; nothing changed, try again"
                    )
            if not self.done.wait(6 * timeout_s):  # taken: its commit is under way (SQLite waits 5 s for a lock)
                raise StateError(f"{what}: taken by the loop, but not done within {7 * timeout_s:.0f}s; see the log")
        if self.error is not None:
            raise self.error
        if self.value is None:
            raise StateError(f"{what}: not applied: {DRAINED_REFUSAL}")
        return self.value


class RuntimeProcess:
    """Implements the server's ``RuntimeControl``."""

    def __init__(
        self,
        connect: Callable[[], BuiltRuntime],
        *,
        name: str,
        state_path: str,
        until_end: bool,
        health_deadline_s: float,
        metrics: RuntimeMetrics | None = None,
        connect_retry: RetryPolicy = CONNECT_RETRY,
        store: StateStore | None = None,
        drained: DrainedState | None = None,
        strategy_key: str | None = None,
        allocation: Allocation | None = None,
        full_resolution_ms: int | None = None,
        trading_mode: TradingModeState | None = None,
        headroom: Headroom | None = None,
    ) -> None:
        self._connect = connect
        self.name = name
        self.log = StrategyLog(log, strategy_key or name)  # every line names the strategy
        self.state_path = state_path
        self.until_end = until_end
        self.health_deadline_s = health_deadline_s
        self.metrics = metrics
        self.connect_retry = connect_retry
        self.built: BuiltRuntime | None = None
        self.exit_code = 0
        #: The state file, for the drain marker when a shutdown comes before the loop exists.
        self.store = store
        self.drained = drained  # set once (at start, or by the loop thread after a drain); read by HTTP threads
        self._drain_asked = False  # a drain was done, even if its marker could not be written: never trade again
        self._waiting = waiting_status(name)
        self._feed_error: str | None = None  # a live feed's last error, until its next candle
        self._said_stopped = False
        self._paused_wish: bool | None = None
        #: The allocation in force: replaced (never changed) by the loop thread, read by HTTP threads.
        self.allocation = allocation or Allocation(100.0)
        self.full_resolution_ms = full_resolution_ms  # the equity retention's window, for /performance
        #: The trading mode the state file holds, shown until the loop exists (the loop loads it itself).
        self.stored_mode = trading_mode or TradingModeState()
        #: The account or global headroom last pushed (``POST /headroom``); replaced by the loop thread only.
        self.headroom = headroom
        self._headroom_timer: threading.Timer | None = None
        self._commands: queue.Queue[tuple[str, dict[str, Any], threading.Event]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slsbot-loop", daemon=True)

    @property
    def loop(self) -> TradingLoop:
        assert self.built is not None, "not connected yet"
        return self.built.loop

    # -- RuntimeControl, called from HTTP threads ---------------------------------------------------------

    def status(self) -> RuntimeStatus:
        built = self.built
        return self._waiting if built is None else built.loop.status

    def status_json(self) -> dict[str, Any]:
        """The ``/status`` body: the loop's snapshot with ``open_orders``, or a drained runtime's final figures."""
        drained = self.drained
        if drained is not None:
            return {
                **drained.status_json(self.name),
                "allocation": self.allocation.status_json(),
                "trading_mode": "halted",  # a drained runtime sends no order
                "trading_mode_reason": "drained",
                "health": None,
            }
        body = self.status().to_json()
        if self.built is None:
            body["trading_mode"] = str(self.stored_mode.mode)
            body["trading_mode_reason"] = self.stored_mode.reason
        body["allocation"] = self.allocation.status_json()
        headroom = self.headroom
        body["headroom"] = None if headroom is None else headroom.status_json(time.time())
        body["open_orders"] = self._open_orders()
        body["health"] = self._health(body)
        feed_error = self._feed_error
        if feed_error is not None and body["idle_reason"] not in ("Halted", "Finished"):
            body["idle_reason"] = "DataStale"
            body["idle_message"] = f"no new candle: the feed fails ({feed_error}); trying again"
        return body

    def readiness(self) -> tuple[bool, str]:
        """(ready, phase) for ``/readyz``. A drained runtime is ready: it serves its final status."""
        if self.drained is not None:
            return True, "drained"
        status = self.status()
        return status.ready, str(status.phase)

    def health(self) -> tuple[bool, str]:
        if not self._thread.is_alive():
            return False, "the loop thread is not running"
        if self.drained is not None:
            return True, "drained"
        if self.built is None:
            return True, "connecting"  # each attempt is bounded by the exchange client's timeouts
        age = time.time() - self.loop.status.heartbeat
        if age > self.health_deadline_s:
            # Stable text (no running count): the control plane turns it into one Event, counted, not one per probe.
            return False, f"the trading loop has not ticked within its {self.health_deadline_s:.0f}s deadline"
        return True, "ok"

    def recent_orders(self, limit: int) -> list[Order]:
        if self.state_path == ":memory:":
            raise StateError("orders: this runtime keeps no state file")
        store = StateStore.open(self.state_path, readonly=True)
        try:
            return store.load_orders(newest_first=True, limit=limit)
        finally:
            store.close()

    def set_paused(self, paused: bool) -> bool:
        if self.drained is not None:
            raise StateError(DRAINED_REFUSAL)
        self._send("pause" if paused else "resume", {})
        return self.loop.paused if self.built is not None else bool(self._paused_wish)

    def set_allocation(self, percent: float | None) -> dict[str, Any]:
        """Override the allocation (``None``: back to the spec's) from the next candle on; answered once the state
        file holds it. StateError when drained, when the loop does not take it in time, or the write fails."""
        return self._answered("allocation", lambda: self._change_allocation(percent))

    def set_trading_mode(self, mode: TradingMode, *, flatten: bool, reason: str | None) -> dict[str, Any]:
        """Put ``mode`` in force (``TradingModeGuard.set``); answered once the state file holds it. StateError when
        drained, when the loop does not take it in time, or the write fails (then nothing changed)."""
        return self._answered("trading mode", lambda: self._change_trading_mode(mode, flatten, reason))

    def set_headroom(self, headroom: Headroom) -> dict[str, Any]:
        """Enforce the control plane's account or global headroom from now on; answered once the state file holds
        it (and, with its kill switch, once orders are cancelled and positions closed). StateError when drained, when
        the loop does not take it in time, or the write fails: nothing changed then."""
        return self._answered("headroom", lambda: self._change_headroom(headroom))

    def _answered(self, what: str, change: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``change`` on the loop thread (``_apply``) and answer with what it returns, once it has written the
        state file. StateError when drained, when the loop does not take it in time, or ``change`` fails (then
        nothing changed)."""
        if self.drained is not None:
            raise StateError(DRAINED_REFUSAL)
        reply = CommandReply()
        self._commands.put((what, {"change": change, "reply": reply}, reply.done))
        answer: dict[str, Any] = reply.wait(what, COMMAND_TIMEOUT_S)
        return answer

    def performance(self, since: int) -> dict[str, Any]:
        """The ``/performance`` body (``performance.performance_json``) from what the state file holds."""
        if self.state_path == ":memory:":
            raise StateError("performance: this runtime keeps no state file")
        store = StateStore.open(self.state_path, readonly=True)
        try:
            return performance_json(store, self.allocation, since=since, full_resolution_ms=self.full_resolution_ms)
        finally:
            store.close()

    def activity(self, limit: int) -> dict[str, Any]:
        """The ``/activity`` body (``activity.activity_json``): equity curve, trades, risk decisions, breaker."""
        if self.state_path == ":memory:":
            raise StateError("activity: this runtime keeps no state file")
        store = StateStore.open(self.state_path, readonly=True)
        try:
            return activity_json(store, limit=limit)
        finally:
            store.close()

    def request_shutdown(self, *, cancel_orders: bool, flatten: bool) -> None:
        if self.drained is not None:
            self.log.info("shutdown requested again: already drained at %s", self.drained.drained_at)
            return
        self._commands.put(("shutdown", {"cancel_orders": cancel_orders, "flatten": flatten}, threading.Event()))

    def _open_orders(self) -> int | None:
        """Unfinished orders (pending ones included) of the running loop; None before it exists. Read from an
        HTTP thread while the loop thread may change them: a read that races a change is tried again."""
        built = self.built
        if built is None:
            return None
        loop = built.loop
        for _ in range(5):
            try:
                return sum(len(loop.orders.unfinished(symbol)) for symbol in loop.settings.symbols)
            except RuntimeError:  # "dictionary changed size during iteration"
                continue
        return None

    def _health(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The ``health`` block (``engine.health``); None before the loop exists."""
        built = self.built
        if built is None:
            return None
        loop = built.loop
        margin = None
        for _ in range(5):  # the loop thread may change the positions while this reads them
            try:
                positions = {symbol: row.quantity for symbol, row in loop.ledger.positions.items()}
                margin = margin_used_percent(
                    positions, dict(loop.ledger.prices), body["equity"], loop.risk.limits.max_leverage
                )
                break
            except RuntimeError:
                continue
        block = loop.health.block(
            symbols=loop.settings.symbols,
            status=body,
            confidence=loop.confidence,
            margin_used_percent=margin,
            memory=memory_usage(),
        )
        rotation = loop.rotation
        block["credentials"] = None if rotation is None else rotation.status_json()  # keys from Vault only
        return block

    def _send(self, command: str, args: dict[str, Any], timeout_s: float = 10.0) -> None:
        done = threading.Event()
        self._commands.put((command, args, done))
        if not done.wait(timeout_s):
            raise StateError(f"{command}: the loop did not take the command within {timeout_s:.0f}s")

    # -- life cycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current candle, flushing state (SIGTERM, SIGINT)."""
        self._stop.set()

    def wait(self) -> int:
        while self._thread.is_alive():
            self._thread.join(timeout=0.2)
        return self.exit_code

    # -- connecting ---------------------------------------------------------------------------------------------

    def _connect_until_done(self) -> BuiltRuntime | None:
        """The built runtime, or None when stopped (or the config is wrong) before it could be built."""
        failures = 0
        while not self._commands_say_stop():
            try:
                return self._connect()
            except ConfigError as error:
                self.log.error("invalid config: %s", error)
                self._waiting = waiting_status(self.name, error=f"ConfigError: {error}", permanent=True)
                self.exit_code = EXIT_BAD_CONFIG
                return None
            except (ExchangeError, DataError, StateError) as error:
                failures += 1
                delay = self.connect_retry.delay(failures)
                shown = f"{type(error).__name__}: {error}"
                self.log.error("could not start trading: %s; trying again in %.0fs", shown, delay)
                permanent = isinstance(error, PermanentExchangeError | StateError)
                self._waiting = waiting_status(self.name, error=shown, permanent=permanent)
                if self.until_end:
                    self.exit_code = 1
                    return None
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline and not self._commands_say_stop():
                    self._stop.wait(IDLE_TICK_S)
        return None

    # -- the loop thread ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        if self.drained is None:
            self._trade()
        if self.drained is None and not self._drain_asked:
            return
        if self.until_end:
            self.log.info("drained: nothing more to do under --until-end")
            return
        self._rest_drained()

    def _rest_drained(self) -> None:
        """Stay up, trading nothing, until a stop signal; commands that still arrive are answered and dropped."""
        self.log.info("drained: not trading; serving the final status until stopped")
        if self.metrics is not None:
            self.metrics.set_phase(DRAINED_PHASE)
        while not self._stop.is_set():
            while True:
                try:
                    command, _args, done = self._commands.get_nowait()
                except queue.Empty:
                    break
                self.log.info("%s ignored: the runtime is drained", command)
                done.set()
            self._stop.wait(IDLE_TICK_S)

    def _trade(self) -> None:
        built = self._connect_until_done()
        if built is None:
            return
        self.built = built
        loop = built.loop
        loop.health.freshness = self._freshness(built)
        try:
            loop.start()
            self._take_up_allocation()
            if self._paused_wish is not None:
                loop.pause() if self._paused_wish else loop.resume()
            last_ts = None
            health = loop.health
            for candle in self._candles():
                if self._commands_say_stop():
                    return
                health.candle(candle.symbol, candle.ts)
                processed = self._process(candle)
                if processed is None:
                    return
                if processed and built.pace_s > 0 and candle.ts != last_ts:
                    last_ts = candle.ts
                    if self._wait(built.pace_s):
                        return
            if self._stop.is_set():
                loop.commit()
                return
            loop.finish()
            self.log.info("the feed ended after %d candles (%d replayed)", loop.processed, loop.replayed)
            if not self.until_end:
                self._idle()
        except (StateError, DataError, ExchangeError) as error:
            self.log.error("trading halted: %s", redact(str(error)))
            if loop.halt_reason is None:
                loop.halt(str(error))
            self._safe_commit()
            if self.until_end:
                self.exit_code = 1
            else:
                self._idle()
        except Exception:
            self.log.exception("the trading loop failed")
            self._safe_commit()
            self.exit_code = 1

    def _process(self, candle: Candle) -> bool | None:
        """``loop.process(candle)``. While the reconciliation before it waits for an exchange that fails temporarily
        (``engine.exchange_wait``), the candle is held, commands are taken and the loop ticks (``tick`` tries the
        reconciliation again once its backoff is over) until the books are reconciled; then the candle is passed
        again. None when stopped meanwhile. A state that disagrees with the exchange still raises ``StateError``."""
        loop = self.loop
        while True:
            try:
                return loop.process(candle)
            except TemporaryExchangeError:
                if loop.state.reconciled:  # the loop's contract: only the reconciliation lets one out
                    raise
            while not loop.state.reconciled:
                if self._commands_say_stop():
                    return None
                self._stop.wait(IDLE_TICK_S)
                loop.tick()

    def _freshness(self, built: BuiltRuntime) -> Freshness:
        """Data age on the exchange's clock (live), the wall clock (paced replay), or not at all (unpaced)."""
        settings = built.loop.settings
        stale_after, at_least = settings.stale_after_candles, settings.stale_after_min_s
        if built.live_feed and built.exchange_ms is not None:
            return Freshness("exchange", settings.interval_ms / 1000.0, stale_after, built.exchange_ms, at_least)
        if built.pace_s > 0:
            return Freshness("wall", built.pace_s, stale_after, min_stale_s=at_least)
        return Freshness(None, 0.0, stale_after, min_stale_s=at_least)

    def _candles(self) -> Iterator[Candle]:
        assert self.built is not None
        if not self.built.live_feed:
            return iter(self.built.feed)
        return self._live_candles()

    def _live_candles(self) -> Iterator[Candle]:
        """Candles from a producer thread, so the loop ticks, takes commands and stops while the feed waits."""
        assert self.built is not None
        feed = self.built.feed
        items: queue.Queue[Candle | SlsbotRuntimeError] = queue.Queue(maxsize=10_000)

        def produce() -> None:
            failures = 0
            while not (self._stop.is_set() or self._drain_asked):
                try:
                    for candle in feed:
                        items.put(candle)
                        failures = 0
                        if self._stop.is_set() or self._drain_asked:
                            return
                    return
                except (DataError, ExchangeError) as error:
                    failures += 1
                    items.put(error)
                    self._stop.wait(min(60.0, 2.0**failures))

        threading.Thread(target=produce, name="slsbot-feed", daemon=True).start()
        while not self._stop.is_set():
            try:
                item = items.get(timeout=IDLE_TICK_S)
            except queue.Empty:
                self.loop.tick()
                if self._commands_say_stop():
                    return
                continue
            if isinstance(item, SlsbotRuntimeError):
                # the feed told the health block of each failed call already; a stale feed is no exchange error
                self.log.warning("feed: %s", item)
                self._feed_error = f"{type(item).__name__}: {item}"
                if self.metrics is not None:
                    self.metrics.feed_stale.set(1)
                continue
            self._feed_error = None
            if self.metrics is not None:
                self.metrics.feed_stale.set(0)
            yield item
            if items.empty():  # caught up: write what the candles did (order answers among it) now, not an
                self.loop.commit()  # interval later with the next candle

    def _wait(self, seconds: float) -> bool:
        """Pace; True when the loop must end (stop or shutdown)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._commands_say_stop():
                return True
            self._stop.wait(min(IDLE_TICK_S, remaining))
            self.loop.tick()
        return self._commands_say_stop()

    def _idle(self) -> None:
        while not self._commands_say_stop():
            self._stop.wait(IDLE_TICK_S)
            self.loop.tick()

    def _commands_say_stop(self) -> bool:
        """Apply queued commands; True when the loop must end (a shutdown was done, or a stop signal)."""
        while True:
            try:
                command, args, done = self._commands.get_nowait()
            except queue.Empty:
                break
            try:
                if self._apply(command, args):
                    return True
            finally:
                done.set()
        if self._stop.is_set():
            self._safe_commit()
            self._say_stopped()
            return True
        return self._drain_asked

    def _say_stopped(self) -> None:
        """One log line when a stop signal ends the loop: what it leaves open (kept for the next start)."""
        if self._said_stopped:
            return
        self._said_stopped = True
        built = self.built
        if built is None:
            self.log.info("stopped before trading started")
            return
        loop = built.loop
        loop.refusals.flush()
        self.log.info(
            "stopped after %d candles (%d replayed): state flushed; %d open orders and %d open positions kept, "
            "equity %.2f %s",
            loop.processed,
            loop.replayed,
            len(loop.orders.unfinished()),
            loop.ledger.open_positions(),
            loop.ledger.equity(),
            loop.settings.quote_currency,
        )

    def _apply(self, command: str, args: dict[str, Any]) -> bool:
        """One command; True after a shutdown. Before the loop exists a pause is remembered for it."""
        built = self.built
        if "change" in args:  # a change answered to its caller (``_answered``): allocation, trading mode, headroom
            reply: CommandReply = args["reply"]
            if reply.take():
                try:
                    reply.value = args["change"]()
                except StateError as error:
                    reply.error = error
            return False
        if command == "headroom_expiry":
            if built is not None:
                built.loop.recheck_headroom()
            return False
        if command in ("pause", "resume"):
            if built is None:
                self._paused_wish = command == "pause"
            elif command == "pause":
                built.loop.pause()
            else:
                built.loop.resume()
            return False
        if command == "shutdown":
            cancel_orders, flatten = args["cancel_orders"], args["flatten"]
            self.log.info("shutdown requested: cancelOrders=%s flatten=%s", cancel_orders, flatten)
            if built is None:
                self.log.info("shutdown before trading started: nothing to cancel or flatten")
            else:
                built.loop.shutdown(cancel_orders=cancel_orders, flatten=flatten)
            if cancel_orders or flatten:
                self._drain_asked = True
                self._mark_drained(cancel_orders=cancel_orders, flatten=flatten)
            else:
                self._stop.set()
            return True
        return False

    # -- allocation (loop thread) ------------------------------------------------------------------------------

    def _next_candle_ts(self, store: StateStore) -> int:
        """The open time from which a change applies: after every candle seen or stored."""
        built = self.built
        if built is None:
            seen = list(store.load_cursor().values())
        else:
            state = built.loop.state
            seen = [*state.cursor.values(), *([state.last_ts] if state.last_ts is not None else [])]
        return max(seen, default=-1) + 1

    def _change_allocation(self, override: float | None) -> dict[str, Any]:
        """Write the new allocation to the state file, then put it in force; StateError (nothing changed) when it
        cannot be written."""
        built = self.built
        store = built.store if built is not None else self.store
        if store is None:
            raise StateError("allocation: this runtime has no state file to keep the override in")
        before = self.allocation
        after = before.overridden(override, from_ts=self._next_candle_ts(store))
        store.stage_meta(ALLOCATION_KEY, after.meta_value())
        try:
            built.loop.commit() if built is not None else store.commit()
        except StateError:
            store.stage_meta(ALLOCATION_KEY, before.meta_value())  # not written: nothing may change later either
            raise
        self.allocation = after
        if built is not None:
            built.loop.risk.set_allocation(after.percent)
            built.loop.beat()  # /status shows it now
        self.log.info(
            "allocation %s%% of the account's capital (%s; the spec's is %s%%) from the next candle",
            f"{after.percent:g}",
            after.source,
            f"{after.spec_percent:g}",
        )
        answer: dict[str, Any] = after.answer_json()
        return answer

    def _change_trading_mode(self, mode: TradingMode, flatten: bool, reason: str | None) -> dict[str, Any]:
        """Loop thread: persist and apply the mode; before the loop exists, write it for the loop to load."""
        built = self.built
        if built is not None:
            built.loop.set_trading_mode(mode, reason=reason, flatten=flatten)
            current = built.loop.modes.current
        else:
            if self.store is None:
                raise StateError("trading mode: this runtime has no state file to keep it in")
            halted = mode is TradingMode.HALTED
            current = TradingModeState(mode, reason, flatten and halted, settled=not halted)
            self.store.stage_meta(TRADING_MODE_KEY, current.meta_value())
            self.store.commit()
            self.stored_mode = current
            self.log.info("trading mode %s (%s), in force once trading starts", mode, reason or "no reason given")
        return {"trading_mode": str(current.mode), "flatten": current.flatten}

    def _change_headroom(self, headroom: Headroom) -> dict[str, Any]:
        """Write the headroom to the state file, then enforce it; StateError (nothing changed) when it cannot be
        written."""
        built = self.built
        store = built.store if built is not None else self.store
        if store is None:
            raise StateError("headroom: this runtime has no state file to keep it in")
        before = self.headroom
        store.stage_meta(HEADROOM_KEY, headroom.to_json())
        try:
            built.loop.commit() if built is not None else store.commit()
        except StateError:
            store.stage_meta(HEADROOM_KEY, None if before is None else before.to_json())
            raise
        self.headroom = headroom
        if built is not None:
            built.loop.apply_headroom(headroom)
        self._watch_expiry(headroom)
        if before is None or before.to_json() | {"expires_at": None} != headroom.to_json() | {"expires_at": None}:
            self.log.info(
                "headroom from the %s RiskPolicy %s: total %s, symbols %s, halt_entries=%s, size x%s, kill_switch=%s "
                "(%s), until %s",
                headroom.scope,
                headroom.policy,
                headroom.total_exposure,
                dict(headroom.symbol_exposure),
                headroom.halt_entries,
                headroom.size_multiplier,
                headroom.kill_switch,
                headroom.reason,
                headroom.to_json()["expires_at"],
            )
        answer = headroom.status_json(time.time())
        if built is not None:
            answer["open_orders"] = len(built.loop.orders.unfinished())
            answer["open_positions"] = built.loop.ledger.open_positions()
            answer["phase"] = str(built.loop.status.phase)
        return answer

    def _watch_expiry(self, headroom: Headroom) -> None:
        """At ``expires_at`` the loop thread rechecks the headroom (its kill switch lapses: the policy's own limits,
        and its own killSwitch, hold). A timer, so that nothing is looked at per candle."""
        if self._headroom_timer is not None:
            self._headroom_timer.cancel()
        delay = max(headroom.expires_at.timestamp() - time.time(), 0.0) + 0.01
        timer = threading.Timer(delay, lambda: self._commands.put(("headroom_expiry", {}, threading.Event())))
        timer.daemon = True
        timer.start()
        self._headroom_timer = timer

    def _take_up_allocation(self) -> None:
        """At the start, before any new candle: the allocation in force (a stored override, else the spec's) goes
        to the risk manager; a spec changed since the last run starts a new period of the timeline."""
        built = self.built
        assert built is not None
        allocation = self.allocation.in_force_from(self._next_candle_ts(built.store))
        if allocation is not self.allocation:
            built.store.stage_meta(ALLOCATION_KEY, allocation.meta_value())  # written with the next commit
            self.allocation = allocation
        built.loop.risk.set_allocation(allocation.percent)
        if self.headroom is not None:  # the last push, kept in the state file: in force until it expires
            built.loop.apply_headroom(self.headroom)
            self._watch_expiry(self.headroom)
        built.loop.beat()

    def _mark_drained(self, *, cancel_orders: bool, flatten: bool) -> None:
        """Write the drain marker; from then on the runtime reports ``drained`` and never trades this state again.
        If it cannot be written, the runtime still trades no more (it rests until stopped) but keeps reporting its
        loop's phase (``finished``; the error is in the log): the control plane sees no completed drain and says
        so when it deletes the runtime."""
        built = self.built
        try:
            if built is not None:
                loop = built.loop
                drained = drained_from_status(
                    loop.status,
                    open_orders=len(loop.orders.unfinished()),
                    cancel_orders=cancel_orders,
                    flatten=flatten,
                )
                save_drained(built.store, drained)
            elif self.store is not None:
                drained = drained_from_store(self.store, cancel_orders=cancel_orders, flatten=flatten)
                save_drained(self.store, drained)
            else:
                self.log.error("drain: no state file to mark as drained")
                return
        except StateError as error:
            self.log.error("drain: could not write the drain marker: %s", error)
            return
        self.drained = drained
        self.log.info(
            "drained: %d open orders and %d open positions remain; the state file is marked drained",
            drained.open_orders,
            drained.open_positions,
        )

    def _safe_commit(self) -> None:
        if self.built is None:
            return
        try:
            self.built.loop.commit()
        except SlsbotRuntimeError as error:
            self.log.error("could not flush the state: %s", error)
