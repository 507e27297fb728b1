"""The local supervisor's fleet at scale: ``FLEET_SIZE`` paper bots under one ``slsbot up``.

``slsbot up`` runs as a child process over a temporary folder of YAML (one RiskPolicy, one paper TradingAccount,
``FLEET_SIZE`` Strategies replaying the recorded 1h candles of ``data/market/binance-spot-1h-2024``, spread over its
eight pairs), with a temporary state folder and a free admin port. Figures:

* ``fleet_seconds_to_all_running``: from starting ``slsbot up`` until ``GET /api/v1/strategies`` reports every
  Strategy in phase ``Running``.
* ``fleet_rss_per_bot_mb``: the runtime processes' resident memory (``VmRSS`` in ``/proc/<pid>/status``) summed
  and divided by ``FLEET_SIZE``, ``SETTLE_SECONDS`` after all were Running; ``fleet_peak_rss_per_bot_mb`` the same
  with each one's peak (``VmHWM``). ``fleet_supervisor_rss_mb``: ``slsbot up`` itself.
* ``fleet_admin_latency_p50_ms`` / ``_p99_ms``: wall time of ``GET /api/v1/strategies`` issued one after another,
  ``PROBE_PAUSE_S`` apart, from the moment the admin API answers until all are Running, so while the bots start.
* ``fleet_restart_after_kill_median_s`` / ``_max_s``: ``RESTART_SAMPLES`` times, one running bot gets SIGKILL (the
  tutorial's ``kill -9``); the seconds until its Strategy is ``Running`` again with one more restart (the supervisor
  notices, restarts it, the runtime replays its state, reconciles and warms up again), the other bots running.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from slsbot_runtime.bench import report

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "market" / "binance-spot-1h-2024"
SYMBOLS = ("BTC", "ETH", "BNB", "SOL", "XRP", "ADA", "DOGE", "LTC")
FLEET_SIZE = 20
SETTLE_SECONDS = 5.0
PROBE_PAUSE_S = 0.005
DEADLINE_S = 300.0
ADMIN_TOKEN = "bench-admin-token-7Qx2Lm9Vr4"  # noqa: S105 - a throwaway token for a local benchmark

TARGETS = {
    "fleet_seconds_to_all_running": ("<=", 20.0),
    "fleet_rss_per_bot_mb": ("<=", 100.0),
    "fleet_admin_latency_p99_ms": ("<=", 50.0),
    "fleet_restart_after_kill_median_s": ("<=", 5.0),
}
RESTART_SAMPLES = 5

ACCOUNT = """\
apiVersion: slsbot.io/v1alpha1
kind: RiskPolicy
metadata: {name: bench-risk}
spec:
  perTrade: {minPercent: 1, maxPercent: 10}
---
apiVersion: slsbot.io/v1alpha1
kind: TradingAccount
metadata: {name: paper-binance}
spec:
  exchange: binance
  mode: paper
  paper: {startingBalance: 10000, quoteCurrency: USDT}
  riskPolicyRef: {name: bench-risk}
"""
STRATEGY = """\
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: %(name)s}
spec:
  accountRef: {name: paper-binance}
  allocationPercent: %(share)s
  symbols: ["%(symbol)s/USDT"]
  timeframe: 1h
  ensemble:
    members:
      - {name: sma, strategy: sma_cross, params: {fast: 10, slow: 30}}
  marketData:
    source: replay
    dataDir: %(data)s
    secondsPerCandle: 0.1
    loop: true
"""


def write_fleet(folder: Path, size: int = FLEET_SIZE) -> Path:
    """A folder of YAML: the account, its policy and ``size`` paper Strategies."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "10-account.yaml").write_text(ACCOUNT)
    for index in range(size):
        symbol = SYMBOLS[index % len(SYMBOLS)]
        name = f"bot-{index:02d}-{symbol.lower()}"
        (folder / f"30-{name}.yaml").write_text(
            STRATEGY % {"name": name, "symbol": symbol, "data": DATA, "share": 100 / size}
        )
    return folder


def proc_kib(pid: int, field_name: str) -> int:
    """One ``kB`` line of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``); 0 once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


@dataclass
class LatencyProbe:
    """Calls ``GET /api/v1/strategies`` one after another on its own thread and keeps each call's wall time."""

    client: httpx.Client
    samples: list[float] = field(default_factory=list)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                self.client.get("/api/v1/strategies").raise_for_status()
            except httpx.HTTPError:
                self.failures += 1
            else:
                self.samples.append(time.perf_counter() - started)
            self.stop.wait(PROBE_PAUSE_S)


def bench_fleet(size: int = FLEET_SIZE) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLSBOT_")}
    env["SLSBOT_ADMIN_TOKEN"] = ADMIN_TOKEN
    with tempfile.TemporaryDirectory(prefix="slsbot-bench-fleet-") as scratch:
        root = Path(scratch)
        folder = write_fleet(root / "manifests", size)
        command = [sys.executable, "-m", "slsbot.interfaces.cli", "up", "-f", str(folder), "--port", "0"]
        command += ["--state-dir", str(root / "state")]
        started = time.perf_counter()
        with (root / "supervisor.log").open("w") as log_file:
            up = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=REPO, env=env)
        try:
            _measure(up, size, started, root)
        finally:
            if up.poll() is None:
                up.send_signal(signal.SIGINT)
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()


def _measure(up: subprocess.Popen[str], size: int, started: float, root: Path) -> None:
    assert up.stdout is not None
    first = up.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)", first)
    if match is None:
        log = (root / "supervisor.log").read_text()[-2000:]
        raise RuntimeError(f"slsbot up printed no admin URL: {first!r}; its log ends: {log}")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with (
        httpx.Client(base_url=match.group(1), headers=headers, timeout=10, trust_env=False) as probe_client,
        httpx.Client(base_url=match.group(1), headers=headers, timeout=10, trust_env=False) as client,
    ):
        probe = LatencyProbe(probe_client)
        prober = threading.Thread(target=probe.run, name="latency-probe", daemon=True)
        prober.start()
        strategies: list[dict] = []
        try:
            deadline = time.monotonic() + DEADLINE_S
            while True:
                strategies = client.get("/api/v1/strategies").json()
                if len(strategies) == size and all(s["phase"] == "Running" for s in strategies):
                    break
                if time.monotonic() > deadline or up.poll() is not None:
                    phases = sorted({s["phase"] for s in strategies})
                    raise RuntimeError(f"not all {size} Running within {DEADLINE_S:.0f}s (phases {phases})")
                time.sleep(0.05)
            all_running = time.perf_counter() - started
        finally:
            probe.stop.set()
            prober.join()
        time.sleep(SETTLE_SECONDS)  # a benchmark's settling time, not a test's wait
        pids = [s["pid"] for s in strategies if s["pid"] is not None]
        rss = sum(proc_kib(pid, "VmRSS") for pid in pids) / 1024
        peak = sum(proc_kib(pid, "VmHWM") for pid in pids) / 1024
        supervisor = proc_kib(up.pid, "VmHWM") / 1024
        restarts = [_restart_after_kill(client, strategies[index]) for index in range(RESTART_SAMPLES)]
    latencies = np.array(probe.samples) * 1000
    print(
        f"# fleet: {size} paper bots (sma_cross on 1h candles replayed at 0.1 s per candle) under one slsbot up; "
        f"{len(latencies)} admin calls while they started ({probe.failures} failed)",
        flush=True,
    )
    report("fleet_seconds_to_all_running", all_running, TARGETS["fleet_seconds_to_all_running"])
    report("fleet_rss_per_bot_mb", rss / size, TARGETS["fleet_rss_per_bot_mb"])
    report("fleet_peak_rss_per_bot_mb", peak / size)
    report("fleet_supervisor_rss_mb", supervisor)
    if len(latencies):
        report("fleet_admin_latency_p50_ms", float(np.percentile(latencies, 50)))
        report("fleet_admin_latency_p99_ms", float(np.percentile(latencies, 99)), TARGETS["fleet_admin_latency_p99_ms"])
    print(
        f"# kill -9 of one running bot, {RESTART_SAMPLES} times (one after another, the other bots running): "
        "seconds until it is Running again with one more restart",
        flush=True,
    )
    median = float(np.median(restarts))
    report("fleet_restart_after_kill_median_s", median, TARGETS["fleet_restart_after_kill_median_s"])
    report("fleet_restart_after_kill_max_s", max(restarts))


def _restart_after_kill(client: httpx.Client, strategy: dict) -> float:
    """SIGKILL one runtime, as the kill -9 of the tutorial; seconds until its Strategy is Running again, restarted."""
    name = strategy["name"]
    before = {s["name"]: s for s in client.get("/api/v1/strategies").json()}[name]
    pid, restarts = before["pid"], before["restarts"]
    os.kill(pid, signal.SIGKILL)
    killed = time.perf_counter()
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        now = {s["name"]: s for s in client.get("/api/v1/strategies").json()}[name]
        if now["phase"] == "Running" and now["restarts"] == restarts + 1 and now["pid"] not in (None, pid):
            return time.perf_counter() - killed
        time.sleep(0.02)
    raise RuntimeError(f"{name} was not Running again within {DEADLINE_S:.0f}s of its kill -9")


def main() -> int:
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    bench_fleet()
    print(f"# load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
