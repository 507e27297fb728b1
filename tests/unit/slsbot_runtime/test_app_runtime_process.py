"""``RuntimeProcess`` connecting on its loop thread: while the exchange refuses (wrong credentials) or is
away, /status says so and connecting is tried again; commands still work; a wrong config ends it with 2.
The runtime it connects to is a real paper replay over recorded candles (no network)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slsbot.api import RuntimeConfig
from slsbot.api.health import TradingMode
from slsbot_runtime import runtime_process
from slsbot_runtime.allocation import Allocation
from slsbot_runtime.app import RuntimeOptions, build_runtime
from slsbot_runtime.domain.errors import (
    AuthenticationError,
    ConfigError,
    DataError,
    ExchangeUnavailable,
    StateError,
)
from slsbot_runtime.drained import drained_from_store, load_drained
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

    def start_(connect: Connector, *, until_end: bool = False, **extra: Any) -> RuntimeProcess:
        process = RuntimeProcess(
            connect,
            name="connecting",
            state_path=str(tmp_path / "state.db"),
            until_end=until_end,
            health_deadline_s=30.0,
            connect_retry=FAST_RETRY,
            **extra,
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


def test_a_drain_while_connecting_marks_the_state_drained_and_connects_no_more(built, start, caplog) -> None:
    caplog.set_level(logging.INFO, logger="slsbot_runtime.runtime_process")
    connect = Connector(built, [AuthenticationError("binance fetch_balance: invalid key")], forever=True)
    process = start(connect, store=built.store)
    wait_for(lambda: process.status().error, what="the first failure")
    process.request_shutdown(cancel_orders=True, flatten=True)
    body = wait_for(lambda: process.status_json()["phase"] == "drained" and process.status_json(), what="drained")
    assert body["drain"] == {"cancelOrders": True, "flatten": True} and body["open_orders"] == 0
    assert process.readiness() == (True, "drained") and process.health() == (True, "drained")
    assert load_drained(built.store, strategy_key="default/connecting") is not None
    # Resting means the connecting loop has returned, so no attempt can follow the drain.
    wait_for(lambda: "serving the final status until stopped" in caplog.text, what="the loop thread at rest")
    attempts = connect.attempts
    assert process.built is None and process.status_json()["phase"] == "drained"
    assert connect.attempts == attempts
    with pytest.raises(StateError, match="drained"):
        process.set_paused(True)
    process.stop()
    assert process.wait() == 0


def test_a_plain_shutdown_while_connecting_ends_the_process_without_a_marker(built, start) -> None:
    connect = Connector(built, [AuthenticationError("binance fetch_balance: invalid key")], forever=True)
    process = start(connect, store=built.store)
    wait_for(lambda: process.status().error, what="the first failure")
    process.request_shutdown(cancel_orders=False, flatten=False)
    assert process.wait() == 0  # the thread ended: no attempt after the shutdown
    assert process.built is None and process.drained is None
    assert load_drained(built.store, strategy_key="default/connecting") is None


def test_a_drain_of_the_running_loop_keeps_the_process_up_reporting_drained(built, start) -> None:
    process = start(Connector(built, []), store=built.store)
    wait_for(lambda: process.status_json()["open_orders"] is not None, what="the loop")
    process.request_shutdown(cancel_orders=True, flatten=True)
    body = wait_for(lambda: process.status_json()["phase"] == "drained" and process.status_json(), what="drained")
    assert body["open_orders"] == 0 and body["open_positions"] == 0
    assert body["trade_count"] == built.loop.status.trade_count and body["name"] == "connecting"
    marker = load_drained(built.store, strategy_key="default/connecting")
    assert marker is not None and marker.flatten and marker.trade_count == body["trade_count"]
    assert process.health() == (True, "drained")
    process.stop()
    assert process.wait() == 0


def test_a_process_started_drained_never_connects(built, start) -> None:
    drained = drained_from_store(built.store, cancel_orders=True, flatten=False)
    connect = Connector(built, [])
    process = start(connect, store=built.store, drained=drained)
    assert process.status_json()["phase"] == "drained" and process.readiness() == (True, "drained")
    wait_for(lambda: process.health() == (True, "drained"), what="the idle thread")
    process.request_shutdown(cancel_orders=True, flatten=True)  # again: nothing to do
    process.stop()
    assert process.wait() == 0 and connect.attempts == 0 and process.built is None


def test_a_process_started_drained_under_until_end_exits_at_once(built, start) -> None:
    drained = drained_from_store(built.store, cancel_orders=True, flatten=False)
    connect = Connector(built, [])
    process = start(connect, until_end=True, store=built.store, drained=drained)
    assert process.wait() == 0 and connect.attempts == 0


def test_a_config_error_while_connecting_ends_with_exit_code_2(built, start) -> None:
    process = start(Connector(built, [ConfigError("account.exchange: 'kraken' is not supported")]))
    assert process.wait() == 2
    assert process.status().error == "ConfigError: account.exchange: 'kraken' is not supported"


def test_until_end_does_not_retry(built, start) -> None:
    connect = Connector(built, [ExchangeUnavailable("binance fetch_time: 503")])
    process = start(connect, until_end=True)
    assert process.wait() == 1 and connect.attempts == 1


def test_before_the_loop_exists_the_idle_reason_says_why(built, start) -> None:
    away = start(Connector(built, [ExchangeUnavailable("binance fetch_time: 503")], forever=True))
    body = wait_for(lambda: away.status().error and away.status_json(), what="the error in the status")
    assert body["idle_reason"] == "Starting"
    assert body["idle_message"] == "connecting, will try again: ExchangeUnavailable: binance fetch_time: 503"
    refused = start(Connector(built, [AuthenticationError("binance fetch_balance: invalid key")], forever=True))
    body = wait_for(lambda: refused.status().error and refused.status_json(), what="the error in the status")
    assert (
        body["idle_reason"] == "Halted"
        and "AuthenticationError: binance fetch_balance: invalid key" in body["idle_message"]
    )


class FailingLiveFeed:
    """The recorded candles, then a feed that fails (an exchange gone away), and fails again when asked again."""

    def __init__(self, candles: list[Any]) -> None:
        self.candles, self.passes = candles, 0

    def __iter__(self) -> Iterator[Any]:
        self.passes += 1
        if self.passes == 1:
            yield from self.candles
        raise DataError("binance fetch_ohlcv BTC/USDT: 503 Service Unavailable")


def test_a_live_feed_that_fails_shows_data_stale(built, start) -> None:
    candles = list(built.feed)[:80]
    live = BuiltRuntime(built.loop, FailingLiveFeed(candles), 0.0, True, built.store)
    process = start(Connector(live, []))
    body = wait_for(
        lambda: (b := process.status_json())["idle_reason"] == "DataStale" and b["last_candle_ts"] and b,
        what="DataStale after the last candle",
    )
    assert body["idle_message"] == (
        "no new candle: the feed fails (DataError: binance fetch_ohlcv BTC/USDT: 503 Service Unavailable); trying again"
    )
    assert body["last_candle_ts"] == candles[-1].ts


def test_a_stop_signal_is_one_log_line_naming_the_strategy(built, start, caplog) -> None:
    caplog.set_level(logging.INFO, logger="slsbot_runtime")
    process = start(Connector(built, []), strategy_key="default/connecting")
    wait_for(lambda: process.status().phase == "finished", what="the replay to end")
    process.stop()
    assert process.wait() == 0
    stopped = [r.getMessage() for r in caplog.records if "stopped after" in r.getMessage()]
    assert len(stopped) == 1
    assert stopped[0].startswith("default/connecting: stopped after ")
    assert "state flushed; 0 open orders and " in stopped[0]


def test_a_drained_runtime_keeps_its_profit_figures(built, start) -> None:
    process = start(Connector(built, []), store=built.store)
    wait_for(lambda: process.status().phase == "finished", what="the replay to end")
    before = process.status_json()
    process.request_shutdown(cancel_orders=True, flatten=True)
    body = wait_for(lambda: process.status_json()["phase"] == "drained" and process.status_json(), what="drained")
    assert body["idle_reason"] == "Drained" and body["idle_message"].startswith("drained at ")
    assert body["starting_equity"] == before["starting_equity"] == 10_000.0
    assert body["unrealized_pnl"] == 0.0  # flattened
    assert body["closed_trades"] >= before["closed_trades"] and body["max_drawdown_pct"] >= 0.0
    assert body["return_pct"] == pytest.approx((body["equity"] / 10_000.0 - 1.0) * 100.0)


def test_an_allocation_asked_for_while_connecting_is_stored_at_once_and_holds_once_connected(built, start) -> None:
    connect = Connector(built, [ExchangeUnavailable("binance fetch_time: 503")] * 2)
    process = start(connect, store=built.store, allocation=Allocation(80.0))
    wait_for(lambda: process.status().error, what="the first failure")
    assert process.set_allocation(30.0) == {"allocationPercent": 30.0, "source": "controller"}
    assert built.store.load_meta()["allocation"]["override"] == 30.0  # in the file before the answer
    wait_for(lambda: process.built is not None and process.status().phase == "finished", what="the replay")
    assert process.loop.risk.allocation_percent == 30.0
    assert process.status_json()["allocation"] == {"percent": 30.0, "source": "controller", "specPercent": 80.0}


def test_an_allocation_the_loop_does_not_take_in_time_is_withdrawn_and_changes_nothing(
    built, start, monkeypatch
) -> None:
    monkeypatch.setattr(runtime_process, "COMMAND_TIMEOUT_S", 0.2)
    release = threading.Event()

    def slow_connect() -> BuiltRuntime:
        release.wait(10)  # an exchange that takes its time to answer: no command is taken meanwhile
        return built

    process = start(slow_connect, store=built.store, allocation=Allocation(80.0))
    with pytest.raises(StateError, match="allocation: the loop did not take it within 0s; nothing changed"):
        process.set_allocation(5.0)
    release.set()
    wait_for(lambda: process.built is not None and process.status().phase == "finished", what="the replay")
    assert process.loop.risk.allocation_percent == 80.0
    assert process.allocation.source == "spec"
    assert (built.store.load_meta().get("allocation") or {}).get("override") is None


def test_a_trading_mode_set_while_connecting_is_written_first_and_in_force_once_connected(built, start) -> None:
    process = start(Connector(built, [ExchangeUnavailable("binance fetch_time: 503")] * 3), store=built.store)
    wait_for(lambda: process.status().error, what="a failed connection")
    answer = process.set_trading_mode(TradingMode.SAFE, flatten=False, reason="exchange flapping")
    assert answer == {"trading_mode": "safe", "flatten": False}
    assert built.store.load_meta()["trading_mode"]["mode"] == "safe"  # written before the answer
    wait_for(lambda: process.built is not None, what="the connection")
    wait_for(lambda: process.status().phase == "finished", what="the replay")
    body = process.status_json()
    assert body["trading_mode"] == "safe" and body["trading_mode_reason"] == "exchange flapping"
    assert process.loop.orders.orders == {}  # safe from the first candle: no entry staged (normal mode stages 8)
    assert body["health"]["data"]["BTC/USDT"]["age_seconds"] is None  # an unpaced replay: not measurable
