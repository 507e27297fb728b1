"""``ExchangeWait``: a reconciliation that the exchange could not answer, waiting to be tried again.

The reconciliation after a restart (``Restart.reconcile``) asks the exchange for open orders, fills, orders and
balances. When one of those calls still fails with a temporary error after the adapter's own retries (an outage,
a rate limit, maintenance), nothing is wrong with the books: the reconciliation is tried again, from the start (it
is idempotent: adopted orders are known the second time, fills are booked once by id, a resend carries the same
client id), after a pause that grows with each failure (``LoopSettings.reconcile_retry``: from 2 s to at most a
minute, with jitter).
Meanwhile nothing is sent, ``/status`` says ``WaitingForExchange`` (phase ``reconciling``, not ready) and the health
block shows the exchange failing. A state that disagrees with the exchange is something else: ``StateError``, a halt.

Plain data written by the loop thread (``Restart``) and read by the status publisher; the delays are a pure function
of the failure count, so tests move an injected clock instead of sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass

from slsbot_runtime.exchange.retry import RetryPolicy


@dataclass(slots=True)
class ExchangeWait:
    failures: int = 0  # failed attempts in a row
    error: str | None = None  # the last one's error (``health.safe_error_text``), None while not waiting
    retry_at: float = 0.0  # clock time from which the next attempt is due

    @property
    def waiting(self) -> bool:
        return self.error is not None

    def due(self, now: float) -> bool:
        return now >= self.retry_at

    def failed(self, error: str, now: float, policy: RetryPolicy) -> float:
        """One more failed attempt; the pause before the next (seconds)."""
        self.failures += 1
        self.error = error
        delay = policy.delay(self.failures)
        self.retry_at = now + delay
        return delay

    def cleared(self) -> int:
        """The exchange answered: the failed attempts there were before."""
        failures = self.failures
        self.failures, self.error, self.retry_at = 0, None, 0.0
        return failures
