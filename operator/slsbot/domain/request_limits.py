"""How much a client of the admin API may ask: a token bucket per client (rate limiting) and a lockout with a
growing delay after repeated failed authentications. Pure: the time is passed in, nothing is read or written
elsewhere, so each decision is tested with a hand-moved clock.

Both are keyed by the client's address as the server saw it (never by a header the client writes, nor by the token
it presents), so one address's failures can never lock out another. Each keeps at most ``max_clients`` addresses,
the least recently seen dropped first, so a sender with many addresses cannot grow the memory without bound.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


def retry_after_seconds(wait: float) -> int:
    """The ``Retry-After`` header's whole seconds: never 0 for a refusal, so a client does not retry at once."""
    return max(1, math.ceil(wait))


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """``rate`` requests a second on average per client, up to ``burst`` at once. ``rate`` 0 lets everything pass."""

    def __init__(self, *, rate: float, burst: int, max_clients: int = 10_000) -> None:
        if rate < 0 or burst < 1 or max_clients < 1:
            raise ValueError("rate must be >= 0, burst and max_clients >= 1")
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str, now: float) -> float:
        """Take one request's token for ``client``: 0.0 when it may go on, else the seconds until a token is there."""
        if self.rate == 0:
            return 0.0
        bucket = self._buckets.pop(client, None)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        self._buckets[client] = bucket
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)  # a dropped client comes back with a full bucket: never stricter
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    locked_until: float = 0.0


class FailedAuthLockout:
    """After ``threshold`` failed authentications from one client, each one ``window`` seconds at most after the one
    before, the client is refused for ``base`` seconds; each further failure doubles that, up to ``cap``. A
    successful authentication, or ``window`` seconds without a failure (counted from the end of a lockout), clears
    it. ``threshold`` 0 turns it off."""

    def __init__(self, *, threshold: int, window: float, base: float, cap: float, max_clients: int = 10_000) -> None:
        if threshold < 0 or window <= 0 or base <= 0 or cap < base or max_clients < 1:
            raise ValueError("threshold >= 0, window and base > 0, cap >= base, max_clients >= 1")
        self.threshold = threshold
        self.window = window
        self.base = base
        self.cap = cap
        self.max_clients = max_clients
        self._clients: OrderedDict[str, _Failures] = OrderedDict()

    def locked_for(self, client: str, now: float) -> float:
        """Seconds ``client`` is still refused (0.0: it is not)."""
        failures = self._clients.get(client)
        return 0.0 if failures is None else max(0.0, failures.locked_until - now)

    def failed(self, client: str, now: float) -> float:
        """Count a failed authentication; returns the seconds the client is now locked out for (0.0: not yet)."""
        if self.threshold == 0:
            return 0.0
        failures = self._clients.pop(client, None)
        if failures is None or now - max(failures.last, failures.locked_until) > self.window:
            failures = _Failures(count=0, last=now)
        failures.count += 1
        failures.last = now
        self._clients[client] = failures
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        if failures.count < self.threshold:
            return 0.0
        lock = min(self.cap, self.base * 2.0 ** min(failures.count - self.threshold, 64))
        failures.locked_until = now + lock
        return lock

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)

    def __len__(self) -> int:
        return len(self._clients)
