"""Volatility features: ATR, Bollinger and Donchian bands, close-to-close and range-based volatility.

Volatilities are per candle (not annualised) and as fractions of price, so they compare across symbols.
"""

from __future__ import annotations

import math

import numpy as np

from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.block import FeatureBlock
from slsbot_runtime.features.indicators import streaming as live
from slsbot_runtime.features.indicators import vectorized as vec

NAN = math.nan
ATR_PERIODS = (14, 28)
KELTNER_EMA, KELTNER_ATR = 20, 14
BOLLINGER_PERIOD = 20
REALIZED_VOL_WINDOWS = (24, 72, 168)
RANGE_VOL_WINDOW = 24
DONCHIAN_PERIODS = (20, 55)
_LN2 = math.log(2.0)
_GK_CLOSE = 2.0 * _LN2 - 1.0


class AtrBlock(FeatureBlock):
    """``atr_n_pct`` = Wilder ATR / close; ``keltner_pos_20`` = (close - EMA20) / (2 * ATR14), 0 if ATR is 0."""

    family = "volatility"
    names = (*(f"atr_{n}_pct" for n in ATR_PERIODS), f"keltner_pos_{KELTNER_EMA}")
    warmup = max(*ATR_PERIODS, KELTNER_EMA)

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        ranges = vec.true_range(history.high, history.low, history.close)
        atrs = {n: vec.wilder(ranges, n) for n in ATR_PERIODS}
        out = {f"atr_{n}_pct": atrs[n] / history.close for n in ATR_PERIODS}
        distance = history.close - vec.ema(history.close, KELTNER_EMA)
        out[f"keltner_pos_{KELTNER_EMA}"] = vec.safe_ratio(distance, 2.0 * atrs[KELTNER_ATR])
        return out

    def live(self) -> _AtrLive:
        return _AtrLive()


class _AtrLive:
    __slots__ = ("_atrs", "_ema", "_range")

    def __init__(self) -> None:
        self._range = live.TrueRange()
        self._atrs = [(n, f"atr_{n}_pct", live.Wilder(n)) for n in ATR_PERIODS]
        self._ema = live.Ema(KELTNER_EMA)

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        close = candle.close
        true_range = self._range.update(candle.high, candle.low, close)
        keltner_atr = NAN
        for n, name, atr in self._atrs:
            value = atr.update(true_range)
            out[name] = value / close
            if n == KELTNER_ATR:
                keltner_atr = value
        band = 2.0 * keltner_atr
        distance = close - self._ema.update(close)
        out[f"keltner_pos_{KELTNER_EMA}"] = distance / band if band != 0 else 0.0


class BandBlock(FeatureBlock):
    """Bollinger(20, 2): ``bb_width_20`` = 4 std / mean, ``bb_pctb_20`` = position in the bands (0.5 if flat).
    Donchian: ``donchian_width_20`` = (highest high - lowest low) / close, ``donchian_pos_n`` = position
    of the close in the channel (0.5 if flat)."""

    family = "volatility"
    names = (
        f"bb_width_{BOLLINGER_PERIOD}",
        f"bb_pctb_{BOLLINGER_PERIOD}",
        f"donchian_width_{DONCHIAN_PERIODS[0]}",
        *(f"donchian_pos_{n}" for n in DONCHIAN_PERIODS),
    )
    warmup = max(BOLLINGER_PERIOD, *DONCHIAN_PERIODS)

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        close = history.close
        mean, var, _, _ = vec.rolling_moments(close, BOLLINGER_PERIOD)
        flat = vec.is_flat(var, mean)
        std = np.sqrt(var)
        out = {
            f"bb_width_{BOLLINGER_PERIOD}": 4.0 * std / mean,
            f"bb_pctb_{BOLLINGER_PERIOD}": np.where(
                flat, 0.5, (close - (mean - 2.0 * std)) / (4.0 * np.where(flat, 1.0, std))
            ),
        }
        for n in DONCHIAN_PERIODS:
            highest, lowest = vec.rolling_max(history.high, n), vec.rolling_min(history.low, n)
            if n == DONCHIAN_PERIODS[0]:
                out[f"donchian_width_{n}"] = (highest - lowest) / close
            out[f"donchian_pos_{n}"] = vec.safe_ratio(close - lowest, highest - lowest, 0.5)
        return out

    def live(self) -> _BandLive:
        return _BandLive()


class _BandLive:
    __slots__ = ("_channels", "_moments")

    def __init__(self) -> None:
        self._moments = live.RollingMoments(BOLLINGER_PERIOD)
        self._channels = [(n, live.RollingMax(n), live.RollingMin(n)) for n in DONCHIAN_PERIODS]

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        close = candle.close
        moments = self._moments
        if moments.update(close):
            mean, var = moments.mean(), moments.var()
            std = math.sqrt(var)
            out[f"bb_width_{BOLLINGER_PERIOD}"] = 4.0 * std / mean
            flat = live.is_flat(var, mean)
            out[f"bb_pctb_{BOLLINGER_PERIOD}"] = 0.5 if flat else (close - (mean - 2.0 * std)) / (4.0 * std)
        else:
            out[f"bb_width_{BOLLINGER_PERIOD}"] = out[f"bb_pctb_{BOLLINGER_PERIOD}"] = NAN
        for n, highest_of, lowest_of in self._channels:
            highest, lowest = highest_of.update(candle.high), lowest_of.update(candle.low)
            span = highest - lowest
            if n == DONCHIAN_PERIODS[0]:
                out[f"donchian_width_{n}"] = span / close
            out[f"donchian_pos_{n}"] = (close - lowest) / span if span != 0 else 0.5


class RealizedVolBlock(FeatureBlock):
    """``realized_vol_n`` = sample std of 1-candle log returns over n candles; ``vol_ratio_24_168`` = their
    ratio (1 when the long window is flat)."""

    family = "volatility"
    names = (*(f"realized_vol_{n}" for n in REALIZED_VOL_WINDOWS), "vol_ratio_24_168")
    warmup = max(REALIZED_VOL_WINDOWS) + 1

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        returns = np.log(history.close / vec.shift(history.close, 1))
        moments = {n: vec.rolling_moments(returns, n) for n in REALIZED_VOL_WINDOWS}
        out = {f"realized_vol_{n}": np.sqrt(moments[n][1] * n / (n - 1)) for n in REALIZED_VOL_WINDOWS}
        mean_168, var_168 = moments[168][0], moments[168][1]
        flat = vec.is_flat(var_168, mean_168)
        out["vol_ratio_24_168"] = np.where(
            flat, 1.0, out["realized_vol_24"] / np.where(flat, 1.0, out["realized_vol_168"])
        )
        return out

    def live(self) -> _RealizedVolLive:
        return _RealizedVolLive()


class _RealizedVolLive:
    __slots__ = ("_moments", "_prev")

    def __init__(self) -> None:
        self._moments = [(f"realized_vol_{n}", live.RollingMoments(n)) for n in REALIZED_VOL_WINDOWS]
        self._prev = NAN

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        prev, self._prev = self._prev, candle.close
        if prev != prev:
            for name, _ in self._moments:
                out[name] = NAN
            out["vol_ratio_24_168"] = NAN
            return
        ret = math.log(candle.close / prev)
        for name, moments in self._moments:
            moments.update(ret)
            out[name] = moments.std(ddof=1)
        last = self._moments[-1][1]
        if not last.full:
            out["vol_ratio_24_168"] = NAN
        elif live.is_flat(last.var(), last.mean()):
            out["vol_ratio_24_168"] = 1.0
        else:
            out["vol_ratio_24_168"] = out["realized_vol_24"] / out["realized_vol_168"]


class RangeVolBlock(FeatureBlock):
    """Range-based volatility over 24 candles (``parkinson_vol_24``, ``garman_klass_vol_24``,
    ``rogers_satchell_vol_24``), this candle's ``range_pct`` = (high - low) / close and ``gap_pct`` =
    open / previous close - 1."""

    family = "volatility"
    names = (
        f"parkinson_vol_{RANGE_VOL_WINDOW}",
        f"garman_klass_vol_{RANGE_VOL_WINDOW}",
        f"rogers_satchell_vol_{RANGE_VOL_WINDOW}",
        "range_pct",
        "gap_pct",
    )
    warmup = RANGE_VOL_WINDOW

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        o, h, low, c = history.open, history.high, history.low, history.close
        high_low, close_open = np.log(h / low), np.log(c / o)
        parkinson = high_low * high_low
        garman_klass = 0.5 * parkinson - _GK_CLOSE * close_open * close_open
        rogers_satchell = np.log(h / c) * np.log(h / o) + np.log(low / c) * np.log(low / o)
        w = RANGE_VOL_WINDOW
        return {
            f"parkinson_vol_{w}": np.sqrt(np.maximum(vec.rolling_mean(parkinson, w), 0.0) / (4.0 * _LN2)),
            f"garman_klass_vol_{w}": np.sqrt(np.maximum(vec.rolling_mean(garman_klass, w), 0.0)),
            f"rogers_satchell_vol_{w}": np.sqrt(np.maximum(vec.rolling_mean(rogers_satchell, w), 0.0)),
            "range_pct": (h - low) / c,
            "gap_pct": o / vec.shift(c, 1) - 1.0,
        }

    def live(self) -> _RangeVolLive:
        return _RangeVolLive()


class _RangeVolLive:
    __slots__ = ("_gk", "_parkinson", "_prev", "_rs")

    def __init__(self) -> None:
        self._parkinson, self._gk, self._rs = (live.RollingMean(RANGE_VOL_WINDOW) for _ in range(3))
        self._prev = NAN

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        o, h, low, c = candle.open, candle.high, candle.low, candle.close
        log = math.log
        high_low, close_open = log(h / low), log(c / o)
        parkinson = high_low * high_low
        garman_klass = 0.5 * parkinson - _GK_CLOSE * close_open * close_open
        rogers_satchell = log(h / c) * log(h / o) + log(low / c) * log(low / o)
        w = RANGE_VOL_WINDOW
        out[f"parkinson_vol_{w}"] = math.sqrt(max(self._parkinson.update(parkinson), 0.0) / (4.0 * _LN2))
        out[f"garman_klass_vol_{w}"] = math.sqrt(max(self._gk.update(garman_klass), 0.0))
        out[f"rogers_satchell_vol_{w}"] = math.sqrt(max(self._rs.update(rogers_satchell), 0.0))
        out["range_pct"] = (h - low) / c
        out["gap_pct"] = o / self._prev - 1.0
        self._prev = c


VOLATILITY_BLOCKS: tuple[FeatureBlock, ...] = (AtrBlock(), BandBlock(), RealizedVolBlock(), RangeVolBlock())
