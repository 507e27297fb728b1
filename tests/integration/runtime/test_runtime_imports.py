"""A paper runtime imports only what it uses: each heavy library a replay never needs costs every bot of a fleet
start-up time and memory (ccxt alone 2.5-5 s of CPU; pandas about 1 s and 50 MB)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration]

# Libraries slsbot depends on that a paper runtime replaying recorded candles must not load.
NOT_FOR_A_PAPER_REPLAY = frozenset(
    {
        "ccxt",  # live exchanges only
        "pandas",  # feather files are read with pyarrow
        "scipy",
        "sklearn",
        "optuna",
        "kopf",  # the operator
        "kubernetes",
        "fastapi",  # the supervisor's admin API
        "starlette",
        "uvicorn",
        "sqlmodel",  # the supervisor's database
        "sqlalchemy",
        "httpx",
        "aiohttp",
        "hvac",
        "apscheduler",
    }
)

RUN_AND_LIST_MODULES = """
import json, sys
from slsbot.interfaces.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


def test_a_paper_replay_runtime_loads_no_exchange_client_dataframe_or_control_plane(
    repo_root: Path, tmp_path: Path
) -> None:
    config = {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RuntimeConfig",
        "name": "imports",
        "account": {"name": "paper", "exchange": "binance", "mode": "paper", "paper": {"startingBalance": 10_000}},
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 5, "slow": 15}}]},
        "marketData": {
            "source": "replay",
            "dataDir": str(repo_root / "data/market/binance-spot-1h-2024"),  # feather files
            "start": "2026-01-20T00:00:00Z",
            "secondsPerCandle": 0,
            "warmupCandles": 20,
        },
        "server": {"port": 0},
    }
    path = tmp_path / "runtime.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-c", RUN_AND_LIST_MODULES, "runtime", "--config", str(path)]
    command += ["--state", str(tmp_path / "state.db"), "--until-end", "--insecure-control", "--log-level", "WARNING"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stderr[-2000:]
    outcome = json.loads(finished.stdout.strip().splitlines()[-1])
    assert outcome["code"] == 0, finished.stderr[-2000:]
    modules = set(outcome["modules"])
    assert {"slsbot_runtime", "numpy", "pyarrow"} <= modules  # it did replay the feather files
    assert sorted(modules & NOT_FOR_A_PAPER_REPLAY) == []
