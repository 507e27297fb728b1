"""``slsbot runtime`` refuses, with exit code 2 and a message naming the field, what it cannot run live: a
testnet or live account on a replay, an exchange slsbot has no adapter for, a bad SLSBOT_EXCHANGE_ENDPOINT,
and it leaves no state file behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
SLSBOT = [sys.executable, "-m", "slsbot.interfaces.cli"]


def run_runtime(tmp_path: Path, account: dict[str, Any], source: str, **env: str) -> subprocess.CompletedProcess[str]:
    config = {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RuntimeConfig",
        "name": "refused",
        "account": {"name": "acct", "exchange": "binance", **account},
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
        "marketData": {"source": source, "dataDir": str(REPO / "data/market/binance-spot-1h-2024")},
        "server": {"port": 0},
    }
    path = tmp_path / "runtime.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [*SLSBOT, "runtime", "--config", str(path), "--state", str(tmp_path / "state.db")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        cwd=REPO,
    )


@pytest.mark.parametrize(
    ("account", "source", "env", "message"),
    [
        (
            {"mode": "testnet"},
            "replay",
            {},
            "marketData.source: a testnet account sends real orders to binance, which cannot fill them at "
            "replayed prices; set marketData.source: exchange",
        ),
        (
            {"mode": "live", "exchange": "kraken"},
            "exchange",
            {},
            "account.exchange: 'kraken' is not supported for trading; use one of binance, bybit",
        ),
        (
            {"mode": "testnet"},
            "exchange",
            {"SLSBOT_EXCHANGE_ENDPOINT": "localhost:8080"},
            "SLSBOT_EXCHANGE_ENDPOINT: the scheme must be http or https",
        ),
    ],
    ids=["testnet-on-a-replay", "unsupported-exchange", "endpoint-without-scheme"],
)
def test_refused_with_exit_2_naming_the_field_and_no_state_file(
    tmp_path: Path, account: dict[str, Any], source: str, env: dict[str, str], message: str
) -> None:
    done = run_runtime(tmp_path, account, source, **env)
    assert done.returncode == 2, done.stderr
    assert f"slsbot runtime: invalid config: {message}" in done.stderr
    assert not list(tmp_path.glob("state.db*"))
    assert "listening" not in done.stdout
