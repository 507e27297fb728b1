"""LiveCandleFeed's decisions with an in-memory exchange and a manual clock: which candles are closed, their
order, no duplicates, staleness, retries and resuming, and the streamed path with its REST fallback.
(The same feed against a real HTTP fake exchange is in tests/integration/exchange.)"""

from __future__ import annotations

import random

import ccxt
import pytest

from slsbot_runtime.data.live import LiveCandleFeed, LiveFeedSettings
from slsbot_runtime.domain.errors import ConfigError, DataError, StaleDataError, TemporaryExchangeError
from slsbot_runtime.engine.health import HealthRecorder
from slsbot_runtime.exchange.retry import RetryPolicy

MIN = 60_000
T0 = 1_700_000_000_000 // MIN * MIN  # a minute boundary


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms
        self.sleeps: list[float] = []

    def now_ms(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += round(seconds * 1000)


class MemoryExchange:
    """1m candles opening every minute from T0 until ``ends_ms``; the forming one is partial."""

    def __init__(self, clock: Clock, ends_ms: int | None = None) -> None:
        self.clock, self.ends_ms = clock, ends_ms
        self.failures: list[Exception] = []
        self.calls: list[tuple[str, int | None, int | None]] = []

    def row(self, symbol: str, ts: int) -> list[float]:
        base = 100.0 if symbol == "AAA/USDT" else 10.0
        price = base + (ts - T0) / MIN
        return [ts, price, price + 1, price - 1, price + 0.5, 5.0]

    def fetch_ohlcv(self, symbol, timeframe, since, limit):
        self.calls.append((symbol, since, limit))
        if self.failures:
            raise self.failures.pop(0)
        now = self.clock.now
        last_open = min(now // MIN * MIN, self.ends_ms if self.ends_ms is not None else now)
        opens = list(range(T0, last_open + 1, MIN))
        opens = [ts for ts in opens if ts >= since][:limit] if since is not None else opens[-limit:]
        rows = [self.row(symbol, ts) for ts in opens]
        if rows and rows[-1][0] + MIN > now:
            rows[-1] = [rows[-1][0], rows[-1][1], rows[-1][1], rows[-1][1], rows[-1][1], 0.1]  # forming
        return rows


SETTINGS = LiveFeedSettings(
    stale_after_intervals=3,
    settle_s=1.0,
    poll_interval_s=5.0,
    fetch_limit=4,
    retry=RetryPolicy(max_attempts=3, base_delay_s=1.0),
    reconnect=RetryPolicy(base_delay_s=10.0, max_delay_s=100.0),
)


def make_feed(clock, exchange, symbols=("AAA/USDT", "BBB/USDT"), since=T0, stream=None, settings=SETTINGS):
    return LiveCandleFeed(
        exchange, symbols, "1m", since_ms=since, stream=stream, settings=settings, clock=clock, rng=random.Random(1)
    )


def take(feed, n):
    out, it = [], iter(feed)
    for _ in range(n):
        out.append(next(it))
    return out


def test_catches_up_in_pages_then_yields_each_candle_once_after_it_closed():
    clock = Clock(T0 + 10 * MIN + 30_000)  # ten closed candles, the 11th forming
    exchange = MemoryExchange(clock)
    feed = make_feed(clock, exchange)

    candles = take(feed, 2 * 14)

    assert [(c.ts - T0) // MIN for c in candles if c.symbol == "AAA/USDT"] == list(range(14))
    assert [c.symbol for c in candles[:4]] == ["AAA/USDT", "BBB/USDT", "AAA/USDT", "BBB/USDT"]
    assert all(c.close == c.open + 0.5 for c in candles)  # never the partial forming candle
    assert clock.now >= candles[-1].ts + MIN + 1000  # closed, and settled
    assert max(since for _, since, _ in exchange.calls) <= T0 + 14 * MIN
    assert len([c for c in exchange.calls if c[0] == "AAA/USDT"]) < 20  # pages of 4, then one call per close


def test_without_a_start_the_newest_closed_candle_comes_first():
    clock = Clock(T0 + 5 * MIN + 30_000)
    feed = make_feed(clock, MemoryExchange(clock), symbols=("AAA/USDT",), since=None)
    assert [(c.ts - T0) // MIN for c in take(feed, 2)] == [4, 5]


def test_temporary_errors_are_retried_and_permanent_ones_raised():
    clock = Clock(T0 + 2 * MIN + 30_000)
    exchange = MemoryExchange(clock)
    exchange.failures = [ccxt.ExchangeNotAvailable("503"), ccxt.RequestTimeout("slow")]
    feed = make_feed(clock, exchange, symbols=("AAA/USDT",))

    assert (take(feed, 1)[0].ts - T0) // MIN == 0
    assert clock.sleeps[:2] and all(0.5 <= s <= 2.0 for s in clock.sleeps[:2])

    exchange.failures = [ccxt.BadSymbol("no such market")]
    with pytest.raises(Exception, match="no such market") as caught:
        take(feed, 5)
    assert not isinstance(caught.value, ccxt.BaseError)  # converted at the boundary


def test_an_outage_raises_and_iterating_again_resumes_where_it_stopped():
    clock = Clock(T0 + 3 * MIN + 30_000)
    exchange = MemoryExchange(clock)
    feed = make_feed(clock, exchange, symbols=("AAA/USDT",))
    seen = take(feed, 1)
    exchange.failures = [ccxt.NetworkError("reset")] * 3

    with pytest.raises(TemporaryExchangeError):
        for candle in feed:
            seen.append(candle)

    seen.extend(take(feed, 3))
    assert [(c.ts - T0) // MIN for c in seen] == list(range(len(seen)))
    assert any(s >= 5.0 for s in clock.sleeps)  # the reconnect pause


def test_the_health_block_hears_of_every_call_so_an_outage_counts_from_the_first_failed_call():
    clock = Clock(T0 + 3 * MIN + 30_000)
    exchange = MemoryExchange(clock)
    health = HealthRecorder(clock=lambda: clock.now / 1000)
    feed = LiveCandleFeed(
        exchange, ("AAA/USDT",), "1m", since_ms=T0, settings=SETTINGS, clock=clock, rng=random.Random(1)
    )
    feed.observer = health
    take(feed, 1)
    assert health.exchange.last_ok_at == clock.now / 1000 and health.exchange.errors == 0
    exchange.failures = [ccxt.NetworkError("reset")] * 3
    cut_at = clock.now / 1000

    with pytest.raises(TemporaryExchangeError):
        for _ in feed:
            pass

    exchange_block = health.exchange
    assert exchange_block.errors == 3 and exchange_block.consecutive_errors == 3  # each attempt, retries included
    assert exchange_block.failing_since == cut_at  # the first failed call, not the moment the retries ran out
    assert clock.now / 1000 - cut_at >= 1.0  # the retries waited meanwhile
    take(feed, 1)  # the exchange answers again
    assert health.exchange.consecutive_errors == 0 and health.exchange.failing_since is None


def test_no_candle_for_three_intervals_is_stale_and_the_reconnect_pause_grows():
    clock = Clock(T0 + 2 * MIN + 30_000)
    feed = make_feed(clock, MemoryExchange(clock, ends_ms=T0 + 3 * MIN), symbols=("AAA/USDT",))
    yielded = []

    with pytest.raises(StaleDataError, match=r"AAA/USDT 1m: no new candle for 3\.\d intervals"):
        yielded.extend(feed)
    assert [(c.ts - T0) // MIN for c in yielded] == [0, 1, 2, 3]
    assert clock.now - (yielded[-1].ts + MIN) > 3 * MIN

    pauses = []
    for _ in range(3):
        before = len(clock.sleeps)
        with pytest.raises(StaleDataError):
            next(iter(feed))
        pauses.append(clock.sleeps[before])
    assert pauses[0] < pauses[2]  # backoff across failures in a row (with jitter)


def test_a_malformed_row_is_a_data_error():
    clock = Clock(T0 + 2 * MIN + 30_000)

    class Broken(MemoryExchange):
        def fetch_ohlcv(self, symbol, timeframe, since, limit):
            return [[T0, "x", 1, 1, 1, 1]]

    with pytest.raises(DataError, match="not numeric"):
        take(make_feed(clock, Broken(clock), symbols=("AAA/USDT",)), 1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"timeframe": "7m"}, "timeframe"), ({"symbols": []}, "symbols"), ({"symbols": ["A/B", "A/B"]}, "symbols")],
)
def test_bad_configuration_names_the_field(kwargs, field):
    clock = Clock(T0)
    args = {"symbols": ["AAA/USDT"], "timeframe": "1m", **kwargs}
    with pytest.raises(ConfigError, match=field):
        LiveCandleFeed(MemoryExchange(clock), args["symbols"], args["timeframe"], clock=clock)
    with pytest.raises(ConfigError, match="stale_after_intervals"):
        LiveFeedSettings(stale_after_intervals=0.5)


class ScriptedStream:
    """Pushed updates: each call to ``updates`` returns the next scripted dict and moves the clock."""

    def __init__(self, clock: Clock, script: list[tuple[int, dict]]) -> None:
        self.clock, self.script = clock, script
        self.reconnects = 0

    def updates(self, timeout_s):
        if not self.script:
            self.clock.sleep(timeout_s)
            return {}
        advance_ms, update = self.script.pop(0)
        self.clock.now += advance_ms
        if isinstance(update, Exception):
            raise update
        return update

    def reconnect(self):
        self.reconnects += 1

    def close(self):
        pass


def test_streamed_candles_are_yielded_once_a_newer_one_arrives():
    clock = Clock(T0 + 2 * MIN + 10_000)  # caught up by REST first: candles 0 and 1
    exchange = MemoryExchange(clock)
    row = exchange.row
    stream = ScriptedStream(
        clock,
        [
            (1_000, {"AAA/USDT": [row("AAA/USDT", T0 + 2 * MIN)]}),  # forming candle 2
            (49_000, {"AAA/USDT": [row("AAA/USDT", T0 + 2 * MIN)]}),  # its final update, at the close
            (500, {"AAA/USDT": [row("AAA/USDT", T0 + 3 * MIN)]}),  # candle 3 opens: 2 is final
        ],
    )
    feed = make_feed(clock, exchange, symbols=("AAA/USDT",), stream=stream)

    candles = iter(feed)
    assert [(next(candles).ts - T0) // MIN for _ in range(2)] == [0, 1]  # over REST
    rest_calls = len(exchange.calls)

    assert (next(candles).ts - T0) // MIN == 2
    assert stream.script == []  # candle 2 waited for candle 3 to open ...
    assert len(exchange.calls) == rest_calls  # ... and came from the stream


def test_a_failing_stream_falls_back_to_rest_and_is_reconnected():
    clock = Clock(T0 + 2 * MIN + 10_000)
    exchange = MemoryExchange(clock)
    stream = ScriptedStream(clock, [(100, ccxt.NetworkError("socket closed"))])
    feed = make_feed(clock, exchange, symbols=("AAA/USDT",), stream=stream)

    candles = take(feed, 4)

    assert [(c.ts - T0) // MIN for c in candles] == [0, 1, 2, 3]
    assert stream.reconnects == 1
