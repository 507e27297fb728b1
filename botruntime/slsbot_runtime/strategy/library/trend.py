"""Trend-following components: moving-average crosses and MACD."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from slsbot_runtime.domain.types import FLAT, Candle, Signal
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.indicators import streaming as live
from slsbot_runtime.features.indicators import vectorized as vec
from slsbot_runtime.strategy.base import StrategyParams
from slsbot_runtime.strategy.library.component import VectorizedComponent
from slsbot_runtime.strategy.library.signal_math import (
    confidence_of,
    confidences_of,
    direction_of,
    directions_of,
)

#: A 1 % gap between the two averages gives confidence tanh(1) = 0.76.
CROSS_CONFIDENCE_SCALE = 0.01


def _slower_than_fast(value: int, info: ValidationInfo) -> int:
    fast = info.data.get("fast")
    if fast is not None and value <= fast:
        raise ValueError(f"must be greater than fast ({fast})")
    return value


class SmaCrossParams(StrategyParams):
    fast: int = Field(default=10, ge=1, le=100_000, description="Candles in the fast simple moving average.")
    slow: int = Field(
        default=30,
        ge=1,
        le=100_000,
        validate_default=True,
        description="Candles in the slow simple moving average; more than fast.",
    )

    _check_slow = field_validator("slow")(_slower_than_fast)


class SmaCross(VectorizedComponent):
    """+1 while the fast SMA of closes is above the slow one, -1 while below, 0 during warmup.

    Confidence: tanh(|fast / slow - 1| / 1 %).
    """

    id = "sma_cross"
    Params = SmaCrossParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        self._fast = live.RollingMean(self.params.fast)
        self._slow = live.RollingMean(self.params.slow)

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
        if direction == 0.0:
            return FLAT
        return Signal(direction, confidence_of(spread, CROSS_CONFIDENCE_SCALE), "sma cross")

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        spread = vec.rolling_mean(history.close, self.params.fast) / vec.rolling_mean(history.close, self.params.slow)
        spread -= 1.0
        directions = directions_of(spread)
        return directions, confidences_of(spread, CROSS_CONFIDENCE_SCALE, directions)
