"""Calendar features of the candle's open time (UTC): hour of day, day of week and month as points on a
circle (sin, cos), so 23:00 sits next to 00:00, and a weekend flag."""

from __future__ import annotations

import math
import time

import numpy as np

from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.block import FeatureBlock

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_TAU = 2.0 * math.pi


class CalendarBlock(FeatureBlock):
    """``hour_sin``/``hour_cos`` (24 h), ``dow_sin``/``dow_cos`` (Monday = 0), ``month_sin``/``month_cos``
    (January = 0) and ``is_weekend`` (1 on Saturday and Sunday, UTC)."""

    family = "calendar"
    names = ("hour_sin", "hour_cos", "dow_sin", "dow_cos", "month_sin", "month_cos", "is_weekend")
    warmup = 1

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        ts = np.asarray(history.ts, dtype=np.int64)
        hour = ((ts // _HOUR_MS) % 24).astype(np.float64)
        dow = ((ts // _DAY_MS + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
        month = (ts.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64) % 12).astype(np.float64)
        return {
            "hour_sin": np.sin(_TAU * hour / 24.0),
            "hour_cos": np.cos(_TAU * hour / 24.0),
            "dow_sin": np.sin(_TAU * dow / 7.0),
            "dow_cos": np.cos(_TAU * dow / 7.0),
            "month_sin": np.sin(_TAU * month / 12.0),
            "month_cos": np.cos(_TAU * month / 12.0),
            "is_weekend": (dow >= 5).astype(np.float64),
        }

    def live(self) -> _CalendarLive:
        return _CalendarLive()


class _CalendarLive:
    __slots__ = ()

    def update(self, candle: Candle, out: dict[str, float]) -> None:
        ts = candle.ts
        hour = float((ts // _HOUR_MS) % 24)
        dow = float((ts // _DAY_MS + 3) % 7)
        month = float(time.gmtime(ts // 1000).tm_mon - 1)
        out["hour_sin"], out["hour_cos"] = math.sin(_TAU * hour / 24.0), math.cos(_TAU * hour / 24.0)
        out["dow_sin"], out["dow_cos"] = math.sin(_TAU * dow / 7.0), math.cos(_TAU * dow / 7.0)
        out["month_sin"], out["month_cos"] = math.sin(_TAU * month / 12.0), math.cos(_TAU * month / 12.0)
        out["is_weekend"] = 1.0 if dow >= 5 else 0.0


CALENDAR_BLOCKS: tuple[FeatureBlock, ...] = (CalendarBlock(),)
