"""Property tests: the vectorized and streaming primitives against naive, obviously-correct versions."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from slsbot_runtime.features.indicators import streaming as live
from slsbot_runtime.features.indicators import vectorized as vec

prices = st.lists(
    st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=120
)
# Series with repeats and long constant stretches, as zero-volume and flat-price data have.
stepped_values = st.lists(st.sampled_from([0.0, 0.0, 0.0, 1.5, 2.0, 1e5]), min_size=1, max_size=120)
windows = st.integers(min_value=1, max_value=30)
# Values on a cent grid: a window's spread is never a rounding error of its neighbours' size.
cents = st.integers(min_value=-1000, max_value=1000).map(lambda v: v / 100)


def _stream(make, values):
    state = make()
    return np.array([state.update(v) for v in values])


def _naive(values, window, stat):
    out = np.full(len(values), np.nan)
    for i in range(window - 1, len(values)):
        out[i] = stat(np.asarray(values[i - window + 1 : i + 1], dtype=float))
    return out


@settings(max_examples=400, deadline=None, database=None)
@given(prices, windows)
def test_rolling_mean_matches_a_naive_mean(values, window) -> None:
    expected = _naive(values, window, lambda w: math.fsum(w) / len(w))
    np.testing.assert_allclose(vec.rolling_mean(np.array(values), window), expected, rtol=1e-12)
    # A running sum is exact to a few ulps of the largest value that passed through its window.
    atol = 1e-12 * max(values)
    np.testing.assert_allclose(_stream(lambda: live.RollingMean(window), values), expected, rtol=1e-12, atol=atol)


@settings(max_examples=400, deadline=None, database=None)
@given(st.one_of(prices, stepped_values), windows)
def test_the_rolling_mean_is_the_rolling_sum_divided_by_the_window_bit_for_bit(values, window) -> None:
    """``RollingMean.update`` has ``RollingSum.update``'s body written out: the two stay the same arithmetic."""
    means, sums = live.RollingMean(window), live.RollingSum(window)
    for value in values:
        mean, total = means.update(value), sums.update(value)
        assert repr(mean) == repr(total / window)


@settings(max_examples=150, deadline=None, database=None)
@given(st.one_of(prices, stepped_values), windows)
def test_rolling_variance_matches_a_two_pass_variance(values, window) -> None:
    expected = _naive(values, window, np.var)
    scale = max(abs(v) for v in values) ** 2
    atol = 1e-12 * scale + 1e-300
    np.testing.assert_allclose(vec.rolling_var(np.array(values), window), expected, rtol=1e-9, atol=atol)

    def var_of(state, v):
        state.update(v)
        return state.var()

    moments = live.RollingMoments(window)
    got = np.array([var_of(moments, v) for v in values])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=atol)


@settings(max_examples=100, deadline=None, database=None)
@given(stepped_values, windows)
def test_a_constant_window_has_exactly_zero_variance_and_zscore(values, window) -> None:
    batch_var = vec.rolling_var(np.array(values), window)
    batch_z = vec.rolling_zscore(np.array(values), window)
    moments = live.RollingMoments(window)
    for i, v in enumerate(values):
        moments.update(v)
        if i >= window - 1 and len(set(values[i - window + 1 : i + 1])) == 1:
            assert batch_var[i] == 0.0 and moments.var() == 0.0
            assert batch_z[i] == 0.0 and moments.zscore(v) == 0.0


@settings(max_examples=150, deadline=None, database=None)
@given(prices, windows)
def test_rolling_extremes_match_builtin_max_and_min(values, window) -> None:
    np.testing.assert_array_equal(vec.rolling_max(np.array(values), window), _naive(values, window, max))
    np.testing.assert_array_equal(_stream(lambda: live.RollingMax(window), values), _naive(values, window, max))
    np.testing.assert_array_equal(_stream(lambda: live.RollingMin(window), values), _naive(values, window, min))


@settings(max_examples=150, deadline=None, database=None)
@given(prices, st.integers(min_value=1, max_value=20))
def test_ema_matches_its_textbook_recursion(values, period) -> None:
    expected = np.full(len(values), np.nan)
    if len(values) >= period:
        expected[period - 1] = y = sum(values[:period]) / period
        alpha = 2.0 / (period + 1)
        for i in range(period, len(values)):
            y = alpha * values[i] + (1 - alpha) * y
            expected[i] = y
    np.testing.assert_allclose(vec.ema(np.array(values), period), expected, rtol=1e-9)
    np.testing.assert_allclose(_stream(lambda: live.Ema(period), values), expected, rtol=1e-9)


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.lists(st.tuples(cents, cents), min_size=2, max_size=80),
    st.integers(min_value=2, max_value=25),
)
def test_rolling_correlation_matches_corrcoef(pairs, window) -> None:
    x = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs])

    def corr(i):
        wx, wy = x[i - window + 1 : i + 1], y[i - window + 1 : i + 1]
        if np.var(wx) <= 1e-30 or np.var(wy) <= 1e-30:
            return 0.0
        return float(np.corrcoef(wx, wy)[0, 1])

    expected = np.full(len(x), np.nan)
    for i in range(window - 1, len(x)):
        expected[i] = corr(i)
    state = live.RollingCorr(window)
    got = np.array([state.update(a, b) for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(vec.rolling_corr(x, y, window), expected, atol=1e-7)
    np.testing.assert_allclose(got, expected, atol=1e-7)


@settings(max_examples=100, deadline=None, database=None)
@given(prices, st.integers(min_value=2, max_value=30))
def test_rolling_slope_matches_polyfit(values, window) -> None:
    expected = _naive(values, window, lambda w: np.polyfit(np.arange(len(w)), w, 1)[0])
    scale = max(values)
    np.testing.assert_allclose(vec.rolling_slope(np.array(values), window), expected, rtol=1e-6, atol=1e-9 * scale)
    np.testing.assert_allclose(
        _stream(lambda: live.RollingSlope(window), values), expected, rtol=1e-6, atol=1e-9 * scale
    )


def test_rsi_is_100_without_losses_and_50_when_nothing_moves() -> None:
    rising = np.arange(1.0, 40.0)
    flat = np.full(40, 7.0)
    assert vec.rsi(rising, 14)[-1] == 100.0
    assert vec.rsi(flat, 14)[-1] == 50.0
    state = live.Rsi(14)
    assert [state.update(v) for v in rising][-1] == 100.0
