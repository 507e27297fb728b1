"""Trend-following components: moving-average crosses and MACD.

Each trades the crossings of two lines by default (``mode: cross``): +1 on the candle where the first crosses
above the second, -1 where it crosses below, and no opinion in between, so a position is held from one
crossing to the next. ``mode: level`` is the older rule, +1 while above and -1 while below, which also
enters at the end of every warmup when the lines are already apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from slsbot_runtime.domain.types import FLAT, Candle, Signal
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.indicators import streaming as live
from slsbot_runtime.features.indicators import vectorized as vec
from slsbot_runtime.strategy.base import StrategyParams
from slsbot_runtime.strategy.library.component import VectorizedComponent, slower_than_fast
from slsbot_runtime.strategy.library.signal_math import (
    Crossing,
    confidence_of,
    confidences_of,
    crossings,
    direction_of,
    directions_of,
)

#: A 1 % gap between the two averages gives confidence tanh(1) = 0.76.
CROSS_CONFIDENCE_SCALE = 0.01


class CrossMode(StrEnum):
    CROSS = "cross"  # +1 / -1 on the candle of a crossing, no opinion in between
    LEVEL = "level"  # +1 while above, -1 while below


def _mode(lines: str) -> Any:
    return Field(
        default=CrossMode.CROSS,
        description=(
            f"cross: +1 on the candle where {lines} crosses above, -1 where it crosses below, no opinion (hold) "
            "in between; level: +1 while above, -1 while below, which also enters at the end of every warmup."
        ),
    )


class SmaCrossParams(StrategyParams):
    fast: int = Field(default=10, ge=1, le=100_000, description="Candles in the fast simple moving average.")
    slow: int = Field(
        default=30,
        ge=1,
        le=100_000,
        validate_default=True,
        description="Candles in the slow simple moving average; more than fast.",
    )
    mode: CrossMode = _mode("the fast average")

    _check_slow = field_validator("slow")(slower_than_fast)


class _MovingAverageCross(VectorizedComponent):
    """``mode: cross`` (default): +1 on the candle where the fast average of closes crosses above the slow one,
    -1 where it crosses below, 0 in between and during warmup. ``mode: level``: +1 while above, -1 while below.

    Confidence: tanh(|fast / slow - 1| / 1 %). Subclasses choose the average: its streaming form (``_live``), its
    vectorized form (``_vector``), and the reason text.
    """

    _live: ClassVar[Callable[[int], Any]]
    _vector: ClassVar[Callable[[np.ndarray, int], np.ndarray]]
    _reason: ClassVar[str]

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        self._fast = type(self)._live(self.params.fast)
        self._slow = type(self)._live(self.params.slow)
        self._crossing = Crossing() if self.params.mode == CrossMode.CROSS else None

    @property
    def warmup(self) -> int:
        return self.params.slow

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        fast = self._fast.update(candle.close)
        slow = self._slow.update(candle.close)
        if slow != slow:
            return FLAT
        spread = fast / slow - 1.0
        direction = direction_of(spread)
        if self._crossing is not None:
            direction = self._crossing.update(direction)
        if direction == 0.0:
            return FLAT
        return Signal(direction, confidence_of(spread, CROSS_CONFIDENCE_SCALE), self._reason)

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        vector = type(self)._vector
        spread = vector(history.close, self.params.fast) / vector(history.close, self.params.slow)
        spread -= 1.0
        directions = directions_of(spread)
        if self.params.mode == CrossMode.CROSS:
            directions = crossings(directions)
        return directions, confidences_of(spread, CROSS_CONFIDENCE_SCALE, directions)


class SmaCross(_MovingAverageCross):
    """+1 on the candle where the fast SMA of closes crosses above the slow one, -1 where it crosses below
    (``mode: level``: while above / below), 0 otherwise and during warmup.

    Confidence: tanh(|fast / slow - 1| / 1 %).
    """

    id = "sma_cross"
    Params = SmaCrossParams
    _live = live.RollingMean
    _vector = staticmethod(vec.rolling_mean)
    _reason = "sma cross"


class EmaCrossParams(StrategyParams):
    fast: int = Field(default=12, ge=1, le=100_000, description="Period of the fast exponential moving average.")
    slow: int = Field(
        default=26,
        ge=1,
        le=100_000,
        validate_default=True,
        description="Period of the slow exponential moving average; more than fast.",
    )
    mode: CrossMode = _mode("the fast average")

    _check_slow = field_validator("slow")(slower_than_fast)


class EmaCross(_MovingAverageCross):
    """+1 on the candle where the fast EMA of closes crosses above the slow one, -1 where it crosses below
    (``mode: level``: while above / below), 0 otherwise and during warmup.

    EMAs are seeded with the simple mean of their first ``period`` closes. Confidence: tanh(|fast / slow
    - 1| / 1 %).
    """

    id = "ema_cross"
    Params = EmaCrossParams
    _live = live.Ema
    _vector = staticmethod(vec.ema)
    _reason = "ema cross"


#: A MACD histogram of 0.2 % of the close gives confidence tanh(1) = 0.76.
MACD_CONFIDENCE_SCALE = 0.002


class MacdTrendParams(StrategyParams):
    fast: int = Field(default=12, ge=1, le=100_000, description="Period of the fast EMA of the MACD line.")
    slow: int = Field(
        default=26,
        ge=1,
        le=100_000,
        validate_default=True,
        description="Period of the slow EMA of the MACD line; more than fast.",
    )
    signal: int = Field(default=9, ge=1, le=100_000, description="Period of the EMA of the MACD line (signal line).")
    mode: CrossMode = _mode("the MACD line")

    _check_slow = field_validator("slow")(slower_than_fast)


class MacdTrend(VectorizedComponent):
    """+1 on the candle where the MACD line (fast EMA - slow EMA) crosses above its signal line, -1 where it
    crosses below (``mode: level``: while above / below), 0 otherwise and during warmup.

    Confidence: tanh(|MACD - signal| / close / 0.2 %).
    """

    id = "macd_trend"
    Params = MacdTrendParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        p = self.params
        self._fast, self._slow, self._signal = live.Ema(p.fast), live.Ema(p.slow), live.Ema(p.signal)
        self._crossing = Crossing() if p.mode == CrossMode.CROSS else None

    @property
    def warmup(self) -> int:
        return self.params.slow + self.params.signal - 1

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        close = candle.close
        macd = self._fast.update(close) - self._slow.update(close)
        signal = self._signal.update(macd)
        if signal != signal:
            return FLAT
        spread = (macd - signal) / close
        direction = direction_of(spread)
        if self._crossing is not None:
            direction = self._crossing.update(direction)
        if direction == 0.0:
            return FLAT
        return Signal(direction, confidence_of(spread, MACD_CONFIDENCE_SCALE), "macd cross")

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        close = history.close
        macd = vec.ema(close, p.fast) - vec.ema(close, p.slow)
        spread = (macd - vec.ema(macd, p.signal)) / close
        directions = directions_of(spread)
        if p.mode == CrossMode.CROSS:
            directions = crossings(directions)
        return directions, confidences_of(spread, MACD_CONFIDENCE_SCALE, directions)
