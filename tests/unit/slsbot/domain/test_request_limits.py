"""The admin API's per-client limits as pure decisions over a hand-moved clock: the token bucket's rate and burst,
and the lockout's threshold, growing delay, cap, reset, and independence between addresses."""

from __future__ import annotations

import pytest

from slsbot.domain.request_limits import FailedAuthLockout, TokenBuckets, retry_after_seconds


def test_a_bucket_lets_a_burst_through_then_the_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 0.0) == pytest.approx(0.5)  # empty: the next token in 1/rate
    assert buckets.take("a", 0.25) == pytest.approx(0.25)  # half a token there: a refusal takes none
    assert buckets.take("a", 0.5) == 0.0
    assert buckets.take("b", 0.5) == 0.0  # another address has its own bucket
    assert buckets.take("a", 100.0) == 0.0 and buckets.take("a", 100.0) == 0.0 and buckets.take("a", 100.0) == 0.0
    assert buckets.take("a", 100.0) > 0  # refilled to the burst, not beyond


def test_a_bucket_of_rate_zero_lets_everything_through() -> None:
    buckets = TokenBuckets(rate=0, burst=1)
    assert all(buckets.take("a", 0.0) == 0.0 for _ in range(1000))


def test_the_buckets_remember_a_bounded_number_of_clients() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, max_clients=100)
    for index in range(10_000):
        buckets.take(f"10.0.{index // 256}.{index % 256}", 0.0)
    assert len(buckets) == 100


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert [retry_after_seconds(w) for w in (0.001, 0.5, 1.0, 1.2, 29.9)] == [1, 1, 1, 2, 30]


def lockout(**overrides: float) -> FailedAuthLockout:
    settings = {"threshold": 5, "window": 60.0, "base": 1.0, "cap": 8.0} | overrides
    return FailedAuthLockout(**settings)  # type: ignore[arg-type]


def test_the_lockout_starts_at_the_threshold_and_doubles_to_the_cap() -> None:
    guard = lockout()
    assert [guard.failed("a", float(t)) for t in range(4)] == [0.0] * 4
    assert guard.locked_for("a", 3.0) == 0.0
    locks = [guard.failed("a", 10.0 * t) for t in range(1, 7)]
    assert locks == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert guard.locked_for("a", 60.0) == pytest.approx(8.0)
    assert guard.locked_for("a", 68.0) == 0.0


def test_one_address_never_locks_out_another() -> None:
    guard = lockout()
    for t in range(50):
        guard.failed("203.0.113.9", float(t))
    assert guard.locked_for("203.0.113.9", 50.0) > 0
    assert guard.locked_for("198.51.100.7", 50.0) == 0.0


def test_a_success_clears_the_count() -> None:
    guard = lockout()
    for t in range(4):
        guard.failed("a", float(t))
    guard.succeeded("a")
    assert [guard.failed("a", 10.0 + t) for t in range(4)] == [0.0] * 4


def test_the_count_starts_again_after_a_quiet_window_counted_from_the_end_of_a_lock() -> None:
    guard = lockout(cap=300.0, window=60.0)
    for t in range(4):
        guard.failed("a", float(t))
    assert guard.failed("a", 100.0) == 0.0  # 97 s after the last failure: counted as the first again
    guard = lockout(cap=300.0, window=60.0)
    for t in range(8):
        guard.failed("a", float(t))  # locks of 1, 2, 4, 8 s: locked until 15 s
    assert guard.failed("a", 70.0) == 16.0  # within a window of the lock's end: the delay keeps growing
    assert guard.failed("a", 70.0 + 16.0 + 61.0) == 0.0


def test_a_lockout_of_threshold_zero_is_off_and_memory_is_bounded() -> None:
    off = lockout(threshold=0)
    assert all(off.failed("a", float(t)) == 0.0 for t in range(100)) and off.locked_for("a", 100.0) == 0.0
    bounded = FailedAuthLockout(threshold=5, window=60.0, base=1.0, cap=8.0, max_clients=50)
    for index in range(5000):
        bounded.failed(f"a{index}", 0.0)
    assert len(bounded) == 50
