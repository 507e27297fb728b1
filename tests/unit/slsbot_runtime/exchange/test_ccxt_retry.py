"""Backoff delays grow, stay capped and carry jitter; calls are retried only on temporary errors, a bounded
number of times."""

from __future__ import annotations

import random

import pytest

from slsbot_runtime.domain.errors import (
    AuthenticationError,
    ConfigError,
    ExchangeUnavailable,
    RateLimited,
    TemporaryExchangeError,
)
from slsbot_runtime.exchange.retry import RetryPolicy, call_with_retries


def test_delay_grows_exponentially_up_to_the_cap_without_jitter():
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=3.0, multiplier=2.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_shortens_each_delay_by_at_most_its_fraction_and_varies():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=100.0, jitter=0.5)
    rng = random.Random(7)
    delays = [policy.delay(3, rng) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "retry.max_attempts"),
        ({"base_delay_s": 5.0, "max_delay_s": 1.0}, "retry.base_delay_s"),
        ({"multiplier": 0.5}, "retry.multiplier"),
        ({"jitter": 1.5}, "retry.jitter"),
    ],
)
def test_a_nonsensical_policy_is_refused_naming_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        RetryPolicy(**kwargs)


def flaky(failures: list[Exception], result: str = "ok"):
    calls = []

    def call() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result

    return call, calls


def test_temporary_errors_are_retried_with_backoff_until_success():
    call, calls = flaky([ExchangeUnavailable("down"), TemporaryExchangeError("timeout")])
    slept: list[float] = []

    result = call_with_retries(call, policy=RetryPolicy(max_attempts=5, jitter=0.0), sleep=slept.append)

    assert result == "ok"
    assert len(calls) == 3
    assert slept == [0.5, 1.0]


def test_attempts_are_bounded_and_the_last_error_is_raised():
    errors = [ExchangeUnavailable(f"down {i}") for i in range(10)]
    call, calls = flaky(errors)
    slept: list[float] = []

    with pytest.raises(ExchangeUnavailable, match="down 2"):
        call_with_retries(call, policy=RetryPolicy(max_attempts=3), sleep=slept.append)

    assert len(calls) == 3 and len(slept) == 2


def test_permanent_errors_are_not_retried():
    call, calls = flaky([AuthenticationError("bad key")])
    slept: list[float] = []

    with pytest.raises(AuthenticationError):
        call_with_retries(call, policy=RetryPolicy(), sleep=slept.append)

    assert len(calls) == 1 and slept == []


def test_a_rate_limit_waits_its_retry_after_when_longer_than_the_backoff_up_to_the_longest_wait():
    asked = [4.0, 0.1, None, 600.0]
    call, _calls = flaky([RateLimited("slow down", retry_after_s=seconds) for seconds in asked])
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=5, base_delay_s=0.5, max_delay_s=30.0, jitter=0.0)

    call_with_retries(call, policy=policy, sleep=slept.append)

    assert slept == [4.0, 1.0, 2.0, 30.0]  # asked 4 s; backoff longer than asked; no header; capped
