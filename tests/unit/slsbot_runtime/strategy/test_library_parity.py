"""Every library component: on_candle and signal_arrays agree on real recorded candles."""

from __future__ import annotations

import numpy as np
import pytest

from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy.registry import LIBRARY

# A second parameter set per component, away from the defaults, so parity is not a property of one choice (the
# crossover components' second set is in level mode, their defaults trade crossings).
OTHER_PARAMS = {
    "sma_cross": {"fast": 3, "slow": 7, "mode": "level"},
    "ema_cross": {"fast": 5, "slow": 50, "mode": "level"},
    "macd_trend": {"fast": 6, "slow": 19, "signal": 4, "mode": "level"},
    "rsi_reversion": {"period": 6, "oversold": 20, "exit": 45, "overbought": 85},
    "bollinger_reversion": {"period": 50, "num_std": 1.5, "exit_z": 0.5},
    "zscore_reversion": {"horizon": 6, "period": 48, "entry": 1.5, "exit": 0.0},
    "donchian_breakout": {"entry": 55, "exit": 20},
    "keltner_breakout": {"period": 10, "atr_period": 20, "multiplier": 1.0},
    "roc_momentum": {"period": 48, "threshold": 0.01},
    "dual_momentum": {"fast": 6, "slow": 72, "threshold": 0.005},
    "atr_volatility_breakout": {"period": 7, "multiplier": 1.0, "hold": 5},
    "volatility_regime": {"fast": 12, "slow": 96, "ratio": 1.2, "trend": 24},
}


def test_every_library_component_has_a_second_parameter_set_here() -> None:
    assert set(OTHER_PARAMS) == set(LIBRARY.ids)
    assert len(LIBRARY.ids) >= 10


@pytest.mark.parametrize("strategy", sorted(OTHER_PARAMS))
@pytest.mark.parametrize("which", ["defaults", "other"])
def test_step_and_vectorized_signals_agree(market: OHLCV, strategy: str, which: str, run_steps) -> None:
    params = {} if which == "defaults" else OTHER_PARAMS[strategy]
    stepped_component = LIBRARY.build(strategy, 1, params)
    directions, confidences = run_steps(stepped_component, market)
    vectorized = LIBRARY.build(strategy, 1, params)
    batch_directions, batch_confidences = vectorized.signal_arrays(market, {})

    np.testing.assert_array_equal(directions, batch_directions)
    np.testing.assert_allclose(confidences, batch_confidences, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(vectorized.signals(market, {}), batch_directions)
    assert set(np.unique(directions)) <= {-1.0, 0.0, 1.0}
    assert ((confidences >= 0) & (confidences <= 1)).all()
    assert (confidences[directions == 0] == 0).all()
    warmup = stepped_component.warmup
    assert not directions[: warmup - 1].any(), f"{strategy} signals before its warmup of {warmup}"
    if len(market) > 5_000:
        assert directions.any(), f"{strategy} never signals on {len(market)} real candles"
