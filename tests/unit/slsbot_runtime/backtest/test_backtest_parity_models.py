"""With models in the ensemble, fast mode gives exactly the step mode's trades and equity on real candles: both retrain
at the same points on the same candles (step mode in the training process, fast mode in-process), and the models
vote with the live features in both."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from slsbot.api import RuntimeConfig
from slsbot_runtime.backtest.fast import run_fast
from slsbot_runtime.backtest.inputs import BacktestWindow, backtest_config, load_window
from slsbot_runtime.backtest.step import run_step
from slsbot_runtime.ml.wiring import build_model_bank

REPO = Path(__file__).resolve().parents[4]
WINDOW = BacktestWindow(datetime(2024, 9, 15, tzinfo=UTC), datetime(2024, 11, 10, tzinfo=UTC))


def _config(**ml: object) -> RuntimeConfig:
    raw = yaml.safe_load((REPO / "examples/backtest/models-btc-eth.yaml").read_text())
    raw["marketData"]["dataDir"] = str(REPO / "data/market/binance-spot-1h-2024")
    for model in raw["ml"]["models"]:
        model.update({"lookback": 400, "retrainEvery": "96h", **ml})
        if model["kind"] == "gradientBoosting":
            model["params"] = {"max_iter": 15}
        if model["kind"] == "randomForest":
            model["params"] = {"n_estimators": 15}
    return RuntimeConfig.model_validate(raw)


@pytest.mark.slow
def test_fast_and_step_trade_the_same_with_models_retrained_as_they_walk_forward() -> None:
    config = backtest_config(_config(), data_dir=None, window=WINDOW)
    histories = load_window(config, WINDOW)
    step = run_step(config, histories)
    reports: list[tuple[int, int]] = []
    fast = run_fast(config, histories, progress=lambda done, total: reports.append((done, total)))
    assert len(fast.fills) > 10
    # a progress bar moves while the models retrain and predict (the first half), then through the events
    shares = [done / total for done, total in reports]
    assert shares == sorted(shares) and shares[-1] == 1.0
    assert {total for _, total in reports} == {2 * len(fast.candle_ts)}  # one bar: a new total would start another
    assert len([share for share in shares if share < 0.5]) >= 3
    assert fast.fills == step.fills
    assert np.array_equal(fast.candle_ts, step.candle_ts)
    assert np.array_equal(fast.equity, step.equity)  # bit for bit
    # the models did vote, and changed what was traded
    bank = build_model_bank(config, fast=True)
    assert bank is not None
    bank.run_batch(histories)
    for name, record in bank.models.items():
        assert record.retrains >= 8, name
        assert bank.vote_mask("BTC/USDT", name).mean() > 0.5, name
    without = config.model_copy(update={"ml": config.ml.model_copy(update={"models": []})})
    assert run_fast(without, histories).fills != fast.fills
