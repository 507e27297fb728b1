"""``RuntimeProcess`` connecting on its loop thread: while the exchange refuses (wrong credentials) or is
away, /status says so and connecting is tried again; commands still work; a wrong config ends it with 2.
The runtime it connects to is a real paper replay over recorded candles (no network)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import RuntimeOptions, build_runtime
from slsbot_runtime.domain.errors import AuthenticationError, ConfigError, ExchangeUnavailable
from slsbot_runtime.exchange.retry import RetryPolicy
from slsbot_runtime.runtime_process import BuiltRuntime, RuntimeProcess

REPO = Path(__file__).resolve().parents[3]
FAST_RETRY = RetryPolicy(base_delay_s=0.2, max_delay_s=0.2, jitter=0.0)


def replay_config() -> RuntimeConfig:
    return RuntimeConfig.model_validate(
        {
            "name": "connecting",
            "account": {"name": "paper", "exchange": "binance"},
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            "marketData": {
                "source": "replay",
                "dataDir": str(REPO / "data/market/binance-spot-1h-2024"),
                "start": "2026-02-10T00:00:00Z",
                "secondsPerCandle": 0,
                "warmupCandles": 5,
            },
        }
    )


class Connector:
    """Raises each of ``failures`` in turn (the last one forever when ``forever``), then connects."""

    def __init__(self, built: BuiltRuntime, failures: list[Exception], *, forever: bool = False) -> None:
        self.built, self.failures, self.forever = built, failures, forever
        self.attempts = 0

    def __call__(self) -> BuiltRuntime:
        self.attempts += 1
        if self.failures:
            error = self.failures[0] if self.forever else self.failures.pop(0)
            raise error
        return self.built


@pytest.fixture
def built(tmp_path: Path) -> Iterator[BuiltRuntime]:
    runtime = build_runtime(replay_config(), RuntimeOptions(state_path=str(tmp_path / "state.db")))
    yield runtime
    runtime.store.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., RuntimeProcess]]:
    started: list[RuntimeProcess] = []

    def start_(connect: Connector, *, until_end: bool = False) -> RuntimeProcess:
        process = RuntimeProcess(
            connect,
            name="connecting",
            state_path=str(tmp_path / "state.db"),
            until_end=until_end,
            health_deadline_s=30.0,
            connect_retry=FAST_RETRY,
        )
        process.start()
        started.append(process)
        return process

    yield start_
    for process in started:
        process.stop()
        process.wait()


def wait_for(predicate: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_wrong_credentials_show_as_halted_with_the_error_then_a_retry_connects(built, start) -> None:
    connect = Connector(built, [AuthenticationError("binance fetch_balance: Signature for this request is not valid")])
    process = start(connect)

    status = wait_for(lambda: process.status().error and process.status(), what="the error in the status")
    assert status.phase == "halted" and not status.ready
    assert status.error == "AuthenticationError: binance fetch_balance: Signature for this request is not valid"
    assert process.health() == (True, "connecting")

    wait_for(lambda: process.status().phase == "finished", what="the replay to run once connected")
    assert process.status().error is None and connect.attempts == 2
    process.stop()
    assert process.wait() == 0


def test_an_exchange_that_is_away_shows_as_starting_with_the_error(built, start) -> None:
    process = start(Connector(built, [ExchangeUnavailable("binance fetch_time: 503")], forever=True))
    status = wait_for(lambda: process.status().error and process.status(), what="the error in the status")
    assert status.phase == "starting" and status.error == "ExchangeUnavailable: binance fetch_time: 503"


def test_a_pause_asked_for_while_connecting_holds_once_connected(built, start) -> None:
    connect = Connector(built, [ExchangeUnavailable("binance fetch_time: 503")] * 2)
    process = start(connect)
    wait_for(lambda: process.status().error, what="the first failure")
    assert process.set_paused(True) is True
    wait_for(lambda: process.built is not None and process.status().phase in ("paused", "finished"), what="the loop")
    assert process.loop.paused and connect.attempts == 3


def test_a_shutdown_while_connecting_ends_the_process_cleanly(built, start) -> None:
    connect = Connector(built, [AuthenticationError("binance fetch_balance: invalid key")], forever=True)
    process = start(connect)
    wait_for(lambda: process.status().error, what="the first failure")
    process.request_shutdown(cancel_orders=True, flatten=True)
    assert process.wait() == 0  # the thread ended: no attempt after the shutdown
    assert process.built is None and connect.attempts >= 1


def test_a_config_error_while_connecting_ends_with_exit_code_2(built, start) -> None:
    process = start(Connector(built, [ConfigError("account.exchange: 'kraken' is not supported")]))
    assert process.wait() == 2
    assert process.status().error == "ConfigError: account.exchange: 'kraken' is not supported"


def test_until_end_does_not_retry(built, start) -> None:
    connect = Connector(built, [ExchangeUnavailable("binance fetch_time: 503")])
    process = start(connect, until_end=True)
    assert process.wait() == 1 and connect.attempts == 1
