"""The volatility halt over a whole history at once, for fast mode: after each candle of one symbol, whether the
risk manager's ``VolatilityHalt`` (``risk.volatility``) would refuse an entry on it.

The halt depends only on the symbol's own closes and times, never on trades, so it can be computed up front. The
step mode's numbers are exact rationals rounded once (``ExactWindow``), so they depend only on the values in their
windows; numpy's are not, so they are used only where they cannot decide differently:

1. the log returns are ``math.log`` of the same ratios, as the halt computes them;
2. every candle's z-score is approximated with numpy (rolling variance of the returns, then the mean and spread of
   the last ``HISTORY_WINDOWS`` windows of it), with a bound on its rounding error a million times wider than
   the error itself;
3. a candle whose approximate z-score lies within that bound of the threshold, or whose history barely moved (a
   spread near 0), is decided by the halt's own ``SymbolVolatility`` replayed over the candles its windows hold;
   so are the first ``HISTORY_WINDOWS + 1`` windows of candles, where the history is still filling.

A candle is halted while an earlier or the same candle's z-score above the threshold is less than ``cooldown``
old (``halted_until``), which is a running maximum.
"""

from __future__ import annotations

import math

import numpy as np

from slsbot.api.riskpolicy import VolatilityHalt as VolatilityHaltSpec
from slsbot_runtime.features.indicators import vectorized as vec
from slsbot_runtime.risk.volatility import HISTORY_WINDOWS, SymbolVolatility, VolatilityHalt

#: How far (relative to the size of the terms) an approximate z-score may be from the threshold and still be trusted
#: to fall on the same side of it; numpy's rounding error is some 1e-13 of them.
Z_TOLERANCE = 1e-7
#: A history whose spread is below this share of its mean is decided by the halt itself (the z-score is unstable).
FLAT_HISTORY = 1e-9


def volatility_halts(ts: np.ndarray, close: np.ndarray, spec: VolatilityHaltSpec) -> np.ndarray:
    """For each candle of one symbol's history (open times ``ts``, closes ``close``), whether the volatility halt
    refuses entries on it after taking in that candle; all False when the halt is disabled."""
    halt = VolatilityHalt.from_spec(spec)
    n = len(close)
    if not halt.enabled or n < 2:
        return np.zeros(n, dtype=bool)
    above = volatility_spikes(ts, close, halt)
    ts = np.asarray(ts, dtype=np.int64)
    last = np.maximum.accumulate(np.where(above, ts, np.iinfo(np.int64).min))
    return (last > np.iinfo(np.int64).min) & (last + halt.cooldown_ms > ts)


def volatility_spikes(ts: np.ndarray, close: np.ndarray, halt: VolatilityHalt) -> np.ndarray:
    """Whether each candle's volatility z-score is above the threshold (the candles that start or extend a halt)."""
    n, window = len(close), halt.window
    history = HISTORY_WINDOWS * window
    exact_until = min(n, history + window + 1)  # before this the history window is still filling
    above = np.zeros(n, dtype=bool)
    above[:exact_until] = _replayed(ts, close, 0, exact_until, halt)
    if n <= exact_until:
        return above
    zscore, tolerance = approximate_zscores(close, window)
    with np.errstate(invalid="ignore"):
        unsure = ~(np.abs(zscore - halt.threshold) > tolerance)  # NaN (a flat or non-finite history) is unsure
    unsure[:exact_until] = False
    candles = np.flatnonzero(unsure).tolist()
    if len(candles) * (history + window + 1) >= n:  # cheaper to replay the whole history once
        return _replayed(ts, close, 0, n, halt)
    above[exact_until:] = (zscore[exact_until:] > halt.threshold) & ~unsure[exact_until:]
    for candle in candles:
        start = max(0, candle - history - window - 1)  # the returns and the history its windows hold, and one close
        above[candle] = _replayed(ts, close, start, candle + 1, halt)[-1]
    return above


def approximate_zscores(close: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Each candle's volatility z-score computed with numpy, and a bound on its rounding error (NaN for both where
    the history is still filling, is too flat to divide by, or holds a non-finite value).

    The returns are ``math.log`` of the same ratios as the halt's; the volatility is their sample deviation over
    ``window``; the z-score compares it with the mean and sample deviation of the previous ``HISTORY_WINDOWS``
    windows' volatilities."""
    n = len(close)
    history = HISTORY_WINDOWS * window
    zscore, tolerance = np.full(n, np.nan), np.full(n, np.nan)
    first = history + window + 1
    if n <= first:
        return zscore, tolerance
    ratios = close[1:] / close[:-1]  # the same division as the halt's close / last_close
    returns = np.fromiter(map(math.log, ratios.tolist()), dtype=np.float64, count=n - 1)
    if not np.all(np.isfinite(returns)):  # the halt's windows go NaN around a non-finite value: let it decide
        return zscore, tolerance
    volatility = np.sqrt(vec.rolling_var(returns, window, ddof=1))[window - 1 :]  # [m]: candle m + window
    mean, variance, _, _ = vec.rolling_moments(volatility, history)  # [m]: the history ending at candle m + window
    candles = np.arange(first, n)
    value = volatility[candles - window]
    history_mean = mean[candles - window - 1]
    spread = np.sqrt(variance[candles - window - 1] * history / (history - 1))  # the sample deviation
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (value - history_mean) / spread
        bound = Z_TOLERANCE * (np.abs(z) + (np.abs(value) + np.abs(history_mean)) / spread)
        usable = np.isfinite(z) & (spread > FLAT_HISTORY * np.abs(history_mean))
    zscore[first:] = np.where(usable, z, np.nan)
    tolerance[first:] = np.where(usable, bound, np.nan)
    return zscore, tolerance


def _replayed(ts: np.ndarray, close: np.ndarray, start: int, stop: int, halt: VolatilityHalt) -> np.ndarray:
    """The halt's own verdict for candles ``start`` .. ``stop - 1``, its windows filled from ``start`` on: whether each
    candle's z-score was above the threshold (it then sets ``halted_until`` to that candle's time + cooldown)."""
    times, closes = ts[start:stop].tolist(), close[start:stop].tolist()
    state = SymbolVolatility(halt.window, times[0], closes[0])
    out = np.zeros(stop - start, dtype=bool)
    threshold, cooldown = halt.threshold, halt.cooldown_ms
    for j in range(1, len(times)):
        state.observe(times[j], closes[j], threshold, cooldown)
        out[j] = state.halted_until == times[j] + cooldown
    return out
