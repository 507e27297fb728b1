"""The volatility halt over a whole history equals the risk manager's own halt, candle by candle, on real candles,
including a candle whose z-score sits exactly on the threshold (decided by the halt's exact windows)."""

from __future__ import annotations

import numpy as np
import pytest

from slsbot.api.riskpolicy import VolatilityHalt as VolatilityHaltSpec
from slsbot_runtime.backtest.volatility_mask import approximate_zscores, volatility_halts
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.risk.volatility import SymbolVolatility, VolatilityHalt

H = 3_600_000


def _live(ts: np.ndarray, close: np.ndarray, spec: VolatilityHaltSpec, symbol: str = "X/USDT") -> list[bool]:
    """What the risk manager's halt says after each candle, fed one candle at a time as the loop feeds it."""
    halt = VolatilityHalt.from_spec(spec)
    out = []
    for t, c in zip(ts.tolist(), close.tolist(), strict=True):
        halt.observe(t, {symbol: c})
        out.append(halt.halted_until(symbol, t) is not None)
    return out


@pytest.fixture(scope="module")
def doge(market_data_dir):
    return load_history(market_data_dir / "binance-spot-1h-2024", "DOGE/USDT", "1h", interval_ms=H)


@pytest.mark.parametrize(
    ("window", "threshold", "cooldown"), [(24, 4.0, "6h"), (12, 2.5, "3h"), (48, 3.0, "0s"), (2, 1.0, "1h")]
)
def test_the_mask_is_the_halts_verdict_after_every_candle(doge, window, threshold, cooldown):
    spec = VolatilityHaltSpec(window=window, zscore_threshold=threshold, cooldown=cooldown)
    mask = volatility_halts(doge.ts, doge.close, spec)
    expected = _live(doge.ts, doge.close, spec)
    assert mask.tolist() == expected
    if cooldown != "0s":
        assert 0 < sum(expected) < len(expected) / 5, "the halt must come and go"


def test_a_zscore_exactly_on_the_threshold_is_not_above_it(doge):
    """Take the exact z-score the halt computes at one candle as the threshold: that candle is not above it (the
    halt asks for more), a hair lower it is. The approximate z-score cannot tell; the halt's own windows do."""
    spec = VolatilityHaltSpec(window=24, zscore_threshold=4.0, cooldown="1h")
    halt = VolatilityHalt.from_spec(spec)
    state = SymbolVolatility(24, int(doge.ts[0]), float(doge.close[0]))
    zscores = []
    for t, c in zip(doge.ts[1:6000].tolist(), doge.close[1:6000].tolist(), strict=True):
        state.observe(t, c, halt.threshold, halt.cooldown_ms)
        zscores.append(state.zscore)
    candle = 1 + int(np.nanargmax(np.array([z if z is not None else np.nan for z in zscores[1000:]]))) + 1000
    exact = zscores[candle - 1]
    assert exact is not None and exact > 2.0
    for threshold in (exact, np.nextafter(exact, 0.0)):
        spec = VolatilityHaltSpec(window=24, zscore_threshold=float(threshold), cooldown="1h")
        mask = volatility_halts(doge.ts, doge.close, spec)
        assert mask.tolist() == _live(doge.ts, doge.close, spec)
        assert bool(mask[candle]) == (threshold < exact)


def test_a_disabled_halt_or_a_short_history_halts_nothing(doge):
    assert not volatility_halts(doge.ts, doge.close, VolatilityHaltSpec(enabled=False)).any()
    assert volatility_halts(doge.ts[:1], doge.close[:1], VolatilityHaltSpec()).tolist() == [False]
    short = VolatilityHaltSpec(window=24)
    assert volatility_halts(doge.ts[:100], doge.close[:100], short).tolist() == _live(
        doge.ts[:100], doge.close[:100], short
    )


def test_where_numpys_zscore_and_the_halts_round_to_different_sides_the_halt_decides(doge):
    """Find a candle whose numpy z-score differs from the halt's exact one in the last bits, and put the threshold
    between the two: numpy alone would decide that candle wrongly; the mask does not."""
    halt = VolatilityHalt.from_spec(VolatilityHaltSpec(window=24))
    state = SymbolVolatility(24, int(doge.ts[0]), float(doge.close[0]))
    approximate, tolerance = approximate_zscores(doge.close, 24)
    for candle in range(1, len(doge)):
        state.observe(int(doge.ts[candle]), float(doge.close[candle]), halt.threshold, halt.cooldown_ms)
        z = approximate[candle]
        if not np.isnan(z) and z != state.zscore and state.zscore > 1.0:
            break
    else:
        pytest.fail("no candle where numpy rounds differently: the test needs one")
    low = min(z, state.zscore)
    spec = VolatilityHaltSpec(window=24, zscore_threshold=float(low), cooldown="1h")
    mask = volatility_halts(doge.ts, doge.close, spec)
    assert bool(mask[candle]) == (state.zscore > low) != (z > low)
    assert mask.tolist() == _live(doge.ts, doge.close, spec)
    assert abs(z - state.zscore) <= tolerance[candle]  # the bound holds
