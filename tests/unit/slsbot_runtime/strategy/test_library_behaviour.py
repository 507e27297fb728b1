"""What each library component does on small hand-built price paths."""

from __future__ import annotations

import numpy as np
import pytest

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy.registry import LIBRARY, build_component


def _path(closes: list[float], spread: float = 0.001) -> OHLCV:
    close = np.asarray(closes, dtype=float)
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    ts = np.arange(len(close), dtype=np.int64) * 3_600_000
    return OHLCV("T/USDT", ts, open_, high, low, close, np.ones(len(close)))


def _directions(strategy: str, params: dict, closes: list[float], run_steps, spread: float = 0.001) -> list[float]:
    history = _path(closes, spread)
    directions, _ = run_steps(build_component(strategy, 1, params), history)
    batch, _ = build_component(strategy, 1, params).signal_arrays(history, {})
    assert directions.tolist() == batch.tolist()
    return directions.tolist()


def test_ema_cross_follows_a_rise_then_a_fall(run_steps) -> None:
    closes = [100.0] * 5 + [100 + 2 * i for i in range(1, 16)] + [130 - 3 * i for i in range(1, 16)]
    d = _directions("ema_cross", {"fast": 3, "slow": 8, "mode": "level"}, closes, run_steps)
    assert d[:7] == [0.0] * 7
    assert d[19] == 1.0 and d[-1] == -1.0
    # crossings: the rise starts from a tie, not from below, so only the fall through the slow EMA is one
    crossed = _directions("ema_cross", {"fast": 3, "slow": 8}, closes, run_steps)
    first_below = d.index(-1.0)
    assert [(i, x) for i, x in enumerate(crossed) if x] == [(first_below, -1.0)]


def test_macd_trend_is_long_while_the_rise_accelerates(run_steps) -> None:
    closes = [100 + 0.05 * i * i for i in range(60)]
    d = _directions("macd_trend", {"fast": 4, "slow": 10, "signal": 3, "mode": "level"}, closes, run_steps)
    assert d[:11] == [0.0] * 11 and set(d[20:]) == {1.0}
    # above its signal line from the end of the warmup on: never a crossing
    assert not any(_directions("macd_trend", {"fast": 4, "slow": 10, "signal": 3}, closes, run_steps))


def test_rsi_reversion_buys_a_slump_and_leaves_when_rsi_recovers(run_steps) -> None:
    closes = [100.0, 101.0] * 5 + [100 - 3 * i for i in range(1, 6)] + [85 + 4 * i for i in range(1, 8)]
    d = _directions("rsi_reversion", {"period": 4, "oversold": 30, "exit": 50, "overbought": 70}, closes, run_steps)
    slump = d.index(1.0)
    assert 10 <= slump < 15
    assert d[-1] == -1.0 or d[-1] == 0.0
    assert 0.0 in d[slump:] or -1.0 in d[slump:]


def test_bollinger_reversion_buys_below_the_band_and_exits_at_the_middle(run_steps) -> None:
    closes = [100.0, 101.0] * 10 + [90.0, 91.0, 95.0, 100.0, 101.0]
    d = _directions("bollinger_reversion", {"period": 10, "num_std": 2.0}, closes, run_steps)
    assert d[19] == 0.0 and d[20] == 1.0 and d[21] == 1.0
    assert d[-1] == 0.0


def test_zscore_reversion_fades_an_unusual_drop(run_steps) -> None:
    rng = np.random.default_rng(7)
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.002, 80))))
    closes += [closes[-1] * 0.9]
    d = _directions("zscore_reversion", {"horizon": 1, "period": 40, "entry": 3.0, "exit": 0.5}, closes, run_steps)
    assert d[-1] == 1.0 and set(d[:-1]) <= {0.0, 1.0, -1.0}


def test_donchian_breakout_enters_on_a_new_high_and_exits_on_a_new_low(run_steps) -> None:
    closes = [100.0, 101.0, 100.0, 101.0, 100.0, 104.0, 105.0, 103.0, 95.0]
    d = _directions("donchian_breakout", {"entry": 4, "exit": 2}, closes, run_steps, spread=0.0)
    assert d == [0, 0, 0, 0, 0, 1, 1, 1, -1]


def test_keltner_breakout_holds_a_jump_until_the_close_falls_below_the_ema(run_steps) -> None:
    closes = [100.0] * 12 + [110.0, 111.0, 112.0, 100.0]
    d = _directions("keltner_breakout", {"period": 5, "atr_period": 5, "multiplier": 2.0}, closes, run_steps)
    assert d[11] == 0.0 and d[12] == 1.0 and d[14] == 1.0 and d[15] == 0.0


def test_roc_momentum_needs_the_threshold(run_steps) -> None:
    closes = [100.0, 100.5, 101.0, 103.0, 100.0]
    d = _directions("roc_momentum", {"period": 1, "threshold": 0.01}, closes, run_steps)
    assert d == [0.0, 0.0, 0.0, 1.0, -1.0]


def test_dual_momentum_is_flat_when_the_horizons_disagree(run_steps) -> None:
    closes = [100, 101, 102, 103, 104, 105, 104, 103]
    d = _directions("dual_momentum", {"fast": 1, "slow": 4}, closes, run_steps)
    assert d == [0, 0, 0, 0, 1, 1, 0, 0]


def test_atr_volatility_breakout_holds_for_the_given_candles_with_fading_confidence(run_steps) -> None:
    closes = [100.0, 100.2] * 10 + [106.0] + [106.0] * 6
    history = _path(closes)
    component = build_component("atr_volatility_breakout", 1, {"period": 5, "multiplier": 2.0, "hold": 4})
    directions, confidences = run_steps(component, history)
    assert directions[20:].tolist() == [1, 1, 1, 1, 0, 0, 0]
    assert confidences[20:24].tolist() == [1.0, 0.75, 0.5, 0.25]


def test_volatility_regime_trades_the_trend_only_when_calm(run_steps) -> None:
    turbulent_then_calm = [100 * (1.05 if i % 2 else 0.96) ** (i % 2) for i in range(30)]
    calm_rise = [turbulent_then_calm[-1] * (1.001**i) for i in range(1, 40)]
    d = _directions(
        "volatility_regime", {"fast": 5, "slow": 20, "trend": 10}, turbulent_then_calm + calm_rise, run_steps
    )
    assert not any(d[:21])
    assert d[-1] == 1.0


@pytest.mark.parametrize(
    ("strategy", "params", "field"),
    [
        ("ema_cross", {"fast": 30, "slow": 20}, "slow"),
        ("macd_trend", {"fast": 26, "slow": 12}, "slow"),
        ("rsi_reversion", {"oversold": 60}, "exit"),
        ("rsi_reversion", {"overbought": 40}, "overbought"),
        ("bollinger_reversion", {"num_std": 1.0, "exit_z": 1.5}, "exit_z"),
        ("zscore_reversion", {"entry": 1.0, "exit": 1.0}, "exit"),
        ("donchian_breakout", {"entry": 0}, "entry"),
        ("keltner_breakout", {"multiplier": -1}, "multiplier"),
        ("roc_momentum", {"threshold": -0.1}, "threshold"),
        ("dual_momentum", {"fast": 10, "slow": 5}, "slow"),
        ("atr_volatility_breakout", {"hold": 0}, "hold"),
        ("volatility_regime", {"fast": 50, "slow": 20}, "slow"),
    ],
)
def test_inconsistent_params_name_the_field(strategy: str, params: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"ensemble\.members\[m\]\.params\.{field}: "):
        build_component(strategy, 1, params, name="m")


def test_every_component_documents_itself() -> None:
    for component in LIBRARY.components():
        assert component.__doc__ and "Confidence" in component.__doc__, component.id
