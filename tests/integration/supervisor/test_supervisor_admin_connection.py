"""`slsbot up` saves its admin URL and generated token (mode 0600) in its state folder, and `slsbot get` finds both
there: the table of strategies with nothing but --state-dir. The Strategy here waits for an account that does not
exist, so no runtime is started and the test stays quick."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAITING_STRATEGY = """\
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: btc-trend}
spec:
  accountRef: {name: no-such-account}
  symbols: [BTC/USDT]
  ensemble:
    members:
      - {name: sma, strategy: sma_cross}
"""


def test_slsbot_get_finds_the_url_and_generated_token_slsbot_up_saved(tmp_path: Path, kit, secret_scan) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "btc.yaml").write_text(WAITING_STRATEGY)
    state = tmp_path / "state"
    saved = state / "admin-api.json"
    running = kit.start(folder, state, kit.environment())
    secret_scan.register(running.token, name="generated admin token")
    try:
        token = running.stdout_lines[1].split()[-1]
        assert (
            running.stdout_lines[1]
            == f"admin token (admin role, generated; slsbot get reads it from {saved}): {token}\n"
        )
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert json.loads(saved.read_text()) == {"url": running.url, "token": token}

        def table() -> str | None:
            done = subprocess.run(
                [sys.executable, "-m", "slsbot.interfaces.cli", "get", "strategies", "--state-dir", str(state)],
                env=kit.environment(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout if "WaitingForDependency" in done.stdout else None

        header, row = kit.wait_for(table, timeout=60, interval=0.5, what="the strategy's status").splitlines()
        assert header.split()[:5] == ["NAMESPACE", "NAME", "PHASE", "READY", "REASON"]
        assert row.split()[:5] == ["default", "btc-trend", "Pending", "False", "WaitingForDependency"]
    finally:
        assert running.stop() == 0
    assert token not in running.log_path.read_text()
