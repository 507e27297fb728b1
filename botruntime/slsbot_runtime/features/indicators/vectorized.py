"""Indicator primitives over whole histories: numpy arrays in, float64 arrays out, NaN while warming up.

Every function here has a twin in ``streaming`` that computes the same value one observation at a time;
the parity tests hold the two together. A value at index t only ever reads inputs at indices <= t.
Rolling moments are O(n) yet do not accumulate rounding error over a long history: cumulative sums run
only within short overlapping segments, on deviations from a local anchor.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: A window whose standard deviation is below this share of its mean (or exactly zero) counts as flat.
FLAT_RELATIVE = 1e-9
#: ... or whose variance is below this absolute floor.
FLAT_ABSOLUTE = 1e-30


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def _as_float(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def is_flat(var: np.ndarray | float, mean: np.ndarray | float) -> np.ndarray | bool:
    """True where a window's variance is too small to divide by (a constant series)."""
    return var <= (FLAT_RELATIVE * np.abs(mean)) ** 2 + FLAT_ABSOLUTE


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` delayed by ``k`` observations (NaN for the first k)."""
    out = _nan(len(x))
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def diff(x: np.ndarray, k: int = 1) -> np.ndarray:
    return _as_float(x) - shift(_as_float(x), k)


def rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    x = _as_float(x)
    out = _nan(len(x))
    if len(x) >= window:
        out[window - 1 :] = sliding_window_view(x, window).sum(axis=1)
    return out


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    return rolling_sum(x, window) / window


def rolling_max(x: np.ndarray, window: int) -> np.ndarray:
    x = _as_float(x)
    out = _nan(len(x))
    if len(x) >= window:
        out[window - 1 :] = sliding_window_view(x, window).max(axis=1)
    return out


def rolling_min(x: np.ndarray, window: int) -> np.ndarray:
    x = _as_float(x)
    out = _nan(len(x))
    if len(x) >= window:
        out[window - 1 :] = sliding_window_view(x, window).min(axis=1)
    return out


def run_lengths(x: np.ndarray) -> np.ndarray:
    """How many times in a row x[i]'s value has come, ending at i (NaN never repeats)."""
    n = len(x)
    index = np.arange(n)
    change = np.ones(n, dtype=bool)
    change[1:] = x[1:] != x[:-1]
    starts = np.maximum.accumulate(np.where(change, index, 0))
    return index - starts + 1


def _leading_nans(x: np.ndarray) -> int:
    """How many NaNs open ``x``; a NaN after the first value is refused (features have none)."""
    valid = np.flatnonzero(~np.isnan(x))
    first = int(valid[0]) if len(valid) else len(x)
    if len(valid) != len(x) - first:
        raise ValueError("rolling statistics accept NaN only before the first value")
    return first


def _segments(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping segments of 2 * window - 1 values, one per block of ``window`` outputs, each minus its
    anchor (the mean of its first window); and the anchors. The window ending at output i of block b is
    columns i..i + window - 1 of segment b."""
    blocks = -(-(len(x) - window + 1) // window)
    length = 2 * window - 1
    padded = np.concatenate([x, np.full(blocks * window + window - 1 - len(x), x[-1])])
    segments = sliding_window_view(padded, length)[::window]
    anchors = segments[:, :window].mean(axis=1)
    return segments - anchors[:, None], anchors


def _window_sums(values: np.ndarray, window: int, count: int) -> np.ndarray:
    """Sum of each window of each segment (see ``_segments``), flattened to ``count`` outputs."""
    sums = np.zeros((values.shape[0], values.shape[1] + 1))
    np.cumsum(values, axis=1, out=sums[:, 1:])
    return (sums[:, window:] - sums[:, :window]).ravel()[:count]


def rolling_moments(x: np.ndarray, window: int) -> tuple[np.ndarray, ...]:
    """Mean, population variance, skewness and excess kurtosis of each window.

    O(n): power sums of deviations from a local anchor, differenced within short segments so rounding
    cannot build up (the same arithmetic as ``streaming.RollingMoments``). A constant window has variance,
    skewness and kurtosis exactly 0; a flat one (``is_flat``) skewness and kurtosis 0.
    """
    x = _as_float(x)
    n = len(x)
    mean, var, skew, kurt = _nan(n), _nan(n), _nan(n), _nan(n)
    first = _leading_nans(x)
    count = n - first - window + 1
    if count <= 0:
        return mean, var, skew, kurt
    body = x[first:]
    dev, anchors = _segments(body, window)
    sq = dev * dev
    e1 = _window_sums(dev, window, count) / window
    e2 = _window_sums(sq, window, count) / window
    e3 = _window_sums(sq * dev, window, count) / window
    e4 = _window_sums(sq * sq, window, count) / window
    anchor = np.repeat(anchors, window)[:count]
    e1sq = e1 * e1
    m2 = np.maximum(e2 - e1sq, 0.0)
    m3 = e3 - 3.0 * e1 * e2 + 2.0 * e1sq * e1
    m4 = e4 - 4.0 * e1 * e3 + 6.0 * e1sq * e2 - 3.0 * e1sq * e1sq
    constant = run_lengths(body)[window - 1 :] >= window
    m2 = np.where(constant, 0.0, m2)
    flat = is_flat(m2, anchor + e1)
    safe = np.where(flat, 1.0, m2)
    at = slice(first + window - 1, n)
    mean[at] = np.where(constant, body[window - 1 :], anchor + e1)
    var[at] = m2
    skew[at] = np.where(flat, 0.0, m3 / safe**1.5)
    kurt[at] = np.where(flat, 0.0, m4 / (safe * safe) - 3.0)
    return mean, var, skew, kurt


def rolling_var(x: np.ndarray, window: int, ddof: int = 0) -> np.ndarray:
    _, var, _, _ = rolling_moments(x, window)
    return var * window / (window - ddof)


def rolling_std(x: np.ndarray, window: int, ddof: int = 0) -> np.ndarray:
    return np.sqrt(rolling_var(x, window, ddof))


def rolling_zscore(x: np.ndarray, window: int) -> np.ndarray:
    """(x - mean) / population std of the window ending at x; 0 where the window is flat."""
    x = _as_float(x)
    mean, var, _, _ = rolling_moments(x, window)
    flat = is_flat(var, mean)
    return np.where(flat, 0.0, (x - mean) / np.sqrt(np.where(flat, 1.0, var)))


def rolling_corr(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Pearson correlation of the pairs in each window; 0 where either side is constant or flat."""
    x, y = _as_float(x), _as_float(y)
    n = len(x)
    out = _nan(n)
    first = max(_leading_nans(x), _leading_nans(y))
    count = n - first - window + 1
    if count <= 0:
        return out
    bx, by = x[first:], y[first:]
    (dx, ax), (dy, ay) = _segments(bx, window), _segments(by, window)
    mx, my = _window_sums(dx, window, count) / window, _window_sums(dy, window, count) / window
    vx = np.maximum(_window_sums(dx * dx, window, count) / window - mx * mx, 0.0)
    vy = np.maximum(_window_sums(dy * dy, window, count) / window - my * my, 0.0)
    cov = _window_sums(dx * dy, window, count) / window - mx * my
    constant = np.maximum(run_lengths(bx), run_lengths(by))[window - 1 :] >= window
    anchor_x, anchor_y = np.repeat(ax, window)[:count], np.repeat(ay, window)[:count]
    flat = constant | is_flat(vx, anchor_x + mx) | is_flat(vy, anchor_y + my)
    out[first + window - 1 :] = np.where(flat, 0.0, cov / np.sqrt(np.where(flat, 1.0, vx * vy)))
    return out


def slope_weights(window: int) -> np.ndarray:
    """Weights whose dot product with a window gives its least-squares slope per observation."""
    centered = np.arange(window, dtype=np.float64) - (window - 1) / 2.0
    return centered / float(np.dot(centered, centered))


def rolling_slope(y: np.ndarray, window: int) -> np.ndarray:
    """Least-squares slope of each window against 0, 1, ..., window-1."""
    y = _as_float(y)
    out = _nan(len(y))
    if len(y) >= window:
        out[window - 1 :] = sliding_window_view(y, window) @ slope_weights(window)
    return out


def ema(x: np.ndarray, period: int, alpha: float | None = None) -> np.ndarray:
    """Exponential moving average seeded with the simple mean of the first ``period`` valid values.

    ``alpha`` defaults to 2 / (period + 1). Leading NaNs are skipped; the seed sits at the period-th valid
    value. After the seed, y[t] = alpha * x[t] + (1 - alpha) * y[t-1].
    """
    x = _as_float(x)
    a = 2.0 / (period + 1.0) if alpha is None else alpha
    out = _nan(len(x))
    valid = np.flatnonzero(~np.isnan(x))
    if len(valid) == 0:
        return out
    first = int(valid[0])
    seed_at = first + period - 1
    if seed_at >= len(x):
        return out
    seed = math.fsum(x[first : seed_at + 1].tolist()) / period
    out[seed_at] = seed
    if seed_at + 1 < len(x):
        from scipy.signal import lfilter  # here, not at the top: it takes ~1.5 s to import, live never needs it

        keep = 1.0 - a
        out[seed_at + 1 :], _ = lfilter([a], [1.0, -keep], x[seed_at + 1 :], zi=[keep * seed])
    return out


def wilder(x: np.ndarray, period: int) -> np.ndarray:
    """Wilder's smoothing (RSI, ATR, ADX): an EMA with alpha = 1 / period."""
    return ema(x, period, alpha=1.0 / period)


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """max(high - low, |high - previous close|, |low - previous close|); high - low for the first candle."""
    high, low, close = _as_float(high), _as_float(low), _as_float(close)
    prev = shift(close, 1)
    tr = high - low
    if len(tr) > 1:
        tr[1:] = np.maximum(tr[1:], np.maximum(np.abs(high[1:] - prev[1:]), np.abs(low[1:] - prev[1:])))
    return tr


def rsi(close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's relative strength index in [0, 100]; 50 while nothing moved, 100 with no losses."""
    change = diff(close)
    gain = np.where(change > 0, change, 0.0)
    loss = np.where(change < 0, -change, 0.0)
    gain[0] = loss[0] = np.nan
    avg_gain, avg_loss = wilder(gain, period), wilder(loss, period)
    return rsi_from_averages(avg_gain, avg_loss)


def rsi_from_averages(avg_gain: np.ndarray, avg_loss: np.ndarray) -> np.ndarray:
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        value = 100.0 * avg_gain / total
    return np.where(total > 0, value, np.where(np.isnan(total), np.nan, 50.0))


def safe_ratio(num: np.ndarray, den: np.ndarray, default: float = 0.0) -> np.ndarray:
    """num / den, ``default`` where den is 0 (NaN stays NaN)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / np.where(den == 0, 1.0, den)
    return np.where(den == 0, default, out)
