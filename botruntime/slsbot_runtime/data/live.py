"""A live candle feed from an exchange through ccxt: only CLOSED candles, per symbol in order, never twice.

``LiveCandleFeed`` is an iterable of ``Candle``, like the replay feed. Each round it asks the exchange for the
candles after the last one it yielded (REST ``fetch_ohlcv``, or ccxt.pro ``watch_ohlcv`` when the exchange
has it and ccxt.pro is importable, with REST catching up first), keeps those that have closed, and yields
them in open-time order. A candle is closed when its interval has passed on the feed's clock; a streamed
candle also needs a newer candle to have arrived, since its last update may come just after the close.

Failures: temporary exchange errors are retried with backoff and jitter; when the retries run out the error
is raised. An ``observer`` (the runtime's ``HealthRecorder``) hears of every call, retried ones included: the
exchange counts as failing from the first call that failed, not from when the retries ran out. No new candle
for a symbol within ``stale_after_intervals`` intervals raises ``StaleDataError``.
Either way the feed keeps its place: iterating it again reconnects (after a backoff that grows with each
failure in a row) and resumes after the last candle it yielded, so the engine's loop is
``while True: try: for candle in feed: ... except DataError/ExchangeError: report Degraded``.

The clock is injectable (``now_ms()`` and ``sleep(seconds)``); the default is the real one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from slsbot_runtime.data.live_ccxt_stream import CcxtProStream, ccxt_pro_client_class
from slsbot_runtime.domain.errors import ConfigError, DataError, ExchangeError, StaleDataError
from slsbot_runtime.domain.timeframes import interval_ms, utc_minute
from slsbot_runtime.domain.types import Candle
from slsbot_runtime.exchange.ccxt_convert import candle_from_row
from slsbot_runtime.exchange.ccxt_exchange import build_ccxt_client
from slsbot_runtime.exchange.ccxt_venues import CCXT_EXCHANGES
from slsbot_runtime.exchange.errors_map import ccxt_boundary
from slsbot_runtime.exchange.retry import RetryPolicy, call_with_retries

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class OhlcvFetcher(Protocol):
    """What the feed needs of a REST client; a ccxt client is one."""

    def fetch_ohlcv(self, symbol: str, timeframe: str, since: int | None, limit: int | None) -> list[list[Any]]: ...


class CallObserver(Protocol):
    """Told of each exchange call's outcome (``engine.health.HealthRecorder`` is one)."""

    def exchange_ok(self) -> None: ...

    def exchange_error(self, error: BaseException) -> None: ...


class OhlcvStream(Protocol):
    """Pushed candle updates. ``updates`` waits up to ``timeout_s`` and returns the rows that changed, per
    symbol (the still-forming candle among them); it may raise ccxt errors."""

    def updates(self, timeout_s: float) -> dict[str, list[list[Any]]]: ...

    def reconnect(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LiveFeedSettings:
    stale_after_intervals: float = 3.0  # no new closed candle for this many intervals -> StaleDataError
    settle_s: float = 2.0  # wait this long after a close before asking (exchanges publish a little late)
    poll_interval_s: float = 10.0  # how often to ask again when an expected candle has not come yet
    fetch_limit: int = 500  # candles per REST request while catching up
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=6, base_delay_s=1.0, max_delay_s=60.0))
    #: Only its delays are used: the pause before iterating again after a failure, growing per failure.
    reconnect: RetryPolicy = field(default_factory=lambda: RetryPolicy(base_delay_s=2.0, max_delay_s=120.0))

    def __post_init__(self) -> None:
        if self.stale_after_intervals < 1:
            raise ConfigError(f"stale_after_intervals: must be at least 1, got {self.stale_after_intervals}")
        if self.poll_interval_s <= 0 or self.settle_s < 0:
            raise ConfigError("poll_interval_s must be positive and settle_s not negative")
        if not 1 <= self.fetch_limit <= 1000:
            raise ConfigError(f"fetch_limit: must be within 1..1000, got {self.fetch_limit}")


class LiveCandleFeed:
    """Closed candles of ``symbols`` from the exchange, from ``since_ms`` (the newest closed one if None)."""

    def __init__(
        self,
        rest: OhlcvFetcher,
        symbols: Sequence[str],
        timeframe: str,
        *,
        stream: OhlcvStream | None = None,
        since_ms: int | None = None,
        settings: LiveFeedSettings | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        exchange_id: str = "exchange",
        observer: CallObserver | None = None,
    ) -> None:
        if not symbols or len(set(symbols)) != len(symbols):
            raise ConfigError(f"symbols: need at least one symbol and no repeats, got {list(symbols)!r}")
        self.symbols = tuple(symbols)
        self.timeframe = timeframe
        self.interval_ms = interval_ms(timeframe)
        self.settings = settings or LiveFeedSettings()
        self._rest = rest
        self._stream = stream
        self._clock = clock or SystemClock()
        self._rng = rng
        self._exchange_id = exchange_id
        self.observer = observer
        self._since_ms = since_ms
        #: Open time of the newest candle fetched per symbol; those not yielded yet wait in ``_pending``.
        self.last_ts: dict[str, int | None] = dict.fromkeys(self.symbols)
        self._pending: deque[Candle] = deque()
        self._started_ms: int | None = None
        self._buffer: dict[str, dict[int, list[Any]]] = {s: {} for s in self.symbols}
        self._failures_in_a_row = 0
        self._stream_broken_until = 0

    # --- iteration ----------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Candle]:
        if self._failures_in_a_row:
            self._reconnect()
        if self._started_ms is None:
            self._started_ms = self._clock.now_ms()
        while True:
            while self._pending:  # popped before it is yielded: an abandoned iteration loses nothing
                yield self._pending.popleft()
            try:
                batch = self._next_batch()
            except (DataError, ExchangeError):
                self._failures_in_a_row += 1
                raise
            if batch:
                self._failures_in_a_row = 0
                self._pending.extend(batch)
            else:
                self._check_staleness()
                self._wait()

    def _next_batch(self) -> list[Candle]:
        """Every closed candle not yielded yet, oldest first (ties in the configured symbol order)."""
        if self._stream is not None and self._caught_up() and self._clock.now_ms() >= self._stream_broken_until:
            try:
                streamed = self._from_stream()
            except ExchangeError as error:
                self._observe(error)
                log.warning("%s candle stream failed (%s); polling REST until it is back", self._exchange_id, error)
                self._stream_broken_until = self._clock.now_ms() + int(self.settings.reconnect.delay(1) * 1000)
                self._stream.reconnect()
            else:
                self._observe(None)
                return streamed
        batch: list[Candle] = []
        for symbol in self.symbols:
            batch.extend(self._poll_symbol(symbol))
        order = {s: i for i, s in enumerate(self.symbols)}
        return sorted(batch, key=lambda c: (c.ts, order[c.symbol]))

    def _poll_symbol(self, symbol: str) -> list[Candle]:
        """Closed candles after ``last_ts`` over REST, paging until the exchange has no more."""
        found: list[Candle] = []
        while True:
            last = self.last_ts[symbol]
            since = self._since_ms if last is None else last + self.interval_ms
            limit = self.settings.fetch_limit if since is not None else 2
            rows = self._fetch(symbol, since, limit)
            fresh = self._closed_after(symbol, rows, streaming=False)
            if last is None and since is None:
                fresh = fresh[-1:]  # no start given: begin with the newest closed candle
            found.extend(fresh)
            if fresh:
                self.last_ts[symbol] = fresh[-1].ts
            if not fresh or len(rows) < limit:
                return found

    def _fetch(self, symbol: str, since: int | None, limit: int) -> list[list[Any]]:
        def once() -> list[list[Any]]:
            try:
                with ccxt_boundary(f"{self._exchange_id} fetch_ohlcv {symbol} {self.timeframe}", client=self._rest):
                    rows = self._rest.fetch_ohlcv(symbol, self.timeframe, since, limit)
            except ExchangeError as error:
                self._observe(error)
                raise
            self._observe(None)
            return rows

        return call_with_retries(
            once,
            policy=self.settings.retry,
            sleep=self._clock.sleep,
            rng=self._rng,
            what=f"{self._exchange_id} fetch_ohlcv {symbol}",
        )

    def _observe(self, error: ExchangeError | None) -> None:
        observer = self.observer
        if observer is None:
            return
        if error is None:
            observer.exchange_ok()
        else:
            observer.exchange_error(error)

    def _from_stream(self) -> list[Candle]:
        assert self._stream is not None
        with ccxt_boundary(f"{self._exchange_id} watch_ohlcv {self.timeframe}"):
            updates = self._stream.updates(self.settings.poll_interval_s)
        batch: list[Candle] = []
        for symbol in self.symbols:
            buffer = self._buffer[symbol]
            for row in updates.get(symbol, []):
                buffer[int(row[0])] = list(row)
            fresh = self._closed_after(symbol, list(buffer.values()), streaming=True)
            if fresh:
                self.last_ts[symbol] = fresh[-1].ts
                batch.extend(fresh)
            for ts in [ts for ts in buffer if ts <= (self.last_ts[symbol] or -1)]:
                del buffer[ts]
        order = {s: i for i, s in enumerate(self.symbols)}
        return sorted(batch, key=lambda c: (c.ts, order[c.symbol]))

    def _closed_after(self, symbol: str, rows: list[list[Any]], *, streaming: bool) -> list[Candle]:
        """The candles in ``rows`` after ``last_ts`` that closed at least ``settle_s`` ago (streamed: that
        closed and have a newer candle after them), oldest first, each once."""
        now = self._clock.now_ms() - (0 if streaming else int(self.settings.settle_s * 1000))
        last = self.last_ts[symbol]
        by_ts = {c.ts: c for c in (candle_from_row(symbol, row) for row in rows)}
        newest = max(by_ts, default=None)
        closed = []
        for ts in sorted(by_ts):
            if last is not None and ts <= last:
                continue
            if ts + self.interval_ms > now or (streaming and ts == newest):
                break  # still forming (or, streamed, maybe not final yet)
            closed.append(by_ts[ts])
        return closed

    # --- waiting, staleness and reconnecting --------------------------------------------------------

    def _caught_up(self) -> bool:
        """True when every symbol has the newest candle that closed ``settle_s`` ago or earlier, so the
        stream only has to add new ones (and gets ``settle_s`` to deliver each before REST steps in)."""
        settled_now = self._clock.now_ms() - int(self.settings.settle_s * 1000)
        newest_closed = (settled_now // self.interval_ms - 1) * self.interval_ms
        return all(ts is not None and ts >= newest_closed for ts in self.last_ts.values())

    def _next_close_ms(self) -> int:
        known = [ts for ts in self.last_ts.values() if ts is not None]
        if len(known) < len(self.symbols):
            return self._clock.now_ms()
        return min(known) + 2 * self.interval_ms

    def _wait(self) -> None:
        if self._stream is not None and self._caught_up() and self._clock.now_ms() >= self._stream_broken_until:
            return  # the stream's own wait is the pause
        due = self._next_close_ms() + int(self.settings.settle_s * 1000) - self._clock.now_ms()
        self._clock.sleep(due / 1000 if due > 0 else self.settings.poll_interval_s)

    def _check_staleness(self) -> None:
        now = self._clock.now_ms()
        limit_ms = self.settings.stale_after_intervals * self.interval_ms
        for symbol, last in self.last_ts.items():
            reference = self._started_ms if last is None else last + self.interval_ms
            assert reference is not None
            if now - reference > limit_ms:
                self._failures_in_a_row += 1
                since = "the feed started" if last is None else f"the candle of {utc_minute(last)} closed"
                raise StaleDataError(
                    f"{self._exchange_id} {symbol} {self.timeframe}: no new candle for "
                    f"{(now - reference) / self.interval_ms:.1f} intervals since {since} "
                    f"(limit {self.settings.stale_after_intervals:g}); iterating the feed again reconnects"
                )

    def _reconnect(self) -> None:
        delay = self.settings.reconnect.delay(self._failures_in_a_row, self._rng)
        log.warning(
            "%s candle feed: reconnecting in %.1fs (failure %d in a row)",
            self._exchange_id,
            delay,
            self._failures_in_a_row,
        )
        self._clock.sleep(delay)
        session = getattr(self._rest, "session", None)
        if session is not None:
            session.close()  # requests opens fresh connections on the next call
        if self._stream is not None:
            self._stream.reconnect()
        self._started_ms = self._clock.now_ms()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


def open_live_feed(
    exchange_id: str,
    symbols: Sequence[str],
    timeframe: str,
    *,
    testnet: bool = False,
    endpoint: str | None = None,
    since_ms: int | None = None,
    use_websocket: bool = True,
    timeout_ms: int = 10_000,
    rate_limit: bool = True,
    settings: LiveFeedSettings | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    observer: CallObserver | None = None,
) -> LiveCandleFeed:
    """A live feed of public candles from ``exchange_id`` (no credentials needed). It streams through ccxt.pro
    when ``use_websocket``, ccxt.pro is importable and the exchange can watch OHLCV, and polls REST otherwise.
    ``endpoint`` moves every REST call to another host (a local fake exchange) and turns streaming off."""
    exchange_class = CCXT_EXCHANGES.get(exchange_id)
    if exchange_class is None:
        raise ConfigError(
            f"account.exchange: {exchange_id!r} is not supported; use one of {', '.join(sorted(CCXT_EXCHANGES))}"
        )
    rest = build_ccxt_client(
        exchange_class, None, testnet=testnet, endpoint=endpoint, timeout_ms=timeout_ms, rate_limit=rate_limit
    )
    stream = None
    pro_class = ccxt_pro_client_class(exchange_id) if use_websocket and endpoint is None else None
    if pro_class is not None:

        def make_pro_client(loop: asyncio.AbstractEventLoop) -> Any:
            return build_ccxt_client(
                exchange_class,
                None,
                testnet=testnet,
                timeout_ms=timeout_ms,
                client_class=pro_class,
                extra_config={"asyncio_loop": loop},
            )

        stream = CcxtProStream(make_pro_client, symbols, timeframe)
    log.info(
        "%s live candle feed for %s %s: %s",
        exchange_id,
        ", ".join(symbols),
        timeframe,
        "ccxt.pro watch_ohlcv" if stream else "REST polling",
    )
    return LiveCandleFeed(
        rest,
        symbols,
        timeframe,
        stream=stream,
        since_ms=since_ms,
        settings=settings,
        clock=clock,
        rng=rng,
        exchange_id=exchange_id,
        observer=observer,
    )
