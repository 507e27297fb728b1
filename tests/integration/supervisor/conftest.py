"""Run ``slsbot up`` as a real subprocess over a temporary folder of YAML, with a free admin port, and talk to
it over HTTP. The runtimes it starts are the real ``slsbot runtime`` replaying recorded Binance candles."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path
from tests.integration.supervisor.manifests import DATA, PAPER_ACCOUNT

REPO = Path(__file__).resolve().parents[3]
ADMIN_TOKEN = test_secrets.SUPERVISOR_ADMIN_TOKEN
OPERATOR_TOKEN = test_secrets.SUPERVISOR_OPERATOR_TOKEN
VIEWER_TOKEN = test_secrets.SUPERVISOR_VIEWER_TOKEN

MANIFESTS = (
    """\
apiVersion: slsbot.io/v1alpha1
kind: RiskPolicy
metadata: {name: local-risk}
spec: {}
---
"""
    + PAPER_ACCOUNT
)
STRATEGY = """\
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: %(name)s}
spec:
  accountRef: {name: paper-binance}
  allocationPercent: 50  # two Strategies share the account
  symbols: [%(symbol)s]
  timeframe: 1h
  ensemble:
    members:
      - {name: sma, strategy: sma_cross, params: {fast: 5, slow: 15}}
  marketData:
    source: replay
    dataDir: %(data)s
    secondsPerCandle: 0.05
    warmupCandles: 20
    loop: true
"""


def write_manifests(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "10-account.yaml").write_text(MANIFESTS)
    for name, symbol in (("btc-trend", "BTC/USDT"), ("eth-trend", "ETH/USDT")):
        (folder / f"30-{name}.yaml").write_text(STRATEGY % {"name": name, "symbol": symbol, "data": DATA})
    return folder


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")


@dataclass
class RunningSupervisor:
    process: subprocess.Popen[str]
    url: str
    token: str
    state_dir: Path
    log_path: Path
    stdout_lines: list[str] = field(default_factory=list)

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token or self.token}"}, timeout=10, trust_env=False
        )

    def strategies(self, token: str | None = None) -> dict[str, dict[str, Any]]:
        with self.client(token) as client:
            response = client.get("/api/v1/strategies")
        response.raise_for_status()
        return {item["name"]: item for item in response.json()}

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def start_supervisor(folder: Path, state_dir: Path, env: dict[str, str], cwd: Path = REPO) -> RunningSupervisor:
    log_path = state_dir.parent / f"{state_dir.name}-supervisor.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "slsbot.interfaces.cli",
            "up",
            "-f",
            str(folder),
            "--port",
            "0",
            "--state-dir",
            str(state_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=log_path.open("w"),
        text=True,
        cwd=cwd,
        env=env,
    )
    lines = [process.stdout.readline() for _ in range(2)]
    match = re.search(r"(http://127\.0\.0\.1:\d+)", lines[0])
    if match is None:
        process.kill()
        raise AssertionError(f"slsbot up printed no admin URL: {lines!r}; log: {log_path.read_text()[-2000:]}")
    token = env.get("SLSBOT_ADMIN_TOKEN") or lines[1].split()[-1]
    return RunningSupervisor(process, match.group(1), token, state_dir, log_path, lines)


def supervisor_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLSBOT_")}
    env.update(extra)
    return env


class SupervisorKit:
    """The helpers, handed to tests as a fixture (test modules cannot import conftest under importlib mode)."""

    operator_token = OPERATOR_TOKEN
    viewer_token = VIEWER_TOKEN
    wait_for = staticmethod(wait_for)
    write_manifests = staticmethod(write_manifests)
    start = staticmethod(start_supervisor)
    environment = staticmethod(supervisor_environment)


@pytest.fixture(scope="session")
def kit() -> SupervisorKit:
    return SupervisorKit()


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSupervisor]:
    root = tmp_path_factory.mktemp("supervisor")
    running = start_supervisor(
        write_manifests(root / "manifests"),
        root / "state",
        supervisor_environment(
            SLSBOT_ADMIN_TOKEN=ADMIN_TOKEN, SLSBOT_OPERATOR_TOKEN=OPERATOR_TOKEN, SLSBOT_VIEWER_TOKEN=VIEWER_TOKEN
        ),
    )
    try:
        wait_for(
            lambda: all(s["phase"] == "Running" for s in running.strategies().values()),
            timeout=120,
            interval=0.25,
            what="both strategies Running",
        )
        yield running
    finally:
        running.stop()
