"""Market-state features: the same values one candle at a time and over a whole history, on real candles."""

from __future__ import annotations

import math

import numpy as np

from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.monitoring import market_state
from slsbot_runtime.monitoring.market_state import CAP, MARKET_STATE_FEATURES, MarketStateLive


def stepped(history: OHLCV, window: int) -> dict[str, np.ndarray]:
    live, out = MarketStateLive(window), {}
    rows = []
    for i in range(len(history)):
        live.update(history.candle(i), out)
        rows.append(dict(out))
    return {name: np.array([row[name] for row in rows]) for name in MARKET_STATE_FEATURES}


def test_incremental_values_equal_the_vectorized_ones_on_real_candles(market: OHLCV) -> None:
    batch = market_state.compute(market, 168)
    live = stepped(market, 168)
    for name in MARKET_STATE_FEATURES:
        np.testing.assert_array_equal(np.isnan(live[name]), np.isnan(batch[name]), err_msg=f"{name}: NaN pattern")
        np.testing.assert_allclose(live[name], batch[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_every_feature_is_defined_from_the_warmup_on(btc_2024: OHLCV) -> None:
    for window in (24, 168):
        values = market_state.compute(btc_2024, window)
        first = {name: int(np.flatnonzero(~np.isnan(values[name]))[0]) for name in MARKET_STATE_FEATURES}
        assert max(first.values()) == market_state.warmup(window) - 1
        for name in MARKET_STATE_FEATURES:
            assert np.isfinite(values[name][market_state.warmup(window) - 1 :]).all(), name


def test_a_candle_is_measured_against_the_candles_before_it_not_itself() -> None:
    window = 10
    flat = [Candle("X/USDT", i, 100.0 + i % 2, 101.0 + i % 2, 99.0 + i % 2, 100.0 + i % 2, 10.0) for i in range(30)]
    spike = Candle("X/USDT", 30, 100.0, 130.0, 99.0, 125.0, 100.0)  # volume x10, a 23% jump, a 27% range
    live, out = MarketStateLive(window), {}
    for candle in flat:
        live.update(candle, out)
    live.update(spike, out)
    assert out["volume_spike"] == math.log1p(10.0)  # the window's mean volume is 10: the spike is not in it
    usual_range = np.mean([math.log(c.high / c.low) for c in flat[-window:]])
    assert math.isclose(out["range_anomaly"], math.log(130.0 / 99.0) / usual_range, rel_tol=1e-12)
    returns = [math.log(flat[i].close / flat[i - 1].close) for i in range(len(flat) - window, len(flat))]
    assert math.isclose(out["volatility_jump"], abs(math.log(125.0 / 101.0)) / np.std(returns), rel_tol=1e-12)


def test_a_market_that_traded_nothing_reads_neutral_and_a_flat_one_caps_any_move(mark_klines: OHLCV) -> None:
    values = market_state.compute(mark_klines, 24)
    assert np.nanmax(values["volume_spike"]) == 0.0  # mark-price candles have volume 0: no spike, ever
    flat = OHLCV(
        "X/USDT",
        np.arange(40, dtype=np.int64),
        *(np.full(40, 100.0) for _ in range(4)),
        np.full(40, 5.0),
    )
    flat.close[-1] = flat.high[-1] = 101.0
    values = market_state.compute(flat, 24)
    assert values["volatility_jump"][-2] == 0.0  # no move on a flat baseline
    assert values["volatility_jump"][-1] == CAP  # any move on it: capped, never infinite
    assert values["range_anomaly"][-1] == CAP
