"""Statistical features of closes and returns: z-scores, drawdown, rank, trend efficiency and slope,
and the shape of the return distribution (skew, kurtosis, autocorrelation)."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.block import FeatureBlock
from slsbot_runtime.features.indicators import streaming as live
from slsbot_runtime.features.indicators import vectorized as vec

NAN = math.nan
ZSCORE_WINDOWS = (20, 50, 200)
DRAWDOWN_WINDOW = 72
RANK_WINDOW = 50
EFFICIENCY_WINDOW = 20
SLOPE_WINDOWS = (24, 72)
SHAPE_WINDOWS = (72, 168)
UP_WINDOW = 24


class CloseStatsBlock(FeatureBlock):
    """Of the close:

    * ``zscore_n``: (close - mean) / std over n candles (0 if flat).
    * ``drawdown_72`` / ``drawup_72``: close / highest (lowest) close of 72 candles - 1.
    * ``pct_rank_50``: share of the last 50 closes strictly below this one.
    * ``efficiency_ratio_20``: |net move| / sum of |moves| over 20 candles (Kaufman; 0 if nothing moved).
    * ``linreg_slope_n``: least-squares slope of ln(close) per candle over n candles.
    """

    family = "statistical"
    names = (
        *(f"zscore_{n}" for n in ZSCORE_WINDOWS),
        f"drawdown_{DRAWDOWN_WINDOW}",
        f"drawup_{DRAWDOWN_WINDOW}",
        f"pct_rank_{RANK_WINDOW}",
        f"efficiency_ratio_{EFFICIENCY_WINDOW}",
        *(f"linreg_slope_{n}" for n in SLOPE_WINDOWS),
    )
    warmup = max(*ZSCORE_WINDOWS, DRAWDOWN_WINDOW, RANK_WINDOW, EFFICIENCY_WINDOW + 1, *SLOPE_WINDOWS)

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        close = history.close
        out = {f"zscore_{n}": vec.rolling_zscore(close, n) for n in ZSCORE_WINDOWS}
        out[f"drawdown_{DRAWDOWN_WINDOW}"] = close / vec.rolling_max(close, DRAWDOWN_WINDOW) - 1.0
        out[f"drawup_{DRAWDOWN_WINDOW}"] = close / vec.rolling_min(close, DRAWDOWN_WINDOW) - 1.0
        rank = np.full(len(close), np.nan)
        if len(close) >= RANK_WINDOW:
            below = sliding_window_view(close, RANK_WINDOW) < close[RANK_WINDOW - 1 :, None]
            rank[RANK_WINDOW - 1 :] = below.sum(axis=1) / RANK_WINDOW
        out[f"pct_rank_{RANK_WINDOW}"] = rank
        n = EFFICIENCY_WINDOW
        path = vec.rolling_sum(np.abs(vec.diff(close)), n)
        out[f"efficiency_ratio_{n}"] = vec.safe_ratio(np.abs(close - vec.shift(close, n)), path)
        log_close = np.log(close)
        out.update({f"linreg_slope_{w}": vec.rolling_slope(log_close, w) for w in SLOPE_WINDOWS})
        return out

    def live(self) -> _CloseStatsLive:
        return _CloseStatsLive()


class _CloseStatsLive:
    __slots__ = ("_highest", "_lag", "_lowest", "_path", "_prev", "_rank", "_slopes", "_zscores")

    def __init__(self) -> None:
        self._zscores = [(f"zscore_{n}", live.RollingMoments(n)) for n in ZSCORE_WINDOWS]
        self._highest, self._lowest = live.RollingMax(DRAWDOWN_WINDOW), live.RollingMin(DRAWDOWN_WINDOW)
        self._rank: deque[float] = deque(maxlen=RANK_WINDOW)
        self._lag, self._path = live.Lag(EFFICIENCY_WINDOW), live.RollingSum(EFFICIENCY_WINDOW)
        self._slopes = [(f"linreg_slope_{n}", live.RollingSlope(n)) for n in SLOPE_WINDOWS]
        self._prev = NAN

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        close = candle.close
        for name, moments in self._zscores:
            moments.update(close)
            out[name] = moments.zscore(close)
        out[f"drawdown_{DRAWDOWN_WINDOW}"] = close / self._highest.update(close) - 1.0
        out[f"drawup_{DRAWDOWN_WINDOW}"] = close / self._lowest.update(close) - 1.0
        rank = self._rank
        rank.append(close)
        full = len(rank) == RANK_WINDOW
        out[f"pct_rank_{RANK_WINDOW}"] = sum(map(close.__gt__, rank)) / RANK_WINDOW if full else NAN
        prev, self._prev = self._prev, close
        then = self._lag.update(close)
        if prev == prev:
            path = self._path.update(abs(close - prev))
            ratio = abs(close - then) / path if path != 0 else 0.0
            out[f"efficiency_ratio_{EFFICIENCY_WINDOW}"] = ratio if path == path else NAN
        else:
            out[f"efficiency_ratio_{EFFICIENCY_WINDOW}"] = NAN
        log_close = math.log(close)
        for name, slope in self._slopes:
            out[name] = slope.update(log_close)


class ReturnStatsBlock(FeatureBlock):
    """Of 1-candle log returns:

    * ``ret_skew_n`` / ``ret_kurt_n``: skewness and excess kurtosis over n candles (0 if flat).
    * ``ret_autocorr_n``: lag-1 autocorrelation over n pairs.
    * ``ret_zscore_72``: this return's z-score within 72 candles.
    * ``up_fraction_24``: share of the last 24 candles that closed higher.
    """

    family = "statistical"
    names = (
        *(f"ret_{stat}_{n}" for n in SHAPE_WINDOWS for stat in ("skew", "kurt", "autocorr")),
        f"ret_zscore_{SHAPE_WINDOWS[0]}",
        f"up_fraction_{UP_WINDOW}",
    )
    warmup = max(SHAPE_WINDOWS) + 2

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        returns = np.log(history.close / vec.shift(history.close, 1))
        out: dict[str, np.ndarray] = {}
        for n in SHAPE_WINDOWS:
            mean, var, skew, kurt = vec.rolling_moments(returns, n)
            out[f"ret_skew_{n}"], out[f"ret_kurt_{n}"] = skew, kurt
            out[f"ret_autocorr_{n}"] = vec.rolling_corr(vec.shift(returns, 1), returns, n)
            if n == SHAPE_WINDOWS[0]:
                flat = vec.is_flat(var, mean)
                out[f"ret_zscore_{n}"] = np.where(flat, 0.0, (returns - mean) / np.sqrt(np.where(flat, 1.0, var)))
        up = (returns > 0).astype(np.float64)
        up[:1] = np.nan
        out[f"up_fraction_{UP_WINDOW}"] = vec.rolling_mean(up, UP_WINDOW)
        return out

    def live(self) -> _ReturnStatsLive:
        return _ReturnStatsLive()


class _ReturnStatsLive:
    __slots__ = ("_corrs", "_moments", "_prev_close", "_prev_return", "_up")

    def __init__(self) -> None:
        self._moments = [(n, live.RollingMoments(n, order=4)) for n in SHAPE_WINDOWS]
        self._corrs = [(f"ret_autocorr_{n}", live.RollingCorr(n)) for n in SHAPE_WINDOWS]
        self._up = live.RollingMean(UP_WINDOW)
        self._prev_close = self._prev_return = NAN

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        prev_close, self._prev_close = self._prev_close, candle.close
        if prev_close != prev_close:
            for name in ReturnStatsBlock.names:
                out[name] = NAN
            return
        ret = math.log(candle.close / prev_close)
        for n, moments in self._moments:
            moments.update(ret)
            out[f"ret_skew_{n}"], out[f"ret_kurt_{n}"] = moments.skew_kurt()
            if n == SHAPE_WINDOWS[0]:
                out[f"ret_zscore_{n}"] = moments.zscore(ret)
        prev_return, self._prev_return = self._prev_return, ret
        for name, corr in self._corrs:
            out[name] = corr.update(prev_return, ret) if prev_return == prev_return else NAN
        out[f"up_fraction_{UP_WINDOW}"] = self._up.update(1.0 if ret > 0 else 0.0)


STATISTICAL_BLOCKS: tuple[FeatureBlock, ...] = (CloseStatsBlock(), ReturnStatsBlock())
