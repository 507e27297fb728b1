"""``ExchangeClock``: the exchange's own time, for a runtime that trades on the exchange's candles.

A candle is closed when its interval has passed on the *exchange's* clock, and a runtime that starts (or
restarts) catches up on the candles that closed before it began and trades only from the newest one. Both
questions are asked of this clock, never of the machine's: a host whose clock is a minute off would otherwise
take a forming candle for a closed one, and a private mirror or a test exchange may run on a clock of its own.

``now_ms()`` is the local monotonic clock plus an offset measured by asking the exchange for its server time
(half the round trip counted), measured again once ``sync_s`` seconds have passed. ``sleep(seconds)`` waits
that long on the exchange's clock in steps of at most ``sync_s``, re-reading it after each, so a clock that
jumps (a test's manual clock) or drifts ends the wait when the exchange's time says so. A failed re-read keeps
the last offset and is tried again after ``sync_s``; only the first reading must succeed. A failed re-read is told to
``observer`` (the runtime's health block) as a failed exchange call; a successful one is not: the time endpoint is the
exchange's lightest call, and its answer every ``sync_s`` would reset the failure streak of the calls that matter (the
feed's candles, the orders) in the middle of an outage of those.

It implements ``data.live.Clock``; the loop's own heartbeat and commit timers stay on the wall clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from slsbot_runtime.domain.errors import ConfigError, ExchangeError
from slsbot_runtime.exchange.retry import RetryPolicy, call_with_retries

if TYPE_CHECKING:  # the feed's observer (the runtime's health block); the feed module imports ccxt
    from slsbot_runtime.data.live import CallObserver

log = logging.getLogger(__name__)

ServerTime = Callable[[], int]  # the exchange's time in ms; raises ExchangeError


class ExchangeClock:
    def __init__(
        self,
        server_time_ms: ServerTime,
        *,
        sync_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Callable[[float], None] = time.sleep,
        first_sync: RetryPolicy | None = None,
    ) -> None:
        """Reads the exchange's time once (retrying temporary errors with ``first_sync``); raises its error."""
        if not sync_s > 0:
            raise ConfigError(f"--exchange-time-sync: must be a positive number of seconds, got {sync_s}")
        self.sync_s = sync_s
        self._server_time_ms = server_time_ms
        self._monotonic = monotonic
        self._wait = wait
        self._lock = threading.Lock()
        self._failing = False
        #: Told of every failed re-read; set once the runtime has its health block (after the first reading).
        self.observer: CallObserver | None = None
        self._offset_ms, self._synced_at = call_with_retries(
            self._measure, policy=first_sync or RetryPolicy(), sleep=wait, what="exchange server time"
        )

    @property
    def offset_ms(self) -> float:
        """Exchange time minus local monotonic time, as last measured."""
        return self._offset_ms

    def now_ms(self) -> int:
        local = self._monotonic()
        if local - self._synced_at >= self.sync_s:
            self.sync()
            local = self._monotonic()
        return int(local * 1000 + self._offset_ms)

    def sync(self) -> None:
        """Measure the offset again; on failure keep the last one (and try again after ``sync_s``)."""
        with self._lock:
            try:
                self._offset_ms, self._synced_at = self._measure()
            except ExchangeError as error:
                self._synced_at = self._monotonic()
                if not self._failing:
                    log.warning("could not read the exchange's time (%s); keeping the last offset", error)
                self._failing = True
                if self.observer is not None:
                    self.observer.exchange_error(error)
                return
            if self._failing:
                log.info("reading the exchange's time again")
            self._failing = False

    def sleep(self, seconds: float) -> None:
        """Wait until the exchange's clock has moved ``seconds`` on from now."""
        target = self.now_ms() + seconds * 1000
        while (remaining_s := (target - self.now_ms()) / 1000) > 0:
            self._wait(min(remaining_s, self.sync_s))

    def _measure(self) -> tuple[float, float]:
        before = self._monotonic()
        server = self._server_time_ms()
        after = self._monotonic()
        middle = (before + after) / 2
        return server - middle * 1000, after


def ccxt_server_time(
    exchange_id: str, *, testnet: bool, endpoint: str | None = None, timeout_ms: int = 10_000
) -> ServerTime:
    """The exchange's ``fetch_time`` on a public ccxt client of its own (no credentials), errors converted."""
    from slsbot_runtime.exchange.ccxt_exchange import build_ccxt_client
    from slsbot_runtime.exchange.ccxt_venues import CCXT_EXCHANGES
    from slsbot_runtime.exchange.errors_map import ccxt_boundary

    exchange_class = CCXT_EXCHANGES.get(exchange_id)
    if exchange_class is None:
        raise ConfigError(
            f"account.exchange: {exchange_id!r} is not supported; use one of {', '.join(sorted(CCXT_EXCHANGES))}"
        )
    client = build_ccxt_client(exchange_class, None, testnet=testnet, endpoint=endpoint, timeout_ms=timeout_ms)

    def server_time_ms() -> int:
        with ccxt_boundary(f"{exchange_id} fetch_time"):
            return int(client.fetch_time())

    return server_time_ms
