"""Process wiring: from a RuntimeConfig to a running loop thread, an HTTP server and clean exits.

``run_runtime`` is what ``slsbot runtime`` calls. It builds every piece from the config (read once, passed
down), starts the HTTP server and the loop thread, and returns the exit code: 0 after ``--until-end``, a
``/shutdown`` or SIGTERM/SIGINT (state flushed first), 1 when trading halted on an error under
``--until-end``. Building (``build_runtime``) is separate from running, so tests and the backtester can
build the same loop without threads.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from slsbot.api import TIMEFRAME_SECONDS, AccountMode, RuntimeConfig
from slsbot.api.strategy import DataSource, SizingMethod
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.domain.errors import ConfigError, DataError, ExchangeError, SlsbotRuntimeError, StateError
from slsbot_runtime.domain.types import Candle, Order
from slsbot_runtime.engine.loop import LoopSettings, TradingLoop
from slsbot_runtime.engine.signals import Decider, EnsembleDecider
from slsbot_runtime.engine.status import RuntimeStatus
from slsbot_runtime.exchange.base import Exchange
from slsbot_runtime.exchange.paper import PaperExchange, split_symbol
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.server import RuntimeServer

log = logging.getLogger(__name__)

IDLE_TICK_S = 0.1


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """Command-line overrides and process settings; ``None`` keeps the config's value."""

    state_path: str | None = None
    port: int | None = None
    until_end: bool = False
    default_data_dir: str | None = None  # when marketData.dataDir is unset
    health_deadline_s: float | None = None  # default: max(30 s, 3 x the pace)


@dataclass(slots=True)
class BuiltRuntime:
    loop: TradingLoop
    feed: Iterable[Candle]
    pace_s: float
    live_feed: bool
    store: StateStore


def interval_ms_of(config: RuntimeConfig) -> int:
    return TIMEFRAME_SECONDS[str(config.timeframe)] * 1000


def build_deciders(config: RuntimeConfig, *, metrics: RuntimeMetrics | None = None) -> dict[str, Decider]:
    """One decider per symbol: the feature values its members read, then the voting ensemble. A member that
    raises or returns nonsense counts as flat for that candle and is counted in ``strategy_errors``."""
    from slsbot_runtime.features.engine import FeatureEngine
    from slsbot_runtime.strategy.ensemble import Ensemble
    from slsbot_runtime.strategy.wrapper import ErrorHook

    on_error: ErrorHook | None = None
    if metrics is not None:
        counter = metrics.strategy_errors

        def on_error(member: str, error: Exception) -> None:
            counter.labels(member).inc()

    deciders: dict[str, Decider] = {}
    for symbol in config.symbols:
        ensemble = Ensemble(config.ensemble, on_error=on_error)
        names = ensemble.required_features
        features = FeatureEngine(names, field="ensemble.members[].params").incremental() if names else None
        deciders[symbol] = EnsembleDecider(ensemble, features)
    return deciders


def build_replay_feed(config: RuntimeConfig, default_data_dir: str | None) -> ReplayFeed:
    folder = config.market_data.data_dir or default_data_dir
    if folder is None:
        raise ConfigError(
            "marketData.dataDir: a replay needs the folder of recorded candles; set it, or pass "
            "--data-dir / SLSBOT_MARKET_DATA"
        )
    interval = interval_ms_of(config)
    histories = [
        load_history(Path(folder), symbol, str(config.timeframe), interval_ms=interval, start=config.market_data.start)
        for symbol in config.symbols
    ]
    return ReplayFeed(histories, interval_ms=interval, loop=config.market_data.loop)


def build_exchange(config: RuntimeConfig) -> Exchange:
    account = config.account
    if account.mode == AccountMode.PAPER:
        return PaperExchange(account.paper, interval_ms=interval_ms_of(config), allow_short=not config.long_only)
    from slsbot_runtime.exchange.ccxt_venues import open_ccxt_exchange
    from slsbot_runtime.exchange.credentials import load_credentials

    credentials = load_credentials(account.credentials_dir)
    return open_ccxt_exchange(account.exchange, credentials, testnet=account.mode == AccountMode.TESTNET)


def build_runtime(
    config: RuntimeConfig, options: RuntimeOptions, *, metrics: RuntimeMetrics | None = None
) -> BuiltRuntime:
    """Every piece of one runtime, not started."""
    if config.market_data.source == DataSource.REPLAY and config.account.mode != AccountMode.PAPER:
        raise ConfigError(f"marketData.source: a replay can only trade a paper account, not {config.account.mode}")
    quotes = {split_symbol(s)[1] for s in config.symbols}
    quote = config.account.paper.quote_currency if config.account.mode == AccountMode.PAPER else sorted(quotes)[0]
    if quotes != {quote}:
        raise ConfigError(
            f"symbols: every symbol must be quoted in {quote} (account.paper.quoteCurrency), "
            f"got {', '.join(sorted(quotes))}"
        )
    interval = interval_ms_of(config)
    store = StateStore.open(options.state_path or config.state.path)
    exchange = build_exchange(config)
    starting_cash = config.account.paper.starting_balance
    if config.account.mode != AccountMode.PAPER:
        balances = exchange.fetch_balances()
        starting_cash = balances[quote].free if quote in balances else 0.0
    replay = config.market_data.source == DataSource.REPLAY
    settings = LoopSettings(
        name=config.name,
        strategy_key=f"{config.namespace}/{config.name}",
        symbols=tuple(config.symbols),
        interval_ms=interval,
        warmup_candles=config.market_data.warmup_candles,
        starting_cash=starting_cash,
        quote_currency=quote,
        long_only=config.long_only,
        fixed_quantity=config.sizing.quantity if config.sizing.method == SizingMethod.FIXED_QUANTITY else None,
        paused=config.paused,
        round_trip_cost=2 * config.account.paper.fee_rate,
        commit_every_candles=1000 if replay and config.market_data.seconds_per_candle == 0 else 1,
    )
    loop = TradingLoop(
        settings,
        exchange=exchange,
        store=store,
        deciders=build_deciders(config),
        risk=RiskManager(config.risk, config.sizing, config.long_only),
        metrics=metrics,
    )
    if replay:
        feed: Iterable[Candle] = build_replay_feed(config, options.default_data_dir)
        pace = config.market_data.seconds_per_candle
    else:
        from slsbot_runtime.data.live import open_live_feed

        cursor = store.load_cursor()
        now_ms = int(time.time() * 1000)
        since = (min(cursor.values()) if cursor else now_ms) - (config.market_data.warmup_candles + 1) * interval
        feed = open_live_feed(
            config.account.exchange,
            config.symbols,
            str(config.timeframe),
            testnet=config.account.mode == AccountMode.TESTNET,
            since_ms=since,
        )
        loop.trade_from_ts = now_ms - 2 * interval
        pace = 0.0
    return BuiltRuntime(loop, feed, pace, not replay, store)


class RuntimeProcess:
    """The loop thread, its pacing and the commands the HTTP server passes to it."""

    def __init__(
        self, built: BuiltRuntime, *, until_end: bool, health_deadline_s: float, metrics: RuntimeMetrics | None = None
    ) -> None:
        self.built = built
        self.loop = built.loop
        self.until_end = until_end
        self.health_deadline_s = health_deadline_s
        self.metrics = metrics
        self.exit_code = 0
        self._commands: queue.Queue[tuple[str, dict[str, Any], threading.Event]] = queue.Queue()
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="slsbot-loop", daemon=True)

    # -- RuntimeControl, called from HTTP threads ---------------------------------------------------------

    def status(self) -> RuntimeStatus:
        return self.loop.status

    def health(self) -> tuple[bool, str]:
        if not self._thread.is_alive():
            return False, "the loop thread is not running"
        age = time.time() - self.loop.status.heartbeat
        if age > self.health_deadline_s:
            return False, f"the loop has not ticked for {age:.1f}s (deadline {self.health_deadline_s:.0f}s)"
        return True, "ok"

    def recent_orders(self, limit: int) -> list[Order]:
        path = self.built.store.path
        if path == ":memory:":
            raise StateError("orders: this runtime keeps no state file")
        store = StateStore.open(path, readonly=True)
        try:
            return store.load_orders(newest_first=True, limit=limit)
        finally:
            store.close()

    def set_paused(self, paused: bool) -> bool:
        self._send("pause" if paused else "resume", {})
        return self.loop.paused

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

    # -- the loop thread ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        loop = self.loop
        try:
            loop.start()
            last_ts = None
            for candle in self._candles():
                if self._commands_say_stop():
                    return
                if loop.process(candle) and self.built.pace_s > 0 and candle.ts != last_ts:
                    last_ts = candle.ts
                    if self._wait(self.built.pace_s):
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
        finally:
            self._done = True

    def _candles(self) -> Iterator[Candle]:
        if not self.built.live_feed:
            return iter(self.built.feed)
        return self._live_candles()

    def _live_candles(self) -> Iterator[Candle]:
        """Candles from a producer thread, so the loop ticks, takes commands and stops while the feed waits."""
        items: queue.Queue[Candle | SlsbotRuntimeError] = queue.Queue(maxsize=10_000)

        def produce() -> None:
            failures = 0
            while not self._stop.is_set():
                try:
                    for candle in self.built.feed:
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
                if command == "pause":
                    self.loop.pause()
                elif command == "resume":
                    self.loop.resume()
                elif command == "shutdown":
                    log.info("shutdown requested: cancelOrders=%s flatten=%s", args["cancel_orders"], args["flatten"])
                    self.loop.shutdown(cancel_orders=args["cancel_orders"], flatten=args["flatten"])
                    self._stop.set()
                    return True
            finally:
                done.set()
        if self._stop.is_set():
            self._safe_commit()
            return True
        return False

    def _safe_commit(self) -> None:
        try:
            self.loop.commit()
        except SlsbotRuntimeError as error:
            log.error("could not flush the state: %s", error)


def run_runtime(config: RuntimeConfig, options: RuntimeOptions) -> int:
    """Build, serve and run one runtime until the feed ends (``until_end``), a shutdown or a signal."""
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    built = build_runtime(config, options, metrics=metrics)
    pace = built.pace_s
    deadline = options.health_deadline_s or max(30.0, 3 * pace)
    process = RuntimeProcess(built, until_end=options.until_end, health_deadline_s=deadline, metrics=metrics)
    port = config.server.port if options.port is None else options.port
    server = RuntimeServer(process, registry, host=config.server.host, port=port)
    built.store.stage_meta("http_port", server.port)
    built.store.stage_meta("pid", os.getpid())
    built.store.commit()
    server.start()
    print(
        f"slsbot runtime {config.namespace}/{config.name} listening on http://{server.host}:{server.port}", flush=True
    )
    previous = {sig: signal.signal(sig, lambda *_: process.stop()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        process.start()
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
        built.store.close()
    return code
