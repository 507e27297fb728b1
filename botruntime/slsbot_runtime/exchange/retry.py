"""Bounded retries with exponential backoff and jitter, for errors the runtime calls temporary.

Shared by the ccxt exchange adapter and the live candle feed. The delay is a pure function of the attempt
number and a random source, so it is tested without sleeping; the sleep itself is injected.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from slsbot_runtime.domain.errors import ConfigError, TemporaryExchangeError

T = TypeVar("T")
Sleep = Callable[[float], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; delays grow by ``multiplier`` from ``base_delay_s`` up to
    ``max_delay_s``, and each is shortened by a random fraction of at most ``jitter`` so that many bots
    hitting the same outage do not come back in step."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"retry.max_attempts: must be at least 1, got {self.max_attempts}")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ConfigError(
                f"retry.base_delay_s/max_delay_s: need 0 <= base <= max, got {self.base_delay_s}, {self.max_delay_s}"
            )
        if self.multiplier < 1:
            raise ConfigError(f"retry.multiplier: must be at least 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"retry.jitter: must be within [0, 1], got {self.jitter}")

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * self.multiplier ** max(retry_number - 1, 0))
        fraction = (rng or random).random() * self.jitter
        return ceiling * (1.0 - fraction)


def call_with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    sleep: Sleep = time.sleep,
    rng: random.Random | None = None,
    retry_on: tuple[type[BaseException], ...] = (TemporaryExchangeError,),
    what: str = "call",
) -> T:
    """``call()``, retried on ``retry_on`` errors up to ``policy.max_attempts`` times in all.

    A rate limit that says how long to wait (``RateLimited.retry_after_s``) waits that long if it is longer than
    the backoff, up to ``policy.max_delay_s``. The last error is raised unchanged when the attempts run out.
    A ``call`` that must not simply be repeated (sending an order) keeps its own state between tries; see
    ``CcxtExchange.place_order``.
    """
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return call()
        except retry_on as error:
            if attempt == policy.max_attempts:
                raise
            wait = policy.delay(attempt, rng)
            asked = getattr(error, "retry_after_s", None)  # a rate limit's Retry-After, up to the policy's longest wait
            if asked is not None and asked > wait:
                wait = min(asked, policy.max_delay_s)
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.2fs", what, attempt, policy.max_attempts, error, wait
            )
            sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
