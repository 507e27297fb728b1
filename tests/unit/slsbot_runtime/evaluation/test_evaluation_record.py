"""The evaluation record: the data fingerprint follows the candles, not the folder; the code version is this
checkout's commit."""

from __future__ import annotations

import json
import shutil
import subprocess

from slsbot_runtime.evaluation.record import (
    code_version,
    config_record,
    data_files,
    data_fingerprint,
    model_seeds,
    models_record,
)


def test_the_data_fingerprint_follows_the_candles_not_the_folder(candles_dir, tmp_path, small_config):
    symbols = ["BTC/USDT", "ETH/USDT"]
    here = data_files(candles_dir, symbols, "1h")
    assert [f.name for f in here] == ["BTC_USDT-1h.feather", "ETH_USDT-1h.feather"]
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("BTC_USDT-1h.feather", "ETH_USDT-1h.feather"):
        shutil.copy(candles_dir / name, copy / name)
    assert data_fingerprint(data_files(copy, symbols, "1h")) == data_fingerprint(here)
    rows = [[1_700_000_000_000 + i * 3_600_000, 100.0, 101.0, 99.0, 100.5, 10.0] for i in range(30)]
    (copy / "BTC_USDT-1h.json").write_text(json.dumps(rows))
    (copy / "BTC_USDT-1h.feather").unlink()
    before = data_fingerprint(data_files(copy, symbols, "1h"))
    rows[17][4] = 100.6  # one close
    (copy / "BTC_USDT-1h.json").write_text(json.dumps(rows))
    assert data_fingerprint(data_files(copy, symbols, "1h")) != before


def test_the_config_is_recorded_as_written_with_its_hash(small_config):
    record = config_record(small_config())
    assert record["runtime_config"]["marketData"]["warmupCandles"] == 50
    assert record["runtime_config"]["ensemble"]["members"][0]["name"] == "sma"
    other = config_record(small_config(**{"account.paper.feeRate": 0.002}))
    assert len(record["sha256"]) == 64 and other["sha256"] != record["sha256"]


def test_the_code_version_is_the_package_version_and_this_checkouts_commit(repo_root, tmp_path):
    head = subprocess.run(
        ["git", "-C", str(repo_root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    version = code_version()
    assert version["package"] == "slsbot" and version["version"]
    assert version["libraries"]["numpy"] and version["libraries"]["scikit-learn"] and version["libraries"]["predictor"]
    if head:  # a git checkout (CI's fresh clone is one)
        assert version["git_commit"] == head and isinstance(version["git_dirty"], bool)
    outside = code_version(tmp_path)
    assert outside["git_commit"] is None and outside["git_dirty"] is None


def test_each_models_seed_and_training_settings_are_recorded_defaults_included(small_config):
    models = [
        {"name": "gbm", "kind": "gradientBoosting", "lookback": 500, "params": {"max_iter": 50}},
        {"name": "logit", "kind": "logisticRegression", "lookback": 500},
        {"name": "odd", "kind": "isolationForest", "role": "anomaly"},
    ]
    config = small_config(**{"ml.models": models})
    assert model_seeds(config) == {"gbm": 0, "logit": None}  # the anomaly model is the monitor's, not a member
    recorded = models_record(config)
    assert recorded["gbm"]["params"]["max_iter"] == 50 and recorded["gbm"]["params"]["learning_rate"] == 0.05
    assert recorded["gbm"]["lookback"] == 500 and recorded["gbm"]["retrain_every"] == "24h"
    assert recorded["logit"]["params"]["C"] == 0.1 and recorded["logit"]["calibration"] == "sigmoid"
    models[0]["params"]["random_state"] = 3
    assert model_seeds(small_config(**{"ml.models": models}))["gbm"] == 3
    assert models_record(small_config()) == {}
