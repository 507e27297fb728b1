"""Small model specs over real recorded candles for the ml tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slsbot.api.strategy import MLModel
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.ml.training import ModelSpec

FEATURES = ["logret_1", "logret_6", "rsi_14", "macd_hist", "realized_vol_24", "bb_pctb_20"]


def spec(name: str, kind: str, **fields: object) -> ModelSpec:
    small = {"gradientBoosting": {"max_iter": 15}, "randomForest": {"n_estimators": 15}}.get(kind, {})
    values: dict[str, object] = {
        "name": name,
        "kind": kind,
        "lookback": 400,
        "retrainEvery": "120h",
        "horizon": 2,
        "embargo": 2,
        "params": small,
        **fields,
    }
    if kind != "stacking":
        values.setdefault("features", FEATURES)
    return ModelSpec.from_api(MLModel.model_validate(values))


@pytest.fixture(scope="session")
def model_specs() -> list[ModelSpec]:
    return [
        spec("gbm", "gradientBoosting"),
        spec("logit", "logisticRegression"),
        spec("stack", "stacking", inputs=["gbm", "logit"]),
    ]


@pytest.fixture(scope="session")
def eth_2024() -> OHLCV:
    path = Path(__file__).resolve().parents[4] / "data" / "market" / "binance-spot-1h-2024" / "ETH_USDT-1h.feather"
    frame = pd.read_feather(path)
    ts = frame["date"].astype("datetime64[ns, UTC]").array.asi8 // 1_000_000
    columns = [frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")]
    return OHLCV("ETH/USDT", np.asarray(ts, dtype=np.int64), *columns)
