"""``RuntimeProcess``: the loop thread of a running runtime, its pacing and the commands the HTTP server
passes to it.

The thread first *connects* (``app.connect_runtime``: the exchange, its clock, the balances, the feed). On a
live feed a failure there does not end the process: the error is shown in ``/status`` (phase ``halted`` for
a permanent one such as wrong credentials, ``starting`` for a temporary one) and in the log, and connecting
is tried again with a growing pause (2 s up to 5 min), so an exchange outage or a Secret rotated in place is
survived without a restart. Then the loop runs until the feed ends, a shutdown or a stop signal.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from slsbot_runtime.domain.errors import (
    ConfigError,
    DataError,
    ExchangeError,
    PermanentExchangeError,
    SlsbotRuntimeError,
    StateError,
)
from slsbot_runtime.domain.types import Candle, Order
from slsbot_runtime.engine.loop import TradingLoop
from slsbot_runtime.engine.status import Phase, RuntimeStatus
from slsbot_runtime.exchange.retry import RetryPolicy
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.persistence.store import StateStore

log = logging.getLogger(__name__)

IDLE_TICK_S = 0.1
#: Pauses between attempts to connect a live runtime; only the delays are used (it never gives up).
CONNECT_RETRY = RetryPolicy(base_delay_s=2.0, max_delay_s=300.0)
EXIT_BAD_CONFIG = 2


@dataclass(slots=True)
class BuiltRuntime:
    loop: TradingLoop
    feed: Iterable[Candle]
    pace_s: float
    live_feed: bool
    store: StateStore


def waiting_status(name: str, *, error: str | None = None, permanent: bool = False) -> RuntimeStatus:
    """What ``/status`` shows before the loop exists: starting, or the error that keeps it from starting."""
    phase = Phase.HALTED if permanent else Phase.STARTING
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
    )


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
    ) -> None:
        self._connect = connect
        self.name = name
        self.state_path = state_path
        self.until_end = until_end
        self.health_deadline_s = health_deadline_s
        self.metrics = metrics
        self.connect_retry = connect_retry
        self.built: BuiltRuntime | None = None
        self.exit_code = 0
        self._waiting = waiting_status(name)
        self._paused_wish: bool | None = None
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

    def health(self) -> tuple[bool, str]:
        if not self._thread.is_alive():
            return False, "the loop thread is not running"
        if self.built is None:
            return True, "connecting"  # each attempt is bounded by the exchange client's timeouts
        age = time.time() - self.loop.status.heartbeat
        if age > self.health_deadline_s:
            return False, f"the loop has not ticked for {age:.1f}s (deadline {self.health_deadline_s:.0f}s)"
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
        self._send("pause" if paused else "resume", {})
        return self.loop.paused if self.built is not None else bool(self._paused_wish)

    def request_shutdown(self, *, cancel_orders: bool, flatten: bool) -> None:
        self._commands.put(("shutdown", {"cancel_orders": cancel_orders, "flatten": flatten}, threading.Event()))

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
                log.error("invalid config: %s", error)
                self._waiting = waiting_status(self.name, error=f"ConfigError: {error}", permanent=True)
                self.exit_code = EXIT_BAD_CONFIG
                return None
            except (ExchangeError, DataError, StateError) as error:
                failures += 1
                delay = self.connect_retry.delay(failures)
                shown = f"{type(error).__name__}: {error}"
                log.error("could not start trading: %s; trying again in %.0fs", shown, delay)
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
        built = self._connect_until_done()
        if built is None:
            return
        self.built = built
        loop = built.loop
        try:
            loop.start()
            if self._paused_wish is not None:
                loop.pause() if self._paused_wish else loop.resume()
            last_ts = None
            for candle in self._candles():
                if self._commands_say_stop():
                    return
                if loop.process(candle) and built.pace_s > 0 and candle.ts != last_ts:
                    last_ts = candle.ts
                    if self._wait(built.pace_s):
                        return
            if self._stop.is_set():
                loop.commit()
                return
            loop.finish()
            log.info("the feed ended after %d candles (%d replayed)", loop.processed, loop.replayed)
            if not self.until_end:
                self._idle()
        except (StateError, DataError, ExchangeError) as error:
            log.error("trading halted: %s", error)
            if loop.halt_reason is None:
                loop.halt(str(error))
            self._safe_commit()
            if self.until_end:
                self.exit_code = 1
            else:
                self._idle()
        except Exception:
            log.exception("the trading loop failed")
            self._safe_commit()
            self.exit_code = 1

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
            while not self._stop.is_set():
                try:
                    for candle in feed:
                        items.put(candle)
                        failures = 0
                        if self._stop.is_set():
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
                log.warning("feed: %s", item)
                if self.metrics is not None:
                    self.metrics.feed_stale.set(1)
                continue
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
            return True
        return False

    def _apply(self, command: str, args: dict[str, Any]) -> bool:
        """One command; True after a shutdown. Before the loop exists a pause is remembered for it."""
        built = self.built
        if command in ("pause", "resume"):
            if built is None:
                self._paused_wish = command == "pause"
            elif command == "pause":
                built.loop.pause()
            else:
                built.loop.resume()
            return False
        if command == "shutdown":
            log.info("shutdown requested: cancelOrders=%s flatten=%s", args["cancel_orders"], args["flatten"])
            if built is None:
                log.info("shutdown before trading started: nothing to cancel or flatten")
            else:
                built.loop.shutdown(cancel_orders=args["cancel_orders"], flatten=args["flatten"])
            self._stop.set()
            return True
        return False

    def _safe_commit(self) -> None:
        if self.built is None:
            return
        try:
            self.built.loop.commit()
        except SlsbotRuntimeError as error:
            log.error("could not flush the state: %s", error)
