from __future__ import annotations

import numpy as np
import pytest

from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy.registry import build_component


def _closes(values: list[float]) -> OHLCV:
    close = np.asarray(values, dtype=float)
    ts = np.arange(len(close), dtype=np.int64) * 3_600_000
    return OHLCV("T/USDT", ts, close, close, close, close, np.ones(len(close)))


def test_sma_cross_is_flat_during_warmup_then_follows_the_averages(run_steps) -> None:
    history = _closes([10, 10, 10, 11, 12, 13, 12, 10, 8, 7])
    component = build_component("sma_cross", 1, {"fast": 2, "slow": 4})
    directions, confidences = run_steps(component, history)
    # slow SMA exists from the 4th candle: [10,10,10,11] -> fast 10.5 > slow 10.25
    assert directions.tolist() == [0, 0, 0, 1, 1, 1, 1, -1, -1, -1]
    assert np.all((confidences >= 0) & (confidences <= 1))
    assert confidences[0] == 0 and confidences[3] > 0


def test_sma_cross_on_a_constant_price_is_flat_not_noise(run_steps) -> None:
    history = _closes([0.1] * 50)
    directions, _ = run_steps(build_component("sma_cross", 1, {"fast": 3, "slow": 7}), history)
    assert not directions.any()
    vectorized, _ = build_component("sma_cross", 1, {"fast": 3, "slow": 7}).signal_arrays(history, {})
    assert not vectorized.any()


@pytest.mark.parametrize("params", [{}, {"fast": 1, "slow": 2}, {"fast": 24, "slow": 168}])
def test_sma_cross_step_and_vectorized_agree_on_real_data(market: OHLCV, params: dict, run_steps) -> None:
    stepped = run_steps(build_component("sma_cross", 1, params), market)
    vectorized = build_component("sma_cross", 1, params).signal_arrays(market, {})
    np.testing.assert_array_equal(stepped[0], vectorized[0])
    np.testing.assert_allclose(stepped[1], vectorized[1], rtol=1e-9, atol=1e-12)
    assert build_component("sma_cross", 1, params).signals(market, {}).tolist() == vectorized[0].tolist()


def test_sma_cross_returns_signals_in_range() -> None:
    component = build_component("sma_cross", 1, {"fast": 1, "slow": 2})
    component.on_candle(Candle("T/USDT", 0, 1, 1, 1, 100.0, 1), {})
    signal = component.on_candle(Candle("T/USDT", 1, 1, 1, 1, 50.0, 1), {})
    assert signal.direction == -1.0
    assert 0.99 < signal.confidence <= 1.0
