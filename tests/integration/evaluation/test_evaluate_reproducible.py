"""``slsbot evaluate --json`` is reproducible: two runs print the same bytes, with and without models (retrained
in-process as each fold's fast-mode backtest walks forward, Kelly-sized), and the recorded data fingerprint changes
when one candle changes."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tests.unit.slsbot_runtime.evaluation.conftest import SMALL_CONFIG

pytestmark = pytest.mark.integration

FEATURES = ["logret_1", "logret_6", "rsi_14", "realized_vol_24"]
#: The three kinds under a stacking model (the inputs only feed it, so there are three candidates: the ensemble,
#: sma alone and stack alone, which keeps the test short; the example's test covers every model voting).
MODELS = [
    {"name": name, "kind": kind, "features": FEATURES, "params": params, "vote": False}
    for name, kind, params in (
        ("gbm", "gradientBoosting", {"max_iter": 20}),
        ("forest", "randomForest", {"n_estimators": 10}),
        ("logit", "logisticRegression", {}),
    )
] + [{"name": "stack", "kind": "stacking", "inputs": ["gbm", "forest", "logit"]}]
for _model in MODELS:
    _model.update(lookback=320, retrainEvery="72h", horizon=2, embargo=2)

ARGS = ["--from", "2025-01-01", "--to", "2025-02-01", "--folds", "2", "--lookahead-cuts", "3"]
ARGS += ["--lookahead-random-cuts", "2", "--json"]


def evaluate(repo_root: Path, config: Path, data: Path, args: list[str] = ARGS) -> str:
    command = [sys.executable, "-m", "slsbot.interfaces.cli", "evaluate", "--config", str(config)]
    finished = subprocess.run(
        [*command, "--data", str(data), *args],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    return finished.stdout


def test_two_runs_print_the_same_json_bit_for_bit_and_a_changed_candle_changes_the_fingerprint(repo_root, tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(SMALL_CONFIG))
    candles = repo_root / "data/market/binance-spot-1h-2024"
    first = evaluate(repo_root, config, candles)
    second = evaluate(repo_root, config, candles)
    assert first == second
    result = json.loads(first)
    assert result["record"]["data"]["files"][0]["name"] == "BTC_USDT-1h.feather"

    changed = tmp_path / "changed"
    changed.mkdir()
    for name in ("BTC_USDT-1h.feather", "ETH_USDT-1h.feather"):
        shutil.copy(candles / name, changed / name)
    frame = pd.read_feather(changed / "BTC_USDT-1h.feather")
    row = int((frame["date"] == pd.Timestamp("2025-01-20 12:00", tz="UTC")).to_numpy().argmax())
    frame.loc[row, "close"] = frame.loc[row, "close"] * 1.01  # one close, inside the held-out period
    frame.to_feather(changed / "BTC_USDT-1h.feather")
    third = json.loads(evaluate(repo_root, config, changed))
    assert third["record"]["data"]["fingerprint"] != result["record"]["data"]["fingerprint"]
    assert third["record"]["data"]["files"][1] == result["record"]["data"]["files"][1]  # ETH untouched
    assert third["buy_and_hold"] != result["buy_and_hold"]  # BTC's mark at that close moved


@pytest.mark.long  # in make test-long: about 15 s
@pytest.mark.slow
def test_with_models_two_runs_print_the_same_json_bit_for_bit(repo_root, tmp_path):
    data = copy.deepcopy(SMALL_CONFIG)
    data["ensemble"]["members"] = data["ensemble"]["members"][:1]
    data["ml"] = {"models": MODELS}
    data["sizing"] = {"method": "risk"}  # sized from the track record, in fast mode too
    config = tmp_path / "models.yaml"
    config.write_text(yaml.safe_dump(data))
    candles = repo_root / "data/market/binance-spot-1h-2024"
    args = ["--from", "2025-01-01", "--to", "2025-01-21", "--folds", "2", "--lookahead-cuts", "2"]
    args += ["--lookahead-random-cuts", "1", "--json"]
    first = evaluate(repo_root, config, candles, args)
    assert evaluate(repo_root, config, candles, args) == first
    result = json.loads(first)
    assert list(result["members"]) == ["sma", "stack"]
    assert result["lookahead"]["passed"] and "ml.models[stack]" in result["lookahead"]["units"]
    stack = result["members"]["stack"]
    assert {fold["mode"] for fold in stack["folds"]} == {"fast"}
    assert stack["overall"]["trades"] > 0  # trained, in the vote and trading in the held-out period
    assert result["record"]["seeds"]["models"] == {"gbm": 0, "forest": 0, "logit": None, "stack": None}
