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


def test_sma_cross_in_level_mode_is_flat_during_warmup_then_follows_the_averages(run_steps) -> None:
    history = _closes([10, 10, 10, 11, 12, 13, 12, 10, 8, 7])
    component = build_component("sma_cross", 1, {"fast": 2, "slow": 4, "mode": "level"})
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
    component = build_component("sma_cross", 1, {"fast": 1, "slow": 2, "mode": "level"})
    component.on_candle(Candle("T/USDT", 0, 1, 1, 1, 100.0, 1), {})
    signal = component.on_candle(Candle("T/USDT", 1, 1, 1, 1, 50.0, 1), {})
    assert signal.direction == -1.0
    assert 0.99 < signal.confidence <= 1.0


def test_sma_cross_trades_the_crossings_and_not_the_end_of_its_warmup(run_steps) -> None:
    history = _closes([10, 10, 10, 11, 12, 13, 12, 10, 8, 7, 9, 12, 14])
    level, _ = run_steps(build_component("sma_cross", 1, {"fast": 2, "slow": 4, "mode": "level"}), history)
    assert level.tolist() == [0, 0, 0, 1, 1, 1, 1, -1, -1, -1, -1, 1, 1]
    # already above when the slow SMA first exists (candle 3): that is not a crossing; the ones after are
    crossed, confidences = run_steps(build_component("sma_cross", 1, {"fast": 2, "slow": 4}), history)
    assert crossed.tolist() == [0, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0]
    assert confidences[7] > 0 and confidences[11] > 0 and confidences[crossed == 0].sum() == 0
    default = build_component("sma_cross", 1, {"fast": 2, "slow": 4})
    assert default.params.mode == "cross"


def test_a_tie_between_the_averages_keeps_the_side_it_was_on(run_steps) -> None:
    # fast = the close, slow = the mean of the last two: a repeated close is an exact tie
    history = _closes([10, 11, 11, 12, 12, 11, 11, 12])
    level, _ = run_steps(build_component("sma_cross", 1, {"fast": 1, "slow": 2, "mode": "level"}), history)
    assert level.tolist() == [0, 1, 0, 1, 0, -1, 0, 1]
    crossed, _ = run_steps(build_component("sma_cross", 1, {"fast": 1, "slow": 2}), history)
    assert crossed.tolist() == [0, 0, 0, 0, 0, -1, 0, 1]  # above, tie, above again: no crossing


def _crossings_of(level: list[float]) -> list[float]:
    """The crossing rule written out: a non-zero side that differs from the last non-zero side before it."""
    out, last = [], 0.0
    for side in level:
        out.append(side if side and last and side != last else 0.0)
        last = side or last
    return out


@pytest.mark.parametrize(
    ("strategy", "params"),
    [("sma_cross", {}), ("ema_cross", {"fast": 5, "slow": 50}), ("macd_trend", {}), ("macd_trend", {"signal": 4})],
)
def test_every_crossover_component_signals_where_its_level_changes_side_on_real_data(
    market: OHLCV, strategy: str, params: dict, run_steps
) -> None:
    level, level_confidence = run_steps(build_component(strategy, 1, {**params, "mode": "level"}), market)
    crossed, confidence = run_steps(build_component(strategy, 1, params), market)
    assert crossed.tolist() == _crossings_of(level.tolist())
    assert len(market) // 500 < np.count_nonzero(crossed) < np.count_nonzero(level) / 3
    np.testing.assert_array_equal(confidence[crossed != 0], level_confidence[crossed != 0])
    vectorized = build_component(strategy, 1, params).signal_arrays(market, {})
    np.testing.assert_array_equal(crossed, vectorized[0])
