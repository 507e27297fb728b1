"""How ``app`` wires a Strategy's anomaly model: each symbol's decider scores candles with its own monitor, a model
the runtime cannot run is refused naming the field, and a live runtime reads history enough to fit it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import build_deciders, config_problems, history_candles
from slsbot_runtime.engine.signals import AnomalyScoringDecider, EnsembleDecider

REPO = Path(__file__).resolve().parents[3]


def config(*models: dict[str, Any], warmup: int = 50) -> RuntimeConfig:
    return RuntimeConfig.model_validate(
        {
            "name": "wiring",
            "account": {"name": "acct", "exchange": "binance"},
            "symbols": ["BTC/USDT", "ETH/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            "ml": {"models": list(models)},
            "marketData": {"dataDir": str(REPO / "data/market/binance-spot-1h-2024"), "warmupCandles": warmup},
        }
    )


ANOMALY = {"name": "odd", "kind": "isolationForest", "role": "anomaly", "lookback": 1000, "retrainEvery": "24h"}


def test_each_symbol_gets_its_own_anomaly_monitor() -> None:
    deciders = build_deciders(config(ANOMALY))
    assert all(isinstance(d, AnomalyScoringDecider) for d in deciders.values())
    assert [d.monitor.symbol for d in deciders.values()] == ["BTC/USDT", "ETH/USDT"]
    assert deciders["BTC/USDT"].monitor is not deciders["ETH/USDT"].monitor
    assert all(isinstance(d, EnsembleDecider) for d in build_deciders(config()).values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"params": {"maxSamples": 8}}, "ml.models[odd].params.maxSamples: Input should be greater than or equal"),
        ({"features": ["rsi_141"]}, "ml.models[odd].features: unknown feature(s) 'rsi_141' (did you mean rsi_14?)"),
        ({"retrainEvery": "10m"}, "ml.models[odd].retrainEvery: 10m is shorter than one candle (3600s)"),
    ],
)
def test_an_anomaly_model_the_runtime_cannot_run_is_refused_naming_the_field(change, message) -> None:
    [problem] = config_problems(config({**ANOMALY, **change}))
    assert problem.startswith(message)


def test_a_live_runtime_reads_the_lookback_and_a_retrain_period_before_the_cursor() -> None:
    assert history_candles(config(warmup=50)) == 50
    # market-state warmup (168 + 2) + 1,000 rows + one 24 h period of 1 h candles
    assert history_candles(config(ANOMALY, warmup=50)) == 170 + 1000 + 24
    assert history_candles(config(ANOMALY, warmup=5000)) == 5000
