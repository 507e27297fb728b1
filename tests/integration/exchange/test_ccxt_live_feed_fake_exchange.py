"""The live candle feed polling the fake exchange's klines (real recorded Binance candles) through ccxt, on a
manual clock shared with the server: closed candles only, in order, no duplicates, staleness, recovery."""

from __future__ import annotations

from itertools import islice

import pytest
from tests.fakes.fake_exchange_server import VENUE_PATHS, utc_ms

from slsbot_runtime.data.live import LiveFeedSettings, open_live_feed
from slsbot_runtime.domain.errors import ExchangeUnavailable, StaleDataError
from slsbot_runtime.exchange.retry import RetryPolicy

pytestmark = pytest.mark.integration

HOUR = 3_600_000
VENUE_IDS = sorted(VENUE_PATHS)
SETTINGS = LiveFeedSettings(
    stale_after_intervals=3,
    poll_interval_s=600,
    retry=RetryPolicy(max_attempts=3, base_delay_s=1.0),
    reconnect=RetryPolicy(base_delay_s=30.0, max_delay_s=600.0),
)


def feed_for(venue, fake, clock, symbols=("BTC/USDT", "ETH/USDT"), since=None, settings=SETTINGS):
    return open_live_feed(
        venue, list(symbols), "1h", endpoint=fake.url, since_ms=since, settings=settings, clock=clock, rate_limit=False
    )


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_yields_recorded_closed_candles_in_order_and_never_the_forming_one(venue, fake, clock):
    since = utc_ms("2025-01-01T00:00")  # the clock starts at 05:30: five closed hours to catch up on
    feed = feed_for(venue, fake, clock, since=since)

    candles = list(islice(feed, 2 * 12))

    btc = [c for c in candles if c.symbol == "BTC/USDT"]
    assert [c.ts for c in btc] == [since + i * HOUR for i in range(12)]
    assert [c.ts for c in candles] == sorted(c.ts for c in candles)
    for candle in candles:  # each was closed when it was yielded, and is the recorded candle itself
        market_id = candle.symbol.replace("/", "")
        recorded = fake.account.klines.candles(market_id, candle.ts + 2 * HOUR, start_ms=candle.ts, limit=1)[0]
        assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == pytest.approx(recorded[1:])
    assert clock.now_ms() >= btc[-1].ts + HOUR
    assert clock.now_ms() < btc[-1].ts + 2 * HOUR  # ... and came right after its close, not an hour late


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_without_a_start_it_begins_with_the_newest_closed_candle(venue, fake, clock):
    feed = feed_for(venue, fake, clock, symbols=("SOL/USDT",))

    first = next(iter(feed))

    assert first.ts == utc_ms("2025-01-01T04:00")  # 05:00 is still forming at 05:30


def test_recovers_when_the_exchange_answers_5xx_twice(fake, clock):
    feed = feed_for("binance", fake, clock, symbols=("BTC/USDT",), since=utc_ms("2025-01-01T03:00"))
    fake.fail_next("http_5xx", times=2, path=VENUE_PATHS["binance"].klines)

    candles = list(islice(feed, 3))

    assert [c.ts for c in candles] == [utc_ms("2025-01-01T03:00") + i * HOUR for i in range(3)]
    assert len(fake.calls("GET", VENUE_PATHS["binance"].klines)) >= 3
    assert clock.sleeps[:2] and all(0 < s <= 2.0 for s in clock.sleeps[:2])  # backoff with jitter


def test_an_outage_longer_than_the_retries_raises_and_the_feed_resumes_after_it(fake, clock):
    feed = feed_for("binance", fake, clock, symbols=("BTC/USDT",), since=utc_ms("2025-01-01T03:00"))
    seen = [next(iter(feed))]  # 03:00; 04:00 is fetched too and waits inside the feed
    fake.fail_next("http_5xx", times=3, path=VENUE_PATHS["binance"].klines)

    with pytest.raises(ExchangeUnavailable):
        for candle in feed:
            seen.append(candle)

    seen.append(next(iter(feed)))
    assert [c.ts for c in seen] == [utc_ms("2025-01-01T03:00") + i * HOUR for i in range(3)]


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_no_new_candle_for_three_intervals_is_stale_and_the_feed_reconnects_with_backoff(venue, fake, clock):
    clock.set(utc_ms("2026-02-19T02:30"))  # the recorded data ends with the 03:00 candle
    feed = feed_for(venue, fake, clock, symbols=("BTC/USDT",))
    yielded = []

    with pytest.raises(StaleDataError, match=r"BTC/USDT 1h: no new candle"):
        yielded.extend(feed)

    assert [c.ts for c in yielded] == [utc_ms("2026-02-19T01:00") + i * HOUR for i in range(3)]
    assert clock.now_ms() - (yielded[-1].ts + HOUR) > 3 * HOUR
    sleeps_before = len(clock.sleeps)
    with pytest.raises(StaleDataError):
        next(iter(feed))  # still nothing: stale again, after a reconnect pause
    assert 15.0 <= clock.sleeps[sleeps_before] <= 60.0  # 2nd failure in a row: base 30s doubled, jittered
