"""A real runtime's model drifts under ``slsbot up``: the ladder's ModelDegraded rung puts it in safe mode at once
(a restart cannot cure drift), and it comes back by itself once the drift has passed.

The candles are made so that it happens for sure. The model (a logistic regression on ``logret_1``, ``horizon`` 1) is
trained at its one retrain point on 400 calm candles (moves of 0.3-1 %). After it, the moves grow 1.2 % a candle for
300 candles, then keep their size for 500 more. Drift is judged after 300 predictions of a version (``MIN_LIVE``): at
the 300th the output's PSI is far above ``ml.driftThreshold: 0.2``; the runtime takes the model out of the vote and
retrains it (version 2), but the newest moves are larger than any it was retrained on, so the features' PSI stays
above the threshold (``health.models.drifted``): the ladder classifies ModelDegraded, drifted, and puts the runtime in
safe mode without a restart. 300 predictions later the runtime retrains again (on moves of the size they keep now),
and some 60 candles after that the live window of ``logret_1`` is within the threshold of that version's reference:
the drift has passed, the runtime is healthy, and after ``recoverAfter`` it trades normally again. The Strategy is
paused, so no trade (a drawdown, slippage) brings another incident into it. The bank's own test
(``tests/unit/slsbot_runtime/ml/test_bank.py``) runs candles made the same way in-process, and through a restart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.integration.supervisor.manifests import PAPER_ACCOUNT
from tests.integration.supervisor.model_runtime import condition, runtime_status

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # in make test-long: 20-35 s

HOUR_MS = 3_600_000
RETRAIN_EVERY_H = 2160  # 90 days: one retrain point in the data
FIRST_POINT_MS = 220 * RETRAIN_EVERY_H * HOUR_MS  # 2024-03-18T00:00Z, a multiple of retrainEvery
CALM, GROWING, WILD = 400, 300, 500  # candles before the retrain point, then of growing moves, then of wild ones
GROWTH = 1.012  # per candle
THRESHOLD = 0.2

POLICY = (
    """\
apiVersion: slsbot.io/v1alpha1
kind: RiskPolicy
metadata: {name: local-risk}
spec:
  # the replay waits for the retrains: a busy machine's pause is not a dead feed; back 3 s after the drift passed
  healing: {staleAfterMin: 60s, recoverAfter: 3s}
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
  paused: true  # the models run, no position is opened
  symbols: [BTC/USDT]
  timeframe: 1h
  ensemble:
    members:
      - {name: sma, strategy: sma_cross, params: {fast: 5, slow: 15}}
  ml:
    models:
      - {name: logit, kind: logisticRegression, features: [logret_1], lookback: 320, retrainEvery: %(every)dh,
         horizon: 1, embargo: 1}
    driftThreshold: %(threshold)s
  marketData: {source: replay, dataDir: %(data)s, secondsPerCandle: 0.01, warmupCandles: 20}
"""


def write_candles(folder: Path, seed: int = 5) -> None:
    """BTC/USDT 1h candles: calm, then moves growing, then wild (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    n = CALM + GROWING + WILD
    grown = np.clip(np.arange(n) - CALM, 0, GROWING)
    size = rng.uniform(0.003, 0.01, n) * GROWTH**grown
    moves = np.where(rng.random(n) < 0.5, size, -size)
    moves[0] = 0.0
    close = 100.0 * np.exp(np.cumsum(moves))
    open_ = np.concatenate([[100.0], close[:-1]])
    ts = FIRST_POINT_MS - CALM * HOUR_MS + np.arange(n) * HOUR_MS
    rows = [
        [int(ts[i]), open_[i], max(open_[i], close[i]) * 1.001, min(open_[i], close[i]) * 0.999, close[i], 500.0]
        for i in range(n)
    ]
    folder.mkdir(parents=True)
    (folder / "BTC_USDT-1h.json").write_text(json.dumps(rows))


def test_a_drifted_model_puts_the_runtime_in_safe_mode_without_a_restart_and_it_recovers_once_the_drift_passes(
    kit: Any, tmp_path: Path, secret_scan: Any
) -> None:
    data = tmp_path / "candles"
    write_candles(data)
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "10-account.yaml").write_text(POLICY)
    (folder / "30-btc-model.yaml").write_text(
        STRATEGY % {"every": RETRAIN_EVERY_H, "threshold": THRESHOLD, "data": data}
    )
    running = kit.start(folder, tmp_path / "state", kit.environment(SLSBOT_ADMIN_TOKEN=kit.operator_token))
    seen: dict[str, Any] = {"reasons": []}  # what the runtime and the ladder showed, in order

    def watch() -> dict[str, Any] | None:
        strategy = running.strategies().get("btc-model")
        if strategy is None:
            return None
        reason = condition(strategy, "Healing").get("reason")
        if reason and reason not in seen["reasons"]:
            seen["reasons"].append(reason)
        if condition(strategy, "Ready").get("status") == "True":
            try:
                status = runtime_status(running.state_dir, "btc-model")
            except httpx.TransportError:  # restarted meanwhile (what the ladder must not do for drift)
                return None
            if status["health"]["models"]["drifted"] and "drifted" not in seen:
                seen["drifted"] = status
            if status["trading_mode"] == "safe" and "safe" not in seen:
                seen["safe"] = status
        return strategy if reason == "Recovered" else None

    try:
        recovered = kit.wait_for(watch, timeout=90, interval=0.1, what="safe mode for the drift, then back")
        status = runtime_status(running.state_dir, "btc-model")
        with running.client() as client:
            events = client.get("/api/v1/events", params={"name": "btc-model", "limit": 200}).json()
            incidents = client.get("/api/v1/incidents").json()
    finally:
        assert running.stop() == 0
    for snapshot in (seen.get("drifted"), seen.get("safe"), status):
        secret_scan.observe(json.dumps(snapshot), where="the runtime's /status")

    # the drift as the runtime reported it: the model's drift entry and the health block agree
    drifted = seen.get("drifted")
    assert drifted is not None, seen["reasons"]
    drift, model = drifted["drift"]["logit"], drifted["models"]["logit"]
    assert drift["drifted"] is True and drift["threshold"] == THRESHOLD
    assert drift["version"] == f"logit@{model['trained_at']}"  # judged against the version in use
    over = [s for s in drift["series"] if s["drifted"]]
    assert over and all(s["psi"] > THRESHOLD for s in over), drift["series"]
    health = drifted["health"]["models"]
    assert health["degraded"] is True and health["drifted"] == ["logit"]
    assert model["version"] >= 2 and model["retrains"] >= 2  # the runtime retrained it itself, early

    # the ladder: ModelDegraded straight to safe mode, no restart; then back once healthy for recoverAfter
    assert seen["reasons"] == ["ModelDegraded_SafeMode", "Recovered"]
    warnings = [e for e in events if e["reason"].startswith("ModelDegraded_")]
    assert [(e["reason"], e["type"]) for e in warnings] == [("ModelDegraded_SafeMode", "Warning")], events
    assert "drifted: logit" in warnings[0]["message"]
    assert not [e for e in events if e["reason"] in ("HealingRestart", "ReconcileError")], events
    safe = seen.get("safe")
    assert safe is not None and "ModelDegraded" in safe["trading_mode_reason"]
    assert [e["type"] for e in events if e["reason"] in ("Healthy", "Recovered")] == ["Normal", "Normal"], events
    assert recovered["restarts"] == 0 and condition(recovered, "Healing")["status"] == "False"
    assert recovered["phase"] == "Paused"  # as the Strategy says: not Degraded any more
    assert not [i for i in incidents if i["spec"]["rule"].startswith("Healing")]

    # back: normal trading pushed, the drift within the threshold of the version the runtime retrained
    assert status["trading_mode"] == "normal"
    assert status["health"]["models"]["degraded"] is False and status["health"]["models"]["drifted"] == []
    assert status["drift"]["logit"]["drifted"] is False
    assert all(s["psi"] is None or s["psi"] <= THRESHOLD for s in status["drift"]["logit"]["series"])
    assert status["models"]["logit"]["state"] == "ready" and status["models"]["logit"]["in_vote"] is True
