"""``slsbot runtime`` as a real process: the ``health`` block of ``/status`` and ``POST /trading-mode``.

* A paced replay reports a sane health block (data age on the wall clock, nothing stale, no errors) and the
  matching metrics.
* ``POST /trading-mode`` over HTTP: a bad body is a 400 naming the field and changes nothing; safe, then halted with
  flatten, survive a SIGKILL and a restart (halted: no order ever again), normal is set back the same way.
* A live runtime on the fake Binance's candles (``tests/fakes``, ``SLSBOT_EXCHANGE_ENDPOINT``): when its klines stop
  answering while the exchange's clock moves on, its data turns stale on the exchange's clock, and fresh again when
  candles flow; when the exchange rejects ``rejectLimit`` orders in a row, the runtime puts itself in safe mode, and
  no credential shows in ``/status``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.fakes (tests is not a package)

from tests.fakes import test_secrets  # noqa: E402
from tests.fakes.fake_exchange_server import (  # noqa: E402
    FAKE_API_KEY,
    FAKE_SECRET,
    VENUE_PATHS,
    FakeExchangeServer,
    ManualClock,
    RecordedKlines,
    utc_ms,
)

from slsbot_runtime.persistence.store import StateStore  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOUR = 3_600_000
SECONDS_PER_CANDLE = 0.2


def paced_config(kit: Any, data_dir: Path, folder: Path) -> Path:
    config = kit.runtime_config(data_dir, secondsPerCandle=SECONDS_PER_CANDLE)
    config["risk"] = {"healing": {"staleAfterCandles": 10}}  # 2 s late: a loaded CI machine is not a stale feed
    config["sizing"] = {"method": "fixedQuantity", "quantity": 0.01}
    return kit.write_config(folder, config)


def stored_mode(state: Path) -> dict[str, Any] | None:
    store = StateStore.open(state, readonly=True)
    try:
        return store.load_meta().get("trading_mode")
    finally:
        store.close()


def test_a_paced_replay_reports_a_sane_health_block_and_its_metrics(kit, btc_slice_dir: Path, tmp_path: Path) -> None:
    runtime = kit.start(paced_config(kit, btc_slice_dir, tmp_path), tmp_path / "state.db")
    status = kit.wait_for(
        lambda: (s := runtime.status())["health"] and s["health"]["data"]["BTC/USDT"]["last_candle_ts"] and s,
        what="a candle in the health block",
    )
    assert status["trading_mode"] == "normal" and status["trading_mode_reason"] is None
    health = status["health"]
    data = health["data"]["BTC/USDT"]
    assert data["interval_seconds"] == SECONDS_PER_CANDLE
    assert data["age_seconds"] is not None and 0 <= data["age_seconds"] < 2.0 and data["stale"] is False
    assert data["received_at"].endswith("Z") and health["checked_at"].endswith("Z")
    assert health["exchange"]["connected"] is True and health["exchange"]["errors"] == 0
    assert health["exchange"]["last_error"] is None
    assert health["orders"] == {"rejects": 0, "consecutive_rejects": 0, "failures": 0, "consecutive_failures": 0}
    assert health["reconcile"]["ok"] is True
    assert health["models"] is None and health["margin_used_percent"] is None  # no models, no leverage
    assert 10 * 2**20 < health["memory_bytes"] < 4 * 2**30
    later = kit.wait_for(
        lambda: (s := runtime.status())["health"]["slippage"]["fills"] > 0 and s, timeout=120, what="a fill"
    )
    assert later["health"]["slippage"]["mean_bps"] is not None  # the paper exchange fills at the next open
    metrics = runtime.get("/metrics").text
    assert re.search(r'slsbot_runtime_data_age_seconds\{symbol="BTC/USDT"\} [0-9.e+-]+', metrics)
    assert 'slsbot_runtime_trading_mode{mode="normal"} 1.0' in metrics
    assert "slsbot_runtime_memory_bytes " in metrics and "slsbot_runtime_slippage_bps_count" in metrics


@pytest.mark.long  # in make test-long: about 15 s
def test_trading_mode_over_http_survives_a_sigkill_and_a_bad_body_changes_nothing(
    kit, btc_slice_dir: Path, tmp_path: Path
) -> None:
    config, state = paced_config(kit, btc_slice_dir, tmp_path), tmp_path / "state.db"
    runtime = kit.start(config, state)
    kit.wait_for(lambda: runtime.status()["open_positions"] > 0, timeout=120, what="a position")

    for body, field in (
        ({"mode": "paused"}, "mode"),
        ({"mode": "safe", "flatten": "yes"}, "flatten"),
        ({"mode": "halted", "speed": 1}, "speed"),
    ):
        answer = runtime.post("/trading-mode", body)
        assert answer.status_code == 400 and answer.json()["error"].startswith(f"{field}:"), answer.text
    assert runtime.status()["trading_mode"] == "normal" and stored_mode(state) is None

    answer = runtime.post("/trading-mode", {"mode": "safe", "reason": "operator: checking fills"})
    assert answer.status_code == 200 and answer.json() == {"trading_mode": "safe", "flatten": False}
    assert stored_mode(state) == {
        "mode": "safe",
        "reason": "operator: checking fills",
        "flatten": False,
        "settled": True,
    }
    status = kit.wait_for(lambda: (s := runtime.status())["idle_reason"] == "SafeMode" and s, what="SafeMode")
    assert status["trading_mode"] == "safe" and status["trading_mode_reason"] == "operator: checking fills"

    answer = runtime.post("/trading-mode", {"mode": "halted", "flatten": True, "reason": "kill switch"})
    assert answer.status_code == 200 and answer.json() == {"trading_mode": "halted", "flatten": True}
    assert stored_mode(state)["mode"] == "halted"
    status = kit.wait_for(
        lambda: (s := runtime.status())["open_positions"] == 0 and s["open_orders"] == 0 and s, what="flat"
    )
    assert status["idle_reason"] == "Halted" and status["trading_mode"] == "halted"
    orders_after_halt = len(runtime.get("/orders?limit=1000").json())
    cursor = kit.cursor_of(state)
    kit.wait_for(lambda: kit.cursor_of(state) > cursor + 5 * HOUR, what="more candles while halted")
    assert len(runtime.get("/orders?limit=1000").json()) == orders_after_halt

    runtime.process.send_signal(signal.SIGKILL)
    runtime.process.wait(timeout=30)
    again = kit.start(config, state)
    status = kit.wait_for(lambda: (s := again.status())["health"] and s, what="the restarted runtime's status")
    assert status["trading_mode"] == "halted" and status["trading_mode_reason"] == "kill switch"
    cursor = kit.cursor_of(state)
    kit.wait_for(lambda: kit.cursor_of(state) > cursor + 5 * HOUR, what="candles after the restart")
    assert len(again.get("/orders?limit=1000").json()) == orders_after_halt  # nothing flattened twice, no order
    assert again.status()["open_positions"] == 0

    answer = again.post("/trading-mode", {"mode": "normal", "reason": "healthy again"})
    assert answer.status_code == 200 and answer.json() == {"trading_mode": "normal", "flatten": False}
    kit.wait_for(lambda: len(again.get("/orders?limit=1000").json()) > orders_after_halt, timeout=120, what="trading")
    again.process.send_signal(signal.SIGKILL)
    again.process.wait(timeout=30)
    third = kit.start(config, state)
    status = kit.wait_for(lambda: (s := third.status())["health"] and s, what="the third start's status")
    assert status["trading_mode"] == "normal" and status["trading_mode_reason"] == "healthy again"


# -- live, on the fake Binance -----------------------------------------------------------------------------------

RUNTIME_TOKEN = test_secrets.HEALTH_RUNTIME_TOKEN
SLSBOT = [sys.executable, "-m", "slsbot.interfaces.cli"]
START = utc_ms("2025-01-02T12:00") + 5_000  # five seconds after a close
KLINES = VENUE_PATHS["binance"].klines
CREATE = VENUE_PATHS["binance"].create


@dataclass
class LiveRuntime:
    process: subprocess.Popen[str]
    url: str
    log: Path

    def get(self, path: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {RUNTIME_TOKEN}"}
        return httpx.get(self.url + path, headers=headers, timeout=10, trust_env=False)

    def status(self) -> dict[str, Any]:
        return self.get("/status").json()


@pytest.fixture(scope="module")
def recorded_klines() -> RecordedKlines:
    return RecordedKlines()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock, recorded_klines: RecordedKlines) -> Iterator[FakeExchangeServer]:
    with FakeExchangeServer(clock, klines=recorded_klines) as server:
        server.account.balances = {"USDT": 10_000.0}
        yield server


@pytest.fixture
def start_live(fake: FakeExchangeServer) -> Iterator[Callable[[Path, Path], LiveRuntime]]:
    started: list[LiveRuntime] = []

    def start(config: Path, state: Path) -> LiveRuntime:
        log = state.parent / "runtime.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "SLSBOT_EXCHANGE_ENDPOINT": fake.url}
        env["SLSBOT_RUNTIME_TOKEN"] = RUNTIME_TOKEN
        command = [*SLSBOT, "runtime", "--config", str(config), "--state", str(state), "--exchange-time-sync", "0.1"]
        with log.open("w") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=REPO)
        assert process.stdout is not None
        match = re.search(r"listening on (http://\S+)", process.stdout.readline())
        if match is None:
            process.kill()
            raise AssertionError(f"no listening line; log: {log.read_text()[-2000:]}")
        runtime = LiveRuntime(process, match.group(1), log)
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        if runtime.process.poll() is None:
            runtime.process.send_signal(signal.SIGKILL)
            runtime.process.wait(timeout=30)


def live_config(folder: Path, *, mode: str, credentials: Path | None = None) -> Path:
    account: dict[str, Any] = {"name": "acct", "exchange": "binance", "mode": mode}
    if credentials is not None:
        account["credentialsDir"] = str(credentials)
    config = {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RuntimeConfig",
        "name": "live-health",
        "account": account,
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 3, "slow": 9}}]},
        "sizing": {"method": "fixedQuantity", "quantity": 0.01},
        "marketData": {"source": "exchange", "warmupCandles": 12},
        "risk": {"healing": {"rejectLimit": 3, "staleAfterCandles": 2}},
        "server": {"port": 0},
    }
    path = folder / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def newest_closed(clock: ManualClock) -> int:
    return (clock.now_ms() // HOUR - 1) * HOUR


def caught_up(runtime: LiveRuntime, clock: ManualClock) -> bool:
    return runtime.status()["last_candle_ts"] == newest_closed(clock)


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60.0, what: str = "condition") -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def btc(status: dict[str, Any]) -> dict[str, Any]:
    return status["health"]["data"]["BTC/USDT"]


def test_live_data_turns_stale_on_the_exchange_clock_when_klines_stop_and_fresh_when_they_flow(
    fake: FakeExchangeServer, clock: ManualClock, start_live: Callable[[Path, Path], LiveRuntime], tmp_path: Path
) -> None:
    runtime = start_live(live_config(tmp_path, mode="paper"), tmp_path / "state.db")
    wait_for(lambda: caught_up(runtime, clock), what="the catch-up")
    data = btc(runtime.status())
    assert data["stale"] is False and data["interval_seconds"] == 3600.0 and data["age_seconds"] is not None

    fake.fail_next("http_5xx", times=1_000_000, path=KLINES)  # the feed gets no candle any more
    clock.advance(4 * 3600)  # ... while the exchange's clock moves on: the next candle is 3 h late
    status = wait_for(lambda: btc(s := runtime.status())["stale"] and s, what="stale data")
    assert btc(status)["age_seconds"] > 2 * 3600
    metrics = runtime.get("/metrics").text
    assert 'slsbot_runtime_data_stale{symbol="BTC/USDT"} 1.0' in metrics

    def feed_failed() -> dict[str, Any] | None:
        status = runtime.status()  # the health block hears of the feed's first failed call, not only the last retry
        return status if status["health"]["exchange"]["errors"] > 0 else None

    status = wait_for(feed_failed, what="the feed's failure reaching the health block")
    exchange = status["health"]["exchange"]
    assert exchange["connected"] is False and exchange["failing_since"] is not None
    assert "symbol=" not in exchange["last_error"]  # a URL's query is never shown

    def retries_ran_out() -> dict[str, Any] | None:
        clock.advance(10)  # the feed retries on the exchange's clock: 6 attempts, then the loop hears of it
        status = runtime.status()
        return status if status["idle_reason"] == "DataStale" else None

    status = wait_for(retries_ran_out, what="the feed giving up and the loop saying so")
    assert btc(status)["stale"] is True and status["health"]["exchange"]["consecutive_errors"] >= 6
    with fake.account.lock:
        fake.account.faults.clear()  # candles flow again

    def recovered() -> bool:
        clock.advance(1)  # the feed's reconnect waits on the exchange's clock
        return caught_up(runtime, clock)

    wait_for(recovered, what="the candles after the outage")
    status = runtime.status()
    assert btc(status)["stale"] is False and btc(status)["age_seconds"] == 0.0
    assert status["health"]["exchange"]["connected"] is True


def test_rejected_orders_in_a_row_put_a_live_runtime_in_safe_mode_by_itself(
    fake: FakeExchangeServer, clock: ManualClock, start_live: Callable[[Path, Path], LiveRuntime], tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "apiKey").write_text(FAKE_API_KEY + "\n")
    (credentials / "secret").write_text(FAKE_SECRET + "\n")
    for written in credentials.iterdir():
        written.chmod(0o600)  # owner-only, as a credentials folder is kept (the secret scan skips it)
    state = tmp_path / "state.db"
    runtime = start_live(live_config(tmp_path, mode="testnet", credentials=credentials), state)
    wait_for(lambda: caught_up(runtime, clock), what="the catch-up")
    fake.fail_next("insufficient_balance", times=1_000_000, path=CREATE, method="POST")  # every order refused

    for _ in range(200):
        if runtime.status()["trading_mode"] == "safe":
            break
        clock.advance(3600)
        wait_for(lambda: caught_up(runtime, clock), what=f"the candle of {newest_closed(clock)}")
    status = runtime.status()
    assert status["trading_mode"] == "safe", "never went to safe mode"
    assert "3 orders in a row rejected or failed" in status["trading_mode_reason"]
    orders = status["health"]["orders"]
    assert orders["rejects"] == 3 and orders["consecutive_rejects"] == 3
    assert len(fake.calls("POST", CREATE)) == 3  # nothing was sent after the third
    assert stored_mode(state)["mode"] == "safe"  # persisted

    for _ in range(10):  # the signal keeps asking: safe mode opens nothing
        clock.advance(3600)
        wait_for(lambda: caught_up(runtime, clock), what=f"the candle of {newest_closed(clock)}")
    assert len(fake.calls("POST", CREATE)) == 3
    assert runtime.status()["idle_reason"] == "SafeMode"
    text = runtime.get("/status").text
    assert FAKE_SECRET not in text and FAKE_API_KEY not in text
