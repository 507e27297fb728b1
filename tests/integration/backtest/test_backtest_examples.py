"""The runnable examples, through the command line exactly as a user types it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

TRADE_KEYS = {
    "symbol",
    "side",
    "entry_ts",
    "exit_ts",
    "entry_time",
    "exit_time",
    "quantity",
    "entry_price",
    "exit_price",
    "fees",
    "pnl",
    "return_pct",
}
METRIC_KEYS = {
    "total_return_pct",
    "cagr_pct",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_pct",
    "profit_factor",
    "win_rate_pct",
    "expectancy",
    "exposure_pct",
    "trades",
    "final_equity",
}


def backtest(repo_root: Path, *args: str) -> dict:
    finished = subprocess.run(
        [sys.executable, "-m", "slsbot.interfaces.cli", "backtest", *args, "--json"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


def assert_well_formed(result: dict) -> None:
    assert set(result) == {"trades", "metrics", "fingerprint", "run"}
    assert set(result["metrics"]) == METRIC_KEYS
    assert len(result["fingerprint"]) == 64
    assert result["metrics"]["trades"] == len(result["trades"]) > 0
    for trade in result["trades"]:
        assert set(trade) == TRADE_KEYS
        assert trade["exit_ts"] > trade["entry_ts"] and trade["quantity"] > 0 and trade["fees"] > 0


@pytest.mark.slow
def test_the_sma_cross_example_runs_fast_and_step_gives_the_same_answer(repo_root):
    config = "examples/backtest/sma-cross-btc.yaml"
    auto = backtest(repo_root, "--config", config)
    assert_well_formed(auto)
    assert auto["run"]["mode"] == "fast" and auto["run"]["candles"] == 45_024
    assert {t["quantity"] for t in auto["trades"]} == {0.1}
    assert {t["side"] for t in auto["trades"]} == {"long"}
    first = auto["trades"][0]
    assert first["fees"] == pytest.approx(0.001 * 0.1 * (first["entry_price"] + first["exit_price"]))
    step = backtest(repo_root, "--config", config, "--mode", "step")
    assert step["run"]["mode"] == "step"
    assert step["trades"] == auto["trades"] and step["metrics"] == auto["metrics"]
    assert step["fingerprint"] == auto["fingerprint"]


@pytest.mark.slow
def test_the_ensemble_example_over_eight_symbols_runs_fast_and_step_gives_the_same_answer(repo_root):
    args = ("--config", "examples/backtest/ensemble-8-symbols.yaml", "--from", "2025-06-01", "--to", "2025-07-01")
    first = backtest(repo_root, *args)
    assert_well_formed(first)
    assert first["run"]["mode"] == "fast" and first["run"]["fallback_reason"] is None
    assert first["run"]["candles"] == 8 * 30 * 24
    assert len({t["symbol"] for t in first["trades"]}) >= 4
    assert len({t["quantity"] for t in first["trades"]}) > 10, "entries are sized by the risk manager"
    step = backtest(repo_root, *args, "--mode", "step")
    assert step["run"]["mode"] == "step"
    assert step["fingerprint"] == first["fingerprint"] and step["trades"] == first["trades"]


def test_fast_mode_on_an_ineligible_config_exits_2_naming_why(repo_root, tmp_path):
    config = yaml.safe_load((repo_root / "examples/backtest/sma-cross-btc.yaml").read_text())
    config["ml"] = {"models": [{"name": "odd", "kind": "isolationForest", "role": "anomaly"}]}
    path = tmp_path / "with-anomaly-model.yaml"
    path.write_text(yaml.safe_dump(config))
    finished = subprocess.run(
        [sys.executable, "-m", "slsbot.interfaces.cli", "backtest", "--config", str(path), "--mode", "fast"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 2
    assert "fast mode cannot reproduce step mode here: ml.models[odd]" in finished.stderr
    assert finished.stdout == ""


@pytest.mark.slow
def test_the_models_example_backtests_in_fast_mode_with_its_models_voting(repo_root):
    args = ("--config", "examples/backtest/models-btc-eth.yaml", "--from", "2025-01-01", "--to", "2025-03-01")
    result = backtest(repo_root, *args)
    assert_well_formed(result)
    assert result["run"]["mode"] == "fast" and result["run"]["fallback_reason"] is None
    assert result["run"]["candles"] == 2 * 59 * 24
    assert {t["symbol"] for t in result["trades"]} == {"BTC/USDT", "ETH/USDT"}
