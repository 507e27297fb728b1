"""``slsbot runtime --until-end`` on real candles with an anomaly model: the detector fits in the process, its score
shows in /status and the metrics, it vetoes entries (kept in the state file's risk decisions), and it halts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

THRESHOLD = 0.6


@pytest.mark.long  # about 20-30 s: in make test-long, to keep make test under 15 minutes
def test_a_replay_with_an_anomaly_model_vetoes_entries_and_shows_the_score(
    kit: Any, btc_slice_dir: Path, tmp_path: Path
) -> None:
    config = kit.runtime_config(btc_slice_dir, secondsPerCandle=0.002, warmupCandles=20)
    config["ensemble"]["members"][0]["params"]["mode"] = "level"  # long above, flat below: entries all along
    config["sizing"] = {"method": "fixedQuantity", "quantity": 0.05}
    config["ml"] = {
        "models": [
            {
                "name": "odd-candles",
                "kind": "isolationForest",
                "role": "anomaly",
                "lookback": 500,
                "retrainEvery": "168h",
                "params": {"nEstimators": 50},
            },
        ]
    }
    config["risk"] = {
        "perTrade": {"maxPercent": 100},
        "maxSymbolExposurePercent": 1000,
        "maxTotalExposurePercent": 1000,
        "maxLeverage": 20,
        "dailyLossLimitPercent": 100,
        "maxDrawdownPercent": 100,
        "circuitBreaker": {"levels": []},
        "volatilityHalt": {"enabled": False},
        "anomaly": {"threshold": THRESHOLD, "count": 2, "window": "6h", "cooldown": "6h"},
    }
    runtime = kit.start(kit.write_config(tmp_path, config), tmp_path / "state.db", "--until-end")
    status = kit.wait_for(
        lambda: (s := _status(runtime)) is not None and s.get("anomaly_score") is not None and s,
        timeout=120,
        what="an anomaly score in /status",
    )
    assert 0 < status["anomaly_score"] < 1 and set(status["anomaly_scores"]) == {"BTC/USDT"}
    drift = status["drift"]["odd-candles"]
    assert drift["fits"]["first"] == 1 and drift["threshold"] == 0.2
    assert {series["name"] for series in drift["series"]} == {
        "volume_spike",
        "volatility_jump",
        "price_gap",
        "range_anomaly",
        "output",
    }
    metrics = runtime.get("/metrics").text
    assert re.search(r'^slsbot_runtime_anomaly_score\{symbol="BTC/USDT"\} 0\.\d+$', metrics, re.M)
    assert 'slsbot_runtime_model_fits_total{kind="first",model="odd-candles"} 1.0' in metrics
    assert runtime.wait(timeout=300) == 0
    decisions = kit.report(runtime.state)["risk_decisions"]
    vetoes = [d for d in decisions if d["rule"] == "anomaly"]
    assert len(vetoes) >= 3
    for veto in vetoes:
        score = float(re.match(r"anomaly score (\d\.\d+) of the \S+ candle on BTC/USDT", veto["message"]).group(1))
        assert score > THRESHOLD and veto["action"] == "rejected" and veto["is_entry"] is True
    assert any(any(e["rule"] == "anomaly_halt" for e in d["events"]) for d in decisions)
    assert "entry refused on BTC/USDT (anomaly): anomaly score" in runtime.stderr()


def _status(runtime: Any) -> dict[str, Any] | None:
    try:
        return runtime.status()
    except httpx.HTTPError:  # the replay ended and the process is gone
        return None
