"""Running ``slsbot runtime`` as a real process on a slice of the real BTC/USDT 1h candles."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path

REPO = Path(__file__).resolve().parents[3]
SLSBOT = [sys.executable, "-m", "slsbot.interfaces.cli"]
RUNTIME_TOKEN = test_secrets.RUNTIME_TOKEN  # what the control plane would pass in SLSBOT_RUNTIME_TOKEN
FIRST_TS = 1514764800000  # 2018-01-01 00:00 UTC; the slice holds the real 33 h outage of 2018-02-08


@pytest.fixture(scope="session")
def btc_slice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,000 real candles from 2018-01-01, copied row for row from data/market/binance-spot-1h-2017."""
    rows = json.loads((REPO / "data/market/binance-spot-1h-2017/BTC_USDT-1h.json").read_text())
    start = next(i for i, row in enumerate(rows) if row[0] >= FIRST_TS)
    folder = tmp_path_factory.mktemp("market")
    (folder / "BTC_USDT-1h.json").write_text(json.dumps(rows[start : start + 5000]))
    return folder


def runtime_config(data_dir: Path, **market: Any) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RuntimeConfig",
        "name": "it-btc",
        "account": {"name": "paper", "exchange": "binance", "paper": {"startingBalance": 10_000}},
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 5, "slow": 15}}]},
        "marketData": {
            "source": "replay",
            "dataDir": str(data_dir),
            "secondsPerCandle": 0,
            "warmupCandles": 20,
            **market,
        },
        "server": {"port": 0},
    }


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    path = folder / "runtime.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def cursor_of(state: Path) -> int:
    """The last processed candle's open time in the state file, 0 before the first commit."""
    try:
        connection = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1)
        try:
            row = connection.execute("SELECT max(ts) FROM cursor").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)


def report(state: Path) -> dict[str, Any]:
    done = subprocess.run(
        [*SLSBOT, "report", "--state", str(state), "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
        timeout=120,
    )
    return json.loads(done.stdout)


def _env(token: str | None = RUNTIME_TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SLSBOT_RUNTIME_TOKEN"}
    env["PYTHONUNBUFFERED"] = "1"
    if token is not None:
        env["SLSBOT_RUNTIME_TOKEN"] = token
    return env


@dataclass
class RuntimeProcess:
    process: subprocess.Popen[str]
    state: Path
    base_url: str = ""
    stdout: list[str] = field(default_factory=list)
    token: str | None = RUNTIME_TOKEN  # sent with every request, as the control plane does
    log: Path | None = None  # its stderr: a file, as the supervisor does (a pipe nobody reads fills and blocks it)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base_url + path, headers=self._headers(), timeout=10, trust_env=False)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return httpx.post(self.base_url + path, json=body, headers=self._headers(), timeout=30, trust_env=False)

    def status(self) -> dict[str, Any]:
        return self.get("/status").json()

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout=timeout)

    def stderr(self) -> str:
        """What it logged so far (all of it once it exited)."""
        assert self.log is not None
        return self.log.read_text()


def start_runtime(config: Path, state: Path, *extra: str, token: str | None = RUNTIME_TOKEN) -> RuntimeProcess:
    log = state.with_name(f"{state.name}.{time.monotonic_ns()}.log")  # one per start: a test restarts on one state
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*SLSBOT, "runtime", "--config", str(config), "--state", str(state), *extra],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=_env(token),
            cwd=REPO,
        )
    runtime = RuntimeProcess(process, state, token=token, log=log)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"listening on (http://\S+)", line)
    if match is None:
        process.kill()
        process.wait()
        raise AssertionError(f"no listening line; got {line!r}; stderr: {log.read_text()[-2000:]}")
    runtime.base_url = match.group(1)
    return runtime


@pytest.fixture
def runtimes() -> Iterator[list[RuntimeProcess]]:
    """Every runtime a test starts is killed at the end if it still runs."""
    started: list[RuntimeProcess] = []
    yield started
    for runtime in started:
        if runtime.process.poll() is None:
            runtime.process.send_signal(signal.SIGKILL)
            runtime.process.wait(timeout=30)


class RuntimeKit:
    """The helpers above, handed to tests as a fixture (test modules cannot import conftest)."""

    runtime_config = staticmethod(runtime_config)
    write_config = staticmethod(write_config)
    wait_for = staticmethod(wait_for)
    cursor_of = staticmethod(cursor_of)
    report = staticmethod(report)
    slsbot = SLSBOT
    env = staticmethod(_env)
    token = RUNTIME_TOKEN

    def __init__(self, started: list[RuntimeProcess]) -> None:
        self._started = started

    def start(self, config: Path, state: Path, *extra: str, token: str | None = RUNTIME_TOKEN) -> RuntimeProcess:
        runtime = start_runtime(config, state, *extra, token=token)
        self._started.append(runtime)
        return runtime


@pytest.fixture
def kit(runtimes: list[RuntimeProcess]) -> RuntimeKit:
    return RuntimeKit(runtimes)
