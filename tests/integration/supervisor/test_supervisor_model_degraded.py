"""A real runtime's model loses its accuracy under ``slsbot up``, and the ladder's ModelDegraded rung acts.

The candles are made so that it happens for sure. A volume pattern decides the next move: after a high-volume
candle the close goes up, after a low-volume one down (regime A), the model (a logistic regression on
``volume_z_24``, ``horizon`` 1) learns it perfectly at its one retrain point (holdout accuracy 1.0), and ten candles
later the relation turns round (regime B: high volume, then down). The volumes and the size of the moves keep the
same distribution, so the model's inputs and output do not drift (and drift is judged only after 300 predictions of a
version, far more than the model has made when the rule fires); only its predictions are now always wrong. Once its
live window (``ml.accuracy.window: 20``) holds nothing but predictions of regime B, its live accuracy is 0.0, and the
RiskPolicy's ``modelAccuracyDrop: 1`` rule, which only a fall from 1.0 to 0.0 passes, fires: a severity-2
``ModelAccuracy`` incident with its runbook, and the ladder's ModelDegraded rung (safe mode pushed to the runtime, the
Healing condition ``ModelDegraded_SafeMode``, its Event). The figures of the incident are the runtime's own, as its
``/status`` reports them. No retrain can replace the model during the run: the next retrain point is 2160 candles
after the first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.integration.supervisor.manifests import PAPER_ACCOUNT
from tests.integration.supervisor.model_runtime import condition, runtime_get, runtime_status

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # in make test-long: 20-35 s

HOUR_MS = 3_600_000
RETRAIN_EVERY_H = 2160  # 90 days: one retrain point in the data
FIRST_POINT_MS = 220 * RETRAIN_EVERY_H * HOUR_MS  # 2024-03-18T00:00Z, a multiple of retrainEvery
BEFORE, STILL_A, REGIME_B = 500, 10, 2000  # candles before the retrain point, then of regime A, then of regime B
WINDOW = 20

POLICY = (
    """\
apiVersion: slsbot.io/v1alpha1
kind: RiskPolicy
metadata: {name: local-risk}
spec:
  healing: {staleAfterMin: 60s}  # the replay waits for the retrain: a busy machine's pause is not a dead feed
  incidents: {modelAccuracyDrop: 1}  # only a fall from a perfect holdout to a window of misses
---
"""
    + PAPER_ACCOUNT
)
STRATEGY = """\
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: btc-model}
spec:
  accountRef: {name: paper-binance}
  symbols: [BTC/USDT]
  timeframe: 1h
  ensemble:
    members:
      - {name: sma, strategy: sma_cross, params: {fast: 5, slow: 15}}
  ml:
    models:
      - {name: logit, kind: logisticRegression, features: [volume_z_24], lookback: 320, retrainEvery: %(every)dh,
         horizon: 1, embargo: 1}
    accuracy: {window: %(window)d, minScored: %(window)d}
    driftThreshold: 0.5  # a margin: the inputs keep their distribution (output PSI about 0.1 over 300 candles of B)
  marketData: {source: replay, dataDir: %(data)s, secondsPerCandle: 0.01, warmupCandles: 20}
"""


def write_candles(folder: Path, seed: int = 11) -> int:
    """BTC/USDT 1h candles of regime A then B (see the module's docstring); the index of B's first move."""
    rng = np.random.default_rng(seed)
    n = BEFORE + STILL_A + REGIME_B
    # two high and two low volumes in every four candles: every 24-candle z-score sees about as many of each
    high = np.concatenate([rng.permutation([True, True, False, False]) for _ in range(n // 4 + 1)])[:n]
    volume = np.where(high, rng.uniform(900, 1100, n), rng.uniform(100, 300, n))
    size = rng.uniform(0.003, 0.01, n)
    flip = BEFORE + STILL_A
    moves = np.zeros(n)
    for t in range(1, n):
        up = bool(high[t - 1]) == (t < flip)
        moves[t] = size[t] if up else -size[t]
    close = 100.0 * np.exp(np.cumsum(moves))
    open_ = np.concatenate([[100.0], close[:-1]])
    ts = FIRST_POINT_MS - BEFORE * HOUR_MS + np.arange(n) * HOUR_MS
    rows = [
        [int(ts[i]), open_[i], max(open_[i], close[i]) * 1.001, min(open_[i], close[i]) * 0.999, close[i], volume[i]]
        for i in range(n)
    ]
    folder.mkdir(parents=True)
    (folder / "BTC_USDT-1h.json").write_text(json.dumps(rows))
    return flip


def test_a_model_whose_accuracy_falls_opens_a_model_accuracy_incident_and_is_put_in_safe_mode(
    kit: Any, tmp_path: Path, secret_scan: Any
) -> None:
    data = tmp_path / "candles"
    write_candles(data)
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "10-account.yaml").write_text(POLICY)
    (folder / "30-btc-model.yaml").write_text(STRATEGY % {"every": RETRAIN_EVERY_H, "window": WINDOW, "data": data})
    running = kit.start(folder, tmp_path / "state", kit.environment(SLSBOT_ADMIN_TOKEN=kit.operator_token))
    try:
        degraded = kit.wait_for(
            lambda: (
                (s := running.strategies().get("btc-model"))
                and condition(s, "Healing").get("reason") == "ModelDegraded_SafeMode"
                and condition(s, "Trading").get("reason") == "SafeMode"
                and s
            ),
            timeout=90,
            interval=0.2,
            what="the ModelDegraded rung: safe mode",
        )
        status = runtime_status(running.state_dir, "btc-model")
        secret_scan.observe(json.dumps(status), where="the runtime's /status")
        model = status["models"]["logit"]
        health = status["health"]["models"]
        # the runtime's figures: a perfect holdout, then every one of the last 20 predictions wrong
        assert model["version"] == 1 and model["replaced"] == 1  # the one version: the window was never reset
        assert (model["baseline_accuracy"], model["accuracy"], model["accuracy_scored"]) == (1.0, 0.0, WINDOW)
        assert (health["accuracy_model"], health["baseline_accuracy"], health["accuracy"]) == ("logit", 1.0, 0.0)
        assert health["degraded"] is False and health["drifted"] == []  # no drift: only the accuracy fell
        assert model["state"] == "ready" and model["in_vote"] is True
        metrics = runtime_get(running.state_dir, "btc-model", "/metrics").text
        assert 'slsbot_runtime_model_accuracy{model="logit"} 0.0' in metrics
        assert 'slsbot_runtime_model_baseline_accuracy{model="logit"} 1.0' in metrics

        with running.client() as client:
            incidents = client.get("/api/v1/incidents").json()
            events = client.get("/api/v1/events", params={"name": "btc-model", "limit": 200}).json()
        (incident,) = [i for i in incidents if i["spec"]["rule"] == "ModelAccuracy"]
        spec = incident["spec"]
        assert spec["severity"] == 2 and spec["runbook"] == "runbooks/model-accuracy.md"
        assert "Strategy/btc-model" in spec["objects"]
        assert spec["message"] == (
            "model logit: live accuracy fell from 1.000 (holdout at training) to 0.000 (rule: a drop of 1)"
        )
        assert incident["status"]["state"] == "open"

        healing = condition(degraded, "Healing")
        assert healing["status"] == "True" and "ModelAccuracy" in healing["message"]
        assert degraded["phase"] == "Degraded"
        warnings = [e for e in events if e["reason"] == "ModelDegraded_SafeMode"]
        assert len(warnings) == 1 and warnings[0]["type"] == "Warning", events
        assert not [e for e in events if e["reason"] == "ReconcileError"], events
        pushed = kit.wait_for(
            lambda: (s := runtime_status(running.state_dir, "btc-model"))["trading_mode"] == "safe" and s,
            timeout=10,
            what="safe mode in force in the runtime",
        )
        assert "ModelDegraded" in pushed["trading_mode_reason"] or "ModelAccuracy" in pushed["trading_mode_reason"]
        assert degraded["restarts"] == 0  # safe mode first: a restart would not bring the accuracy back
    finally:
        assert running.stop() == 0
