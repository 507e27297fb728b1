"""Fixtures for the exchange integration tests: a real fake-exchange HTTP server on 127.0.0.1 and adapters
pointed at it. Retries sleep on the manual clock, so backoff costs no wall time."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # for tests.fakes (tests is not a package)

from tests.fakes.fake_exchange_server import (  # noqa: E402
    FAKE_API_KEY,
    FAKE_SECRET,
    FakeExchangeServer,
    ManualClock,
    RecordedKlines,
    utc_ms,
)

from slsbot_runtime.exchange.ccxt_exchange import CcxtExchange  # noqa: E402
from slsbot_runtime.exchange.ccxt_venues import open_ccxt_exchange  # noqa: E402
from slsbot_runtime.exchange.credentials import ExchangeCredentials  # noqa: E402
from slsbot_runtime.exchange.retry import RetryPolicy  # noqa: E402

START = "2025-01-01T05:30"


@pytest.fixture(scope="session")
def recorded_klines() -> RecordedKlines:
    return RecordedKlines()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(utc_ms(START))


@pytest.fixture
def fake(clock: ManualClock, recorded_klines: RecordedKlines) -> Iterator[FakeExchangeServer]:
    with FakeExchangeServer(clock, klines=recorded_klines) as server:
        yield server


OpenExchange = Callable[..., CcxtExchange]


@pytest.fixture
def open_exchange(fake: FakeExchangeServer, clock: ManualClock) -> Iterator[OpenExchange]:
    """``open_exchange("binance", api_key=..., secret=..., attempts=..., timeout_ms=..., endpoint=...)``; the
    endpoint is the fake's unless another is given (a proxy in front of it)."""
    opened: list[CcxtExchange] = []

    def open_(
        exchange_id: str,
        *,
        api_key: str = FAKE_API_KEY,
        secret: str = FAKE_SECRET,
        attempts: int = 4,
        timeout_ms: int = 2_000,
        endpoint: str | None = None,
    ) -> CcxtExchange:
        exchange = open_ccxt_exchange(
            exchange_id,
            ExchangeCredentials(api_key, secret),
            testnet=False,
            endpoint=endpoint or fake.url,
            timeout_ms=timeout_ms,
            rate_limit=False,
            retry=RetryPolicy(max_attempts=attempts, base_delay_s=0.5),
            sleep=clock.sleep,
        )
        opened.append(exchange)
        return exchange

    yield open_
    for exchange in opened:
        exchange.close()
