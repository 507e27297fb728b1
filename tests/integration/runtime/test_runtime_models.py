"""``slsbot runtime`` with a model in the ensemble, on a replay: the model retrains in the training process on
schedule, shows in /status and the metrics, lands in the registry beside the state file, and a restart goes on with
the newest approved version."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = {
    "name": "logit",
    "kind": "logisticRegression",
    "features": ["logret_1", "logret_6", "rsi_14", "macd_hist", "realized_vol_24"],
    "lookback": 400,
    "retrainEvery": "96h",
    "horizon": 2,
}


@pytest.mark.long  # about 20-30 s: in make test-long, to keep make test under 15 minutes
def test_a_model_retrains_in_the_training_process_during_a_replay(
    kit: Any, btc_slice_dir: Path, tmp_path: Path
) -> None:
    config = kit.runtime_config(btc_slice_dir, secondsPerCandle=0.003, warmupCandles=50)
    config["ml"] = {"models": [MODEL], "worker": {"memoryMiB": 2048, "threads": 1, "nice": 5}}
    path = kit.write_config(tmp_path, config)
    runtime = kit.start(path, tmp_path / "state.db")

    first = kit.wait_for(lambda: runtime.status().get("models"), what="models in /status")
    assert set(first["logit"]) >= {"version", "trained_at", "state", "in_vote", "metric"}
    ready = kit.wait_for(
        lambda: (
            (models := runtime.status()["models"])["logit"]["version"] and models["logit"]["version"] >= 2 and models
        ),
        timeout=120,
        what="a second version of the model",
    )["logit"]
    assert ready["state"] in ("ready", "training") and ready["in_vote"] is True
    assert ready["trained_at"].endswith("T00:00:00Z") or ready["trained_at"].endswith(":00:00Z")
    assert ready["metric"]["log_loss"] > 0

    # drift of the model's inputs and output against its training window, pooled over the symbols
    drift = kit.wait_for(
        lambda: (
            (entry := (runtime.status().get("drift") or {}).get("logit"))
            and any(s["psi"] is not None for s in entry["series"])
            and entry
        ),
        timeout=120,
        what="the model's drift figures",
    )
    assert drift["threshold"] == 0.2 and {s["name"] for s in drift["series"]} == {*MODEL["features"], "output"}
    measured = next(s for s in drift["series"] if s["psi"] is not None)

    metrics = runtime.get("/metrics").text
    assert f'slsbot_runtime_drift_psi{{model="logit",series="{measured["name"]}",symbol="all"}}' in metrics
    assert 'slsbot_runtime_model_in_vote{model="logit"} 1.0' in metrics
    assert 'slsbot_runtime_model_state{model="logit",state="ready"}' in metrics
    assert "slsbot_runtime_model_retrains_total" in metrics
    assert "slsbot_runtime_models_out_of_vote 0.0" in metrics

    folder = tmp_path / "models" / "logit"
    meta = json.loads((folder / "v0001" / "model.json").read_text())
    assert meta["trainer_pid"] != runtime.process.pid  # trained in the training process, not the loop's
    assert meta["features"] == MODEL["features"] and (folder / "v0001" / "model.skops").exists()
    decisions = [json.loads(line) for line in (folder / "decisions.jsonl").read_text().splitlines()]
    assert decisions[0]["decision"].startswith("no current model")
    assert all("log_loss" in d["metrics"] for d in decisions)
    assert "model logit: ready (in the vote)" in runtime.stderr()

    runtime.process.send_signal(signal.SIGTERM)
    assert runtime.wait() == 0
    newest = max(int(p.name[1:]) for p in folder.glob("v*"))

    again = kit.start(path, tmp_path / "state.db")
    loaded = kit.wait_for(lambda: (m := again.status().get("models")) and m["logit"]["version"] and m, what="models")
    assert loaded["logit"]["version"] >= 1 and loaded["logit"]["version"] <= newest + 1
    again.process.send_signal(signal.SIGTERM)
    assert again.wait() == 0
