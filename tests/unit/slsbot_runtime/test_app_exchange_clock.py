"""``ExchangeClock``: the exchange's time as the live runtime sees it, on a simulated local clock and a
simulated exchange (no waiting, no network)."""

from __future__ import annotations

import logging

import pytest

from slsbot_runtime.domain.errors import ConfigError, ExchangeUnavailable
from slsbot_runtime.engine.health import HealthRecorder
from slsbot_runtime.exchange.retry import RetryPolicy
from slsbot_runtime.exchange_time import ExchangeClock

HOUR_MS = 3_600_000


class Simulated:
    """A local monotonic clock that moves only when waited on, and an exchange whose clock is ``skew_ms``
    ahead of it, answering after ``round_trip_s`` (half each way)."""

    def __init__(self, skew_ms: int = 5 * HOUR_MS, round_trip_s: float = 0.0) -> None:
        self.local_s = 1000.0
        self.skew_ms = skew_ms
        self.round_trip_s = round_trip_s
        self.asked = 0
        self.waits: list[float] = []
        self.failures = 0
        self.jump_after_waits: int | None = None  # the exchange's clock jumps an hour after this many waits

    def monotonic(self) -> float:
        return self.local_s

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.local_s += seconds
        if len(self.waits) == self.jump_after_waits:
            self.skew_ms += HOUR_MS

    def server_time_ms(self) -> int:
        self.asked += 1
        if self.failures:
            self.failures -= 1
            raise ExchangeUnavailable("binance fetch_time: 503")
        self.local_s += self.round_trip_s / 2
        answer = int(self.local_s * 1000) + self.skew_ms
        self.local_s += self.round_trip_s / 2
        return answer

    def exchange_now_ms(self) -> int:
        return int(self.local_s * 1000) + self.skew_ms

    def clock(self, sync_s: float = 10.0, **kwargs: object) -> ExchangeClock:
        return ExchangeClock(self.server_time_ms, sync_s=sync_s, monotonic=self.monotonic, wait=self.wait, **kwargs)


def test_now_is_the_exchanges_time_with_half_the_round_trip_counted() -> None:
    sim = Simulated(round_trip_s=0.4)
    clock = sim.clock()
    assert clock.now_ms() == sim.exchange_now_ms()


def test_the_exchange_is_asked_again_only_after_sync_s() -> None:
    sim = Simulated()
    clock = sim.clock(sync_s=10.0)
    for _ in range(5):
        clock.now_ms()
        sim.local_s += 1.0
    assert sim.asked == 1
    sim.local_s += 6.0
    clock.now_ms()
    assert sim.asked == 2


def test_a_jump_of_the_exchanges_clock_is_seen_at_the_next_sync() -> None:
    sim = Simulated()
    clock = sim.clock(sync_s=1.0)
    sim.skew_ms += HOUR_MS
    assert clock.now_ms() == sim.exchange_now_ms() - HOUR_MS  # not yet asked again
    sim.local_s += 1.0
    assert clock.now_ms() == sim.exchange_now_ms()


def test_sleep_waits_the_time_on_the_exchanges_clock_in_steps_of_sync_s() -> None:
    sim = Simulated()
    clock = sim.clock(sync_s=30.0)
    start = sim.exchange_now_ms()
    clock.sleep(100.0)
    assert sim.exchange_now_ms() - start == pytest.approx(100_000, abs=1)
    assert max(sim.waits) <= 30.0 and len(sim.waits) == 4


def test_sleep_ends_early_when_the_exchanges_clock_jumps_past_the_target() -> None:
    sim = Simulated()
    clock = sim.clock(sync_s=0.5)
    sim.jump_after_waits = 3  # a test moves the exchange's clock on an hour while the runtime waits
    clock.sleep(1800.0)
    assert len(sim.waits) == 3 and sum(sim.waits) == pytest.approx(1.5)


def test_a_failed_sync_keeps_the_last_offset_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    sim = Simulated()
    clock = sim.clock(sync_s=1.0)
    sim.failures = 3
    with caplog.at_level(logging.WARNING, logger="slsbot_runtime.exchange_time"):
        for _ in range(3):
            sim.local_s += 1.0
            assert clock.now_ms() == sim.exchange_now_ms()
    assert sim.asked == 4
    assert len([r for r in caplog.records if "could not read the exchange's time" in r.message]) == 1


def test_the_first_reading_retries_then_raises() -> None:
    sim = Simulated()
    sim.failures = 2
    with pytest.raises(ExchangeUnavailable):
        sim.clock(first_sync=RetryPolicy(max_attempts=2, base_delay_s=0.1))
    sim.failures = 1
    assert sim.clock(first_sync=RetryPolicy(max_attempts=2, base_delay_s=0.1)).now_ms() == sim.exchange_now_ms()


def test_sync_s_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="--exchange-time-sync: must be a positive"):
        Simulated().clock(sync_s=0)


def test_a_failed_re_read_is_told_to_the_health_block_and_a_good_one_resets_nothing() -> None:
    sim = Simulated()
    clock = sim.clock(sync_s=1.0)
    health = HealthRecorder(clock=sim.monotonic)
    clock.observer = health
    sim.failures = 2
    for _ in range(2):
        sim.local_s += 1.0
        clock.now_ms()
    failing = health.exchange
    assert (failing.errors, failing.consecutive_errors, failing.failing_since) == (2, 2, 1001.0)
    assert failing.last_error == "ExchangeUnavailable: binance fetch_time: 503"
    sim.local_s += 1.0
    clock.now_ms()  # the time endpoint answers again: the streak is for the calls that matter to end
    assert (health.exchange.consecutive_errors, health.exchange.failing_since) == (2, 1001.0)
    health.exchange_ok()  # e.g. the feed's next candles
    assert (health.exchange.consecutive_errors, health.exchange.failing_since) == (0, None)
