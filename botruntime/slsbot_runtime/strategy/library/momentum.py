"""Momentum components: trade in the direction of the recent return."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from pydantic import Field, field_validator

from slsbot_runtime.domain.types import FLAT, Candle, Signal
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.indicators import streaming as live
from slsbot_runtime.features.indicators import vectorized as vec
from slsbot_runtime.strategy.base import StrategyParams
from slsbot_runtime.strategy.library.component import VectorizedComponent, slower_than_fast
from slsbot_runtime.strategy.library.signal_math import TIE

#: A return of 2 % gives confidence tanh(1) = 0.76.
MOMENTUM_CONFIDENCE_SCALE = 0.02


class RocMomentumParams(StrategyParams):
    period: int = Field(default=12, ge=1, le=100_000, description="Candles of the rate of change.")
    threshold: float = Field(
        default=0.0, ge=0, le=10, description="Minimum |close / close period candles ago - 1| to act (0.01 is 1 %)."
    )


class RocMomentum(VectorizedComponent):
    """+1 while the rate of change over ``period`` candles is above +threshold, -1 while below -threshold,
    0 in between.

    Confidence: tanh(|ROC| / 2 %).
    """

    id = "roc_momentum"
    Params = RocMomentumParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        self._then = live.Lag(self.params.period)

    @property
    def warmup(self) -> int:
        return self.params.period + 1

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        roc = candle.close / self._then.update(candle.close) - 1.0
        direction = _beyond(roc, self.params.threshold)
        if direction == 0.0:
            return FLAT
        return Signal(direction, math.tanh(abs(roc) / MOMENTUM_CONFIDENCE_SCALE), "rate of change")

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        close = history.close
        roc = close / vec.shift(close, self.params.period) - 1.0
        directions = _beyond_array(roc, self.params.threshold)
        with np.errstate(invalid="ignore"):
            confidences = np.where(directions != 0, np.tanh(np.abs(roc) / MOMENTUM_CONFIDENCE_SCALE), 0.0)
        return directions, confidences


def _beyond(value: float, threshold: float) -> float:
    """+1 above +threshold, -1 below -threshold (both with the tie band), else 0 (and for NaN)."""
    if value > threshold + TIE:
        return 1.0
    if value < -threshold - TIE:
        return -1.0
    return 0.0


def _beyond_array(values: np.ndarray, threshold: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(values > threshold + TIE, 1.0, np.where(values < -threshold - TIE, -1.0, 0.0))


class DualMomentumParams(StrategyParams):
    fast: int = Field(default=24, ge=1, le=100_000, description="Candles of the short-horizon return.")
    slow: int = Field(
        default=168,
        ge=1,
        le=100_000,
        validate_default=True,
        description="Candles of the long-horizon return; more than fast.",
    )
    threshold: float = Field(default=0.0, ge=0, le=10, description="Minimum |return| on both horizons to act.")

    _check_slow = field_validator("slow")(slower_than_fast)


class DualMomentum(VectorizedComponent):
    """Absolute momentum on two horizons: +1 when both the ``fast`` and the ``slow`` return are above
    +threshold, -1 when both are below -threshold, 0 when they disagree.

    Confidence: tanh(min(|fast return|, |slow return|) / 2 %).
    """

    id = "dual_momentum"
    Params = DualMomentumParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        self._fast, self._slow = live.Lag(self.params.fast), live.Lag(self.params.slow)

    @property
    def warmup(self) -> int:
        return self.params.slow + 1

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        close = candle.close
        fast = close / self._fast.update(close) - 1.0
        slow = close / self._slow.update(close) - 1.0
        threshold = self.params.threshold
        direction = _beyond(fast, threshold)
        if direction == 0.0 or direction != _beyond(slow, threshold):
            return FLAT
        return Signal(direction, math.tanh(min(abs(fast), abs(slow)) / MOMENTUM_CONFIDENCE_SCALE), "both horizons")

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        close = history.close
        fast = close / vec.shift(close, p.fast) - 1.0
        slow = close / vec.shift(close, p.slow) - 1.0
        fast_side, slow_side = _beyond_array(fast, p.threshold), _beyond_array(slow, p.threshold)
        directions = np.where(fast_side == slow_side, fast_side, 0.0)
        with np.errstate(invalid="ignore"):
            strength = np.tanh(np.minimum(np.abs(fast), np.abs(slow)) / MOMENTUM_CONFIDENCE_SCALE)
        return directions, np.where(directions != 0, strength, 0.0)
