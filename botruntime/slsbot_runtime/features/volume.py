"""Volume features: volume z-scores and ratios, OBV slope, VWAP distance, money flow (MFI, CMF).

Volume-weighted values are 0 (MFI: 50, ratios: 1) over a window that traded nothing, as the futures
mark-price candles do: such a window has nothing to say, and NaN would poison every model downstream.
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
VOLUME_Z_WINDOWS = (24, 168)
VWAP_WINDOWS = (24, 168)
FLOW_WINDOW = 24
MFI_PERIOD = 14
CMF_PERIOD = 20


class VolumeStatsBlock(FeatureBlock):
    """``volume_z_n`` = z-score of this candle's volume in its window (0 if flat); ``volume_ratio_24`` =
    volume / its 24-candle mean (1 if 0); ``volume_trend_24_168`` = mean 24 / mean 168 - 1 (0 if 0)."""

    family = "volume"
    names = (*(f"volume_z_{n}" for n in VOLUME_Z_WINDOWS), "volume_ratio_24", "volume_trend_24_168")
    warmup = max(VOLUME_Z_WINDOWS)

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        volume = history.volume
        out = {f"volume_z_{n}": vec.rolling_zscore(volume, n) for n in VOLUME_Z_WINDOWS}
        mean_24, mean_168 = vec.rolling_mean(volume, 24), vec.rolling_mean(volume, 168)
        out["volume_ratio_24"] = vec.safe_ratio(volume, mean_24, 1.0)
        out["volume_trend_24_168"] = vec.safe_ratio(mean_24, mean_168, 1.0) - 1.0
        return out

    def live(self) -> _VolumeStatsLive:
        return _VolumeStatsLive()


class _VolumeStatsLive:
    __slots__ = ("_mean_24", "_mean_168", "_moments")

    def __init__(self) -> None:
        self._moments = [(f"volume_z_{n}", live.RollingMoments(n)) for n in VOLUME_Z_WINDOWS]
        self._mean_24, self._mean_168 = live.RollingMean(24), live.RollingMean(168)

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        volume = candle.volume
        for name, moments in self._moments:
            moments.update(volume)
            out[name] = moments.zscore(volume)
        mean_24, mean_168 = self._mean_24.update(volume), self._mean_168.update(volume)
        out["volume_ratio_24"] = volume / mean_24 if mean_24 != 0 else 1.0
        out["volume_trend_24_168"] = (mean_24 / mean_168 if mean_168 != 0 else 1.0) - 1.0


class VolumeFlowBlock(FeatureBlock):
    """Where volume went.

    * ``obv_slope_24``: least-squares slope of on-balance volume over 24 candles / mean volume (-1..1).
    * ``signed_volume_24``: volume of up candles minus down candles over 24 / total volume (-1..1).
    * ``vwap_dist_n``: close / volume-weighted typical price over n candles - 1.
    * ``mfi_14``: money flow index (0..100, 50 when nothing traded).
    * ``cmf_20``: Chaikin money flow (-1..1).
    """

    family = "volume"
    names = (
        f"obv_slope_{FLOW_WINDOW}",
        f"signed_volume_{FLOW_WINDOW}",
        *(f"vwap_dist_{n}" for n in VWAP_WINDOWS),
        f"mfi_{MFI_PERIOD}",
        f"cmf_{CMF_PERIOD}",
    )
    warmup = max(FLOW_WINDOW, *VWAP_WINDOWS, MFI_PERIOD + 1, CMF_PERIOD)

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        h, low, c, volume = history.high, history.low, history.close, history.volume
        signed = np.sign(vec.diff(c)) * volume
        signed[:1] = 0.0
        obv = np.cumsum(signed)
        w = FLOW_WINDOW
        volume_w = vec.rolling_sum(volume, w)
        out = {
            f"obv_slope_{w}": vec.safe_ratio(vec.rolling_slope(obv, w), volume_w / w),
            f"signed_volume_{w}": vec.safe_ratio(vec.rolling_sum(signed, w), volume_w),
        }
        typical = (h + low + c) / 3.0
        flow = typical * volume
        for n in VWAP_WINDOWS:
            volume_sum = vec.rolling_sum(volume, n)
            with np.errstate(invalid="ignore", divide="ignore"):
                distance = c / (vec.rolling_sum(flow, n) / volume_sum) - 1.0
            out[f"vwap_dist_{n}"] = np.where(volume_sum == 0, 0.0, distance)
        previous = vec.shift(typical, 1)
        positive = np.where(typical > previous, flow, 0.0)
        negative = np.where(typical < previous, flow, 0.0)
        positive[:1] = negative[:1] = np.nan
        positive_sum, negative_sum = vec.rolling_sum(positive, MFI_PERIOD), vec.rolling_sum(negative, MFI_PERIOD)
        out[f"mfi_{MFI_PERIOD}"] = 100.0 * vec.safe_ratio(positive_sum, positive_sum + negative_sum, 0.5)
        multiplier = vec.safe_ratio((c - low) - (h - c), h - low)
        out[f"cmf_{CMF_PERIOD}"] = vec.safe_ratio(
            vec.rolling_sum(multiplier * volume, CMF_PERIOD), vec.rolling_sum(volume, CMF_PERIOD)
        )
        return out

    def live(self) -> _VolumeFlowLive:
        return _VolumeFlowLive()


class _VolumeFlowLive:
    __slots__ = (
        "_cmf_flow",
        "_cmf_volume",
        "_negative",
        "_obv",
        "_obv_slope",
        "_positive",
        "_prev_close",
        "_prev_typical",
        "_signed",
        "_volume",
        "_vwaps",
    )

    def __init__(self) -> None:
        self._obv = 0.0
        self._obv_slope = live.RollingSlope(FLOW_WINDOW)
        self._signed, self._volume = live.RollingSum(FLOW_WINDOW), live.RollingSum(FLOW_WINDOW)
        self._vwaps = [(f"vwap_dist_{n}", live.RollingSum(n), live.RollingSum(n)) for n in VWAP_WINDOWS]
        self._positive, self._negative = live.RollingSum(MFI_PERIOD), live.RollingSum(MFI_PERIOD)
        self._cmf_flow, self._cmf_volume = live.RollingSum(CMF_PERIOD), live.RollingSum(CMF_PERIOD)
        self._prev_close = self._prev_typical = NAN

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        h, low, c, volume = candle.high, candle.low, candle.close, candle.volume
        prev_close, self._prev_close = self._prev_close, c
        signed = volume if c > prev_close else (-volume if c < prev_close else 0.0)
        self._obv += signed
        w = FLOW_WINDOW
        slope = self._obv_slope.update(self._obv)
        signed_sum, volume_sum = self._signed.update(signed), self._volume.update(volume)
        out[f"obv_slope_{w}"] = slope / (volume_sum / w) if volume_sum != 0 else 0.0
        out[f"signed_volume_{w}"] = signed_sum / volume_sum if volume_sum != 0 else 0.0
        typical = (h + low + c) / 3.0
        flow = typical * volume
        for name, flows, volumes in self._vwaps:
            flow_sum, volume_sum = flows.update(flow), volumes.update(volume)
            out[name] = c / (flow_sum / volume_sum) - 1.0 if volume_sum != 0 else 0.0
        prev_typical, self._prev_typical = self._prev_typical, typical
        if prev_typical != prev_typical:
            out[f"mfi_{MFI_PERIOD}"] = NAN
        else:
            positive = self._positive.update(flow if typical > prev_typical else 0.0)
            negative = self._negative.update(flow if typical < prev_typical else 0.0)
            total = positive + negative
            out[f"mfi_{MFI_PERIOD}"] = 100.0 * (positive / total if total != 0 else 0.5)
        span = h - low
        multiplier = ((c - low) - (h - c)) / span if span != 0 else 0.0
        flow_sum, volume_sum = self._cmf_flow.update(multiplier * volume), self._cmf_volume.update(volume)
        out[f"cmf_{CMF_PERIOD}"] = flow_sum / volume_sum if volume_sum != 0 else 0.0


VOLUME_BLOCKS: tuple[FeatureBlock, ...] = (VolumeStatsBlock(), VolumeFlowBlock())
