"""`slsbot up` deleting a strategy whose runtime it adopted: the control key in the state folder survives the
supervisor, so the new one can still drain the runtime; the runtime is stopped only once it reports ``drained``,
its state file is retired, and that runtime, started again on it, does not trade.

Real processes throughout: two `slsbot up` in a row (the first killed with SIGKILL, its runtime left running, as
after a crash), and the real `slsbot runtime` replaying recorded candles.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.integration.supervisor.manifests import DATA

from slsbot_runtime.persistence.store import StateStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
ACCOUNT = """\
apiVersion: slsbot.io/v1alpha1
kind: TradingAccount
metadata: {name: paper-binance}
spec:
  exchange: binance
  mode: paper
  paper: {startingBalance: 10000, quoteCurrency: USDT}
"""
STRATEGY = f"""\
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {{name: btc-trend}}
spec:
  accountRef: {{name: paper-binance}}
  symbols: [BTC/USDT]
  ensemble:
    members:
      - {{name: sma, strategy: sma_cross, params: {{fast: 5, slow: 15}}}}
  marketData: {{source: replay, dataDir: {DATA}, secondsPerCandle: 0.02, warmupCandles: 20, loop: true}}
  onDelete: {{cancelOrders: true, flatten: true}}
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat_file = Path(f"/proc/{pid}/stat")
    return stat_file.exists() and stat_file.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def _status(port: int, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"http://127.0.0.1:{port}/status", headers=headers, timeout=5, trust_env=False)


def test_a_deleted_strategy_is_drained_before_it_stops_and_its_drained_state_never_trades_again(
    tmp_path: Path, kit: Any
) -> None:
    folder, state_dir = tmp_path / "manifests", tmp_path / "state"
    folder.mkdir()
    (folder / "10-account.yaml").write_text(ACCOUNT)
    (folder / "30-btc.yaml").write_text(STRATEGY)
    env = kit.environment(SLSBOT_ADMIN_TOKEN=kit.operator_token)
    runtime_pid: int | None = None
    second = None
    first = kit.start(folder, state_dir, env)
    try:
        running = kit.wait_for(
            lambda: (s := first.strategies().get("btc-trend")) and s["phase"] == "Running" and s["trade_count"] and s,
            timeout=120,
            interval=0.25,
            what="btc-trend Running with a trade",
        )
        runtime_pid = running["pid"]
        key_file = state_dir / "control.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        token = hmac.new(key_file.read_text().strip().encode(), b"default/btc-trend", hashlib.sha256).hexdigest()
        folder_of_btc = state_dir / "default" / "btc-trend"
        port = yaml.safe_load((folder_of_btc / "runtime.yaml").read_text())["server"]["port"]
        assert _status(port, None).status_code == 401 and _status(port, "x" * 64).status_code == 401
        assert _status(port, token).json()["phase"] in ("running", "warming_up")
        with first.client() as client:  # the admin API asks the runtime itself, with the runtime's token
            orders = client.get("/api/v1/strategies/btc-trend/orders", params={"limit": 5})
        assert orders.status_code == 200 and orders.json()
        assert "X-Slsbot-Orders-Source" not in orders.headers

        first.process.send_signal(signal.SIGKILL)  # the supervisor dies; its runtime goes on trading
        first.process.wait(timeout=30)
        assert _alive(runtime_pid)

        (folder / "30-btc.yaml").unlink()  # the strategy is deleted while no supervisor runs
        second = kit.start(folder, state_dir, env)
        kit.wait_for(
            lambda: "btc-trend" not in second.strategies(), timeout=120, interval=0.25, what="btc-trend deleted"
        )
        kit.wait_for(lambda: not _alive(runtime_pid), timeout=30, what="the drained runtime stopped")
        with second.client() as client:
            events = client.get("/api/v1/events", params={"name": "btc-trend"}).json()
    finally:
        for supervisor in (first, second):
            if supervisor is not None and supervisor.process.poll() is None:
                supervisor.stop()
        if runtime_pid is not None and _alive(runtime_pid):
            os.killpg(runtime_pid, signal.SIGKILL)

    reasons = [e["reason"] for e in events]
    assert "Draining" in reasons and "Deleting" in reasons and "DeletedWithoutDrain" not in reasons
    runtime_log = (folder_of_btc / "runtime.log").read_text()
    assert "adopting runtime default/btc-trend" in second.log_path.read_text()
    assert "the state file is marked drained" in runtime_log and token not in runtime_log
    assert token not in second.log_path.read_text()

    # The state file was retired, drained, with nothing left open; started again on it, the runtime does not trade.
    (retired,) = [
        p
        for p in folder_of_btc.iterdir()
        if p.name.startswith("state.db.retired-") and not p.name.endswith("-shm") and not p.name.endswith("-wal")
    ]
    assert not (folder_of_btc / "state.db").exists()
    store = StateStore.open(retired, readonly=True)
    try:
        marker = store.load_meta()["drained"]
    finally:
        store.close()
    assert marker["open_orders"] == 0 and marker["open_positions"] == 0 and marker["flatten"] is True
    command = ["runtime", "--config", str(folder_of_btc / "runtime.yaml"), "--state", str(retired), "--port", "0"]
    restarted = subprocess.Popen(
        [sys.executable, "-m", "slsbot.interfaces.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "SLSBOT_RUNTIME_TOKEN": token},
        cwd=REPO,
    )
    try:
        line = restarted.stdout.readline()
        url = line.split("listening on ", 1)[1].strip()
        headers = {"Authorization": f"Bearer {token}"}
        status = httpx.get(f"{url}/status", headers=headers, timeout=5, trust_env=False).json()
        assert status["phase"] == "drained"
        assert (status["trade_count"], status["orders_total"]) == (marker["trade_count"], marker["orders_total"])
        assert httpx.get(f"{url}/readyz", timeout=5, trust_env=False).status_code == 200
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0
    assert "was drained at" in restarted.stderr.read()
    store = StateStore.open(retired, readonly=True)
    try:
        assert int(store.load_meta()["trade_count"]) == marker["trade_count"]
        assert len(store.load_orders()) == marker["orders_total"]
    finally:
        store.close()
