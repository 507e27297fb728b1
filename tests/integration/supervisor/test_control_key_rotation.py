"""Rotating the local supervisor's control key while a runtime trades: no restart, no failed command.

Real processes: ``slsbot up`` with the real ``slsbot runtime`` replaying recorded candles, and ``slsbot
rotate-control-key`` run while they do. The supervisor rewrites the runtime's token file on its next pass; the
runtime reads it on its next request; the admin API's calls, the supervisor's pause and a direct call with the new
key's token all keep working with the same pid; the old key's token works during the grace and is refused after,
saying it was retired; no token reaches a log.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.fakes.test_secrets import ROTATION_ADMIN_TOKEN as ADMIN_TOKEN
from tests.integration.supervisor.manifests import DATA

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # in make test-long: > 10 s each

GRACE = "6s"
COMMAND = [sys.executable, "-m", "slsbot.interfaces.cli"]
MANIFESTS = f"""\
apiVersion: slsbot.io/v1alpha1
kind: TradingAccount
metadata: {{name: paper-binance}}
spec:
  exchange: binance
  mode: paper
  paper: {{startingBalance: 10000, quoteCurrency: USDT}}
---
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {{name: btc-trend}}
spec:
  accountRef: {{name: paper-binance}}
  symbols: [BTC/USDT]
  ensemble:
    members:
      - {{name: sma, strategy: sma_cross, params: {{fast: 5, slow: 15}}}}
  marketData: {{source: replay, dataDir: {DATA}, secondsPerCandle: 0.05, warmupCandles: 20, loop: true}}
"""


def runtime_call(url: str, token: str, method: str = "GET", path: str = "/status") -> httpx.Response:
    return httpx.request(method, url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10, trust_env=False)


def test_rotating_the_control_key_keeps_the_runtime_answering_without_a_restart(kit: Any, tmp_path: Path) -> None:
    folder, state = tmp_path / "manifests", tmp_path / "state"
    folder.mkdir()
    (folder / "btc.yaml").write_text(MANIFESTS)
    supervisor = kit.start(folder, state, kit.environment(SLSBOT_ADMIN_TOKEN=ADMIN_TOKEN))
    try:
        running = kit.wait_for(
            lambda: (s := supervisor.strategies().get("btc-trend")) and s["phase"] == "Running" and s["pid"] and s,
            timeout=120,
            interval=0.25,
            what="btc-trend Running",
        )
        pid, folder_of_runtime = running["pid"], state / "default" / "btc-trend"
        port = yaml.safe_load((folder_of_runtime / "runtime.yaml").read_text())["server"]["port"]
        url, token_file = f"http://127.0.0.1:{port}", folder_of_runtime / "control.token"
        old = token_file.read_text().split()[0]
        assert token_file.stat().st_mode & 0o077 == 0 and runtime_call(url, old).status_code == 200

        def orders_from_the_runtime() -> bool:
            """The admin API asks the runtime (with the runtime's token); it reads the state file when refused."""
            with supervisor.client() as client:
                answer = client.get("/api/v1/strategies/btc-trend/orders", params={"limit": 5})
            return answer.status_code == 200 and "X-Slsbot-Orders-Source" not in answer.headers

        assert orders_from_the_runtime()
        rotated = subprocess.run(
            [*COMMAND, "rotate-control-key", "--state-dir", str(state), "--grace", GRACE],
            capture_output=True,
            text=True,
            timeout=60,
            env=kit.environment(),
            check=False,
        )
        assert rotated.returncode == 0, rotated.stderr
        until = datetime.fromisoformat(rotated.stdout.strip().rsplit(" ", 1)[-1])

        def rewritten() -> list[str] | None:
            assert orders_from_the_runtime()  # commands keep working throughout the rotation
            lines = token_file.read_text().splitlines()
            return lines if lines[0] != old else None

        lines = kit.wait_for(rewritten, timeout=30, interval=0.1, what="the token file rewritten by a pass")
        new = lines[0]
        assert lines[1].split()[0] == old and datetime.fromisoformat(lines[1].split()[1]) == until
        assert runtime_call(url, new).status_code == 200  # read again by the running runtime
        assert runtime_call(url, old).status_code == 200, "the old token must work during the grace"

        with supervisor.client() as client:  # the supervisor's own command, signed with the new key
            assert client.post("/api/v1/strategies/btc-trend/pause").status_code == 200
        kit.wait_for(lambda: runtime_call(url, new).json()["paused"] is True, timeout=30, what="the runtime paused")

        while datetime.now(until.tzinfo) < until:  # the grace runs out; the supervisor keeps its runtime reachable
            assert orders_from_the_runtime()
            time.sleep(0.2)
        # Refused by the runtime's own clock ("retired in a key rotation"), or, once the supervisor's next pass
        # dropped it from the file, as any unknown token.
        refused = runtime_call(url, old)
        assert refused.status_code == 401 and refused.json()["error"].startswith("Authorization: ")
        assert runtime_call(url, old, "POST", "/resume").status_code == 401  # refused: nothing changed
        assert runtime_call(url, new).json()["paused"] is True and orders_from_the_runtime()
        kit.wait_for(lambda: token_file.read_text() == f"{new}\n", timeout=30, what="the previous token dropped")
        after = supervisor.strategies()["btc-trend"]
        assert after["pid"] == pid and after["restarts"] == running["restarts"]  # never restarted
    finally:
        supervisor.stop()
    logs = supervisor.log_path.read_text() + (folder_of_runtime / "runtime.log").read_text() + rotated.stdout
    assert old not in logs and new not in logs
