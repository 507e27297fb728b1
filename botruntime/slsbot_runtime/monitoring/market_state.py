"""Market-state features for the anomaly detector: how unusual this candle is against the ``window`` candles
before it (a week of hours by default). Each compares the candle with a baseline that does not include it, so a
spike cannot dampen its own reading.

=================  ======================================================================================
``volume_spike``     log(1 + volume / mean volume of the window); about log 2 for a usual candle
``volatility_jump``  \\|log return\\| / standard deviation of the window's log returns (a move in sigmas)
``price_gap``        \\|log(open / previous close)\\| / the same deviation: a jump between candles, as after an
                     exchange outage
``range_anomaly``    log(high / low) / mean of the window's log(high / low): a candle's range in usual ranges
=================  ======================================================================================

A zero baseline (flat prices, a market that traded nothing) gives 0 for a zero reading and ``CAP`` for any other;
every value is capped at ``CAP`` so the forest never sees an infinity. The first complete row is candle
``window + 1`` (``warmup(window)`` candles). ``compute`` (a whole history, numpy) and ``MarketStateLive`` (one candle
at a time) give the same values (the tests compare them on real candles). Candles are counted, not hours: a gap in
the data is a gap between two consecutive candles here, which is what ``price_gap`` is for.
"""

from __future__ import annotations

import math

import numpy as np

from slsbot_runtime.domain.ohlcv import OHLCV
from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.indicators import streaming as live
from slsbot_runtime.features.indicators import vectorized as vec

MARKET_STATE_FEATURES = ("volume_spike", "volatility_jump", "price_gap", "range_anomaly")
DEFAULT_WINDOW = 168
CAP = 100.0
NAN = math.nan


def warmup(window: int) -> int:
    """Candles until every market-state feature is defined."""
    return window + 2


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return min(num / den, CAP)
    if den == 0:
        return 0.0 if num == 0 else CAP
    return NAN  # NaN baseline: still warming up


def _ratios(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, np.minimum(num / np.where(den > 0, den, 1.0), CAP), np.where(num == 0, 0.0, CAP))
    return np.where(np.isnan(num) | np.isnan(den), NAN, out)


def _previous(x: np.ndarray) -> np.ndarray:
    """``x`` shifted one candle later: the value of the candle before (NaN for the first)."""
    return np.concatenate(([NAN], x[:-1]))


def compute(history: OHLCV, window: int = DEFAULT_WINDOW) -> dict[str, np.ndarray]:
    """Every market-state feature over ``history``, NaN until the baseline window is full."""
    close = np.asarray(history.close, dtype=np.float64)
    prev_close = _previous(close)
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.log(close / prev_close)
        gap = np.abs(np.log(np.asarray(history.open, dtype=np.float64) / prev_close))
        spread = np.log(np.asarray(history.high, dtype=np.float64) / np.asarray(history.low, dtype=np.float64))
    _, variance, _, _ = vec.rolling_moments(ret, window)
    sigma = _previous(np.sqrt(variance))
    volume = np.asarray(history.volume, dtype=np.float64)
    return {
        "volume_spike": np.log1p(_ratios(volume, _previous(vec.rolling_mean(volume, window)))),
        "volatility_jump": _ratios(np.abs(ret), sigma),
        "price_gap": _ratios(gap, sigma),
        "range_anomaly": _ratios(spread, _previous(vec.rolling_mean(spread, window))),
    }


class MarketStateLive:
    """The market-state features of one symbol, updated one candle at a time (in time order)."""

    __slots__ = ("_moments", "_prev_close", "_range", "_range_mean", "_volume", "_volume_mean")

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self._moments = live.RollingMoments(window)
        self._range = live.RollingMean(window)
        self._volume = live.RollingMean(window)
        self._prev_close = NAN
        self._range_mean = NAN  # of the window before the current candle
        self._volume_mean = NAN

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        """Write this candle's features into ``out`` (NaN while warming up), then take it into the baselines."""
        prev_close, moments = self._prev_close, self._moments
        spread = math.log(candle.high / candle.low)
        volume = candle.volume
        if prev_close == prev_close:  # not NaN
            ret = math.log(candle.close / prev_close)
            sigma = math.sqrt(moments.var()) if moments.full else NAN
            out["volatility_jump"] = _ratio(abs(ret), sigma)
            out["price_gap"] = _ratio(abs(math.log(candle.open / prev_close)), sigma)
            moments.update(ret)
        else:
            out["volatility_jump"] = out["price_gap"] = NAN
        out["volume_spike"] = math.log1p(_ratio(volume, self._volume_mean))
        out["range_anomaly"] = _ratio(spread, self._range_mean)
        self._volume_mean = self._volume.update(volume)
        self._range_mean = self._range.update(spread)
        self._prev_close = candle.close
