"""Momentum features: returns over several horizons, moving-average ratios, MACD, RSI, stochastic, CCI, ADX.

Price-level features are ratios to the close, so they mean the same on BTC at 60,000 and DOGE at 0.1.
"""

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
LOG_RETURN_HORIZONS = (1, 3, 6, 12, 24, 72)
ROC_HORIZONS = (10, 20)
SMA_PERIODS = (10, 20, 50, 200)
EMA_PERIODS = (12, 26, 50)
RSI_PERIODS = (7, 14, 21)
STOCH_PERIOD, STOCH_SMOOTH = 14, 3
CCI_PERIOD = 20
ADX_PERIOD = 14


class ReturnsBlock(FeatureBlock):
    """``logret_k`` = ln(close / close k candles ago); ``roc_k`` = close / close k candles ago - 1."""

    family = "momentum"
    names = tuple(f"logret_{k}" for k in LOG_RETURN_HORIZONS) + tuple(f"roc_{k}" for k in ROC_HORIZONS)
    warmup = max(LOG_RETURN_HORIZONS + ROC_HORIZONS) + 1

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        close = history.close
        out = {f"logret_{k}": np.log(close / vec.shift(close, k)) for k in LOG_RETURN_HORIZONS}
        out.update({f"roc_{k}": close / vec.shift(close, k) - 1.0 for k in ROC_HORIZONS})
        return out

    def live(self) -> _ReturnsLive:
        return _ReturnsLive(self.warmup)


class _ReturnsLive:
    __slots__ = ("_closes", "_logs", "_rocs")

    def __init__(self, depth: int) -> None:
        self._closes: deque[float] = deque(maxlen=depth)
        self._logs = [(f"logret_{k}", k) for k in LOG_RETURN_HORIZONS]
        self._rocs = [(f"roc_{k}", k) for k in ROC_HORIZONS]

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        closes = self._closes
        close = candle.close
        closes.append(close)
        n = len(closes)
        for name, k in self._logs:
            out[name] = math.log(close / closes[-1 - k]) if n > k else NAN
        for name, k in self._rocs:
            out[name] = close / closes[-1 - k] - 1.0 if n > k else NAN


class MovingAverageBlock(FeatureBlock):
    """``sma_ratio_n`` / ``ema_ratio_n`` = close / average - 1; ``sma_cross_10_50`` = SMA10 / SMA50 - 1."""

    family = "momentum"
    names = (
        *(f"sma_ratio_{n}" for n in SMA_PERIODS),
        *(f"ema_ratio_{n}" for n in EMA_PERIODS),
        "sma_cross_10_50",
    )
    warmup = max(SMA_PERIODS)

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        close = history.close
        smas = {n: vec.rolling_mean(close, n) for n in SMA_PERIODS}
        out = {f"sma_ratio_{n}": close / smas[n] - 1.0 for n in SMA_PERIODS}
        out.update({f"ema_ratio_{n}": close / vec.ema(close, n) - 1.0 for n in EMA_PERIODS})
        out["sma_cross_10_50"] = smas[10] / smas[50] - 1.0
        return out

    def live(self) -> _MovingAverageLive:
        return _MovingAverageLive()


class _MovingAverageLive:
    __slots__ = ("_emas", "_smas")

    def __init__(self) -> None:
        self._smas = [(f"sma_ratio_{n}", n, live.RollingMean(n)) for n in SMA_PERIODS]
        self._emas = [(f"ema_ratio_{n}", live.Ema(n)) for n in EMA_PERIODS]

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        close = candle.close
        sma: dict[int, float] = {}
        for name, n, average in self._smas:
            value = sma[n] = average.update(close)
            out[name] = close / value - 1.0
        for name, average in self._emas:
            out[name] = close / average.update(close) - 1.0
        out["sma_cross_10_50"] = sma[10] / sma[50] - 1.0


class MacdBlock(FeatureBlock):
    """MACD(12, 26, 9) divided by the close: ``macd``, its 9-EMA ``macd_signal``, and ``macd_hist``."""

    family = "momentum"
    names = ("macd", "macd_signal", "macd_hist")
    warmup = 26 + 9 - 1

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        close = history.close
        macd = (vec.ema(close, 12) - vec.ema(close, 26)) / close
        signal = vec.ema(macd, 9)
        return {"macd": macd, "macd_signal": signal, "macd_hist": macd - signal}

    def live(self) -> _MacdLive:
        return _MacdLive()


class _MacdLive:
    __slots__ = ("_fast", "_signal", "_slow")

    def __init__(self) -> None:
        self._fast, self._slow, self._signal = live.Ema(12), live.Ema(26), live.Ema(9)

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        close = candle.close
        macd = (self._fast.update(close) - self._slow.update(close)) / close
        signal = self._signal.update(macd)
        out["macd"], out["macd_signal"], out["macd_hist"] = macd, signal, macd - signal


class OscillatorBlock(FeatureBlock):
    """``rsi_n`` (Wilder, 0..100), ``stoch_k_14`` / ``stoch_d_14`` (0..100, 50 on a flat range), ``cci_20``."""

    family = "momentum"
    names = (*(f"rsi_{n}" for n in RSI_PERIODS), "stoch_k_14", "stoch_d_14", f"cci_{CCI_PERIOD}")
    warmup = max(max(RSI_PERIODS) + 1, STOCH_PERIOD + STOCH_SMOOTH - 1, CCI_PERIOD)

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        out = {f"rsi_{n}": vec.rsi(history.close, n) for n in RSI_PERIODS}
        highest = vec.rolling_max(history.high, STOCH_PERIOD)
        lowest = vec.rolling_min(history.low, STOCH_PERIOD)
        stoch_k = 100.0 * vec.safe_ratio(history.close - lowest, highest - lowest, 0.5)
        out["stoch_k_14"] = stoch_k
        out["stoch_d_14"] = vec.rolling_mean(stoch_k, STOCH_SMOOTH)
        out[f"cci_{CCI_PERIOD}"] = _cci(history)
        return out

    def live(self) -> _OscillatorLive:
        return _OscillatorLive()


def _typical(history: OHLCV) -> np.ndarray:
    return (history.high + history.low + history.close) / 3.0


def _cci(history: OHLCV) -> np.ndarray:
    typical = _typical(history)
    mean = vec.rolling_mean(typical, CCI_PERIOD)
    out = np.full(len(typical), np.nan)
    if len(typical) >= CCI_PERIOD:
        windows = sliding_window_view(typical, CCI_PERIOD)
        mad = np.abs(windows - mean[CCI_PERIOD - 1 :, None]).mean(axis=1)
        flat = vec.is_flat(mad * mad, mean[CCI_PERIOD - 1 :])
        value = (typical[CCI_PERIOD - 1 :] - mean[CCI_PERIOD - 1 :]) / (0.015 * np.where(flat, 1.0, mad))
        out[CCI_PERIOD - 1 :] = np.where(flat, 0.0, value)
    return out


class _OscillatorLive:
    __slots__ = ("_cci_mean", "_cci_values", "_highest", "_lowest", "_rsis", "_stoch_d")

    def __init__(self) -> None:
        self._rsis = [(f"rsi_{n}", live.Rsi(n)) for n in RSI_PERIODS]
        self._highest, self._lowest = live.RollingMax(STOCH_PERIOD), live.RollingMin(STOCH_PERIOD)
        self._stoch_d = live.RollingMean(STOCH_SMOOTH)
        self._cci_values: deque[float] = deque(maxlen=CCI_PERIOD)
        self._cci_mean = live.RollingMean(CCI_PERIOD)

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        close = candle.close
        for name, rsi in self._rsis:
            out[name] = rsi.update(close)
        highest, lowest = self._highest.update(candle.high), self._lowest.update(candle.low)
        if highest == highest:
            span = highest - lowest
            stoch_k = 100.0 * ((close - lowest) / span if span != 0 else 0.5)
            out["stoch_k_14"], out["stoch_d_14"] = stoch_k, self._stoch_d.update(stoch_k)
        else:
            out["stoch_k_14"] = out["stoch_d_14"] = NAN
        typical = (candle.high + candle.low + close) / 3.0
        values = self._cci_values
        values.append(typical)
        mean = self._cci_mean.update(typical)
        if mean == mean:
            mad = sum(abs(v - mean) for v in values) / CCI_PERIOD
            flat = live.is_flat(mad * mad, mean)
            out[f"cci_{CCI_PERIOD}"] = 0.0 if flat else (typical - mean) / (0.015 * mad)
        else:
            out[f"cci_{CCI_PERIOD}"] = NAN


class AdxBlock(FeatureBlock):
    """Wilder's directional movement: ``plus_di_14``, ``minus_di_14`` (0..100) and ``adx_14`` (0..100)."""

    family = "momentum"
    names = (f"adx_{ADX_PERIOD}", f"plus_di_{ADX_PERIOD}", f"minus_di_{ADX_PERIOD}")
    warmup = 2 * ADX_PERIOD

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        high, low = history.high, history.low
        up = high - vec.shift(high, 1)
        down = vec.shift(low, 1) - low
        plus_dm = np.where((up > down) & (up > 0), up, 0.0)
        minus_dm = np.where((down > up) & (down > 0), down, 0.0)
        ranges = vec.true_range(high, low, history.close)
        for series in (plus_dm, minus_dm, ranges):
            series[:1] = np.nan
        smooth_range = vec.wilder(ranges, ADX_PERIOD)
        plus_di = 100.0 * vec.safe_ratio(vec.wilder(plus_dm, ADX_PERIOD), smooth_range)
        minus_di = 100.0 * vec.safe_ratio(vec.wilder(minus_dm, ADX_PERIOD), smooth_range)
        dx = 100.0 * vec.safe_ratio(np.abs(plus_di - minus_di), plus_di + minus_di)
        return {
            f"adx_{ADX_PERIOD}": vec.wilder(dx, ADX_PERIOD),
            f"plus_di_{ADX_PERIOD}": plus_di,
            f"minus_di_{ADX_PERIOD}": minus_di,
        }

    def live(self) -> _AdxLive:
        return _AdxLive()


class _AdxLive:
    __slots__ = ("_adx", "_minus", "_plus", "_prev_close", "_prev_high", "_prev_low", "_range")

    def __init__(self) -> None:
        self._plus, self._minus, self._range = (live.Wilder(ADX_PERIOD) for _ in range(3))
        self._adx = live.Wilder(ADX_PERIOD)
        self._prev_high = self._prev_low = self._prev_close = NAN

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        high, low, close = candle.high, candle.low, candle.close
        prev_high, prev_low, prev_close = self._prev_high, self._prev_low, self._prev_close
        self._prev_high, self._prev_low, self._prev_close = high, low, close
        if prev_close != prev_close:
            out[f"adx_{ADX_PERIOD}"] = out[f"plus_di_{ADX_PERIOD}"] = out[f"minus_di_{ADX_PERIOD}"] = NAN
            return
        up, down = high - prev_high, prev_low - low
        true_range = max(high - low, abs(high - prev_close), abs(low - prev_close))
        smooth_range = self._range.update(true_range)
        smooth_plus = self._plus.update(up if up > down and up > 0 else 0.0)
        smooth_minus = self._minus.update(down if down > up and down > 0 else 0.0)
        plus_di = 100.0 * _ratio(smooth_plus, smooth_range)
        minus_di = 100.0 * _ratio(smooth_minus, smooth_range)
        dx = 100.0 * _ratio(abs(plus_di - minus_di), plus_di + minus_di)
        out[f"adx_{ADX_PERIOD}"] = self._adx.update(dx)
        out[f"plus_di_{ADX_PERIOD}"], out[f"minus_di_{ADX_PERIOD}"] = plus_di, minus_di


def _ratio(num: float, den: float) -> float:
    """num / den, 0 where den is 0 (NaN stays NaN), as ``vectorized.safe_ratio``."""
    return num / den if den != 0 else 0.0


MOMENTUM_BLOCKS: tuple[FeatureBlock, ...] = (
    ReturnsBlock(),
    MovingAverageBlock(),
    MacdBlock(),
    OscillatorBlock(),
    AdxBlock(),
)
