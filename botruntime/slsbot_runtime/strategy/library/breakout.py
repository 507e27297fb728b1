"""Breakout components: follow a close that leaves a channel, until it comes back through an exit level."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from pydantic import Field

from slsbot_runtime.domain.types import FLAT, Candle, Signal
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.indicators import streaming as live
from slsbot_runtime.features.indicators import vectorized as vec
from slsbot_runtime.strategy.base import StrategyParams
from slsbot_runtime.strategy.library.component import VectorizedComponent
from slsbot_runtime.strategy.library.holding import Holding, hold_between

NAN = math.nan


class DonchianBreakoutParams(StrategyParams):
    entry: int = Field(
        default=20, ge=1, le=100_000, description="Candles of the entry channel (highest high / lowest low)."
    )
    exit: int = Field(default=10, ge=1, le=100_000, description="Candles of the exit channel, usually shorter.")


class DonchianBreakout(VectorizedComponent):
    """The turtle rule. Long when the close breaks above the highest high of the previous ``entry`` candles,
    until it closes below the lowest low of the previous ``exit`` candles; short the other way round.

    Confidence: distance of the close from the entry channel's middle, in half-widths, capped at 1.
    """

    id = "donchian_breakout"
    Params = DonchianBreakoutParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        p = self.params
        self._entry_high, self._entry_low = live.RollingMax(p.entry), live.RollingMin(p.entry)
        self._exit_high, self._exit_low = live.RollingMax(p.exit), live.RollingMin(p.exit)
        self._previous = (NAN, NAN, NAN, NAN)  # the four channels as of the previous candle
        self._holding = Holding()

    @property
    def warmup(self) -> int:
        return max(self.params.entry, self.params.exit) + 1

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        upper, lower, exit_high, exit_low = self._previous
        self._previous = (
            self._entry_high.update(candle.high),
            self._entry_low.update(candle.low),
            self._exit_high.update(candle.high),
            self._exit_low.update(candle.low),
        )
        close = candle.close
        direction = self._holding.update(close > upper, close < exit_low, close < lower, close > exit_high)
        if direction == 0.0:
            return FLAT
        return Signal(direction, _channel_confidence(close, upper, lower), "channel breakout")

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        high, low, close = history.high, history.low, history.close
        upper, lower = vec.shift(vec.rolling_max(high, p.entry), 1), vec.shift(vec.rolling_min(low, p.entry), 1)
        exit_high, exit_low = vec.shift(vec.rolling_max(high, p.exit), 1), vec.shift(vec.rolling_min(low, p.exit), 1)
        with np.errstate(invalid="ignore"):
            directions = hold_between(close > upper, close < exit_low, close < lower, close > exit_high)
            half = (upper - lower) / 2.0
            distance = np.abs(close - (upper + lower) / 2.0) / np.where(half > 0, half, 1.0)
        confidences = np.where(directions != 0, np.where(half > 0, np.minimum(distance, 1.0), 1.0), 0.0)
        return directions, confidences


def _channel_confidence(close: float, upper: float, lower: float) -> float:
    half = (upper - lower) / 2.0
    if not half > 0:
        return 1.0
    return min(abs(close - (upper + lower) / 2.0) / half, 1.0)


class KeltnerBreakoutParams(StrategyParams):
    period: int = Field(default=20, ge=1, le=100_000, description="Period of the EMA at the channel's middle.")
    atr_period: int = Field(default=10, ge=1, le=100_000, description="Period of the ATR (Wilder) giving the width.")
    multiplier: float = Field(default=2.0, gt=0, le=20, description="Channel half-width in ATRs.")


class KeltnerBreakout(VectorizedComponent):
    """Long when the close is above EMA + multiplier * ATR, until it closes below the EMA; short when below
    EMA - multiplier * ATR, until it closes above the EMA.

    Confidence: min(1, |close - EMA| / (multiplier * ATR)).
    """

    id = "keltner_breakout"
    Params = KeltnerBreakoutParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        self._middle = live.Ema(self.params.period)
        self._range = live.TrueRange()
        self._atr = live.Wilder(self.params.atr_period)
        self._holding = Holding()

    @property
    def warmup(self) -> int:
        return max(self.params.period, self.params.atr_period)

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        close = candle.close
        middle = self._middle.update(close)
        width = self.params.multiplier * self._atr.update(self._range.update(candle.high, candle.low, close))
        direction = self._holding.update(close > middle + width, close < middle, close < middle - width, close > middle)
        if direction == 0.0:
            return FLAT
        confidence = min(abs(close - middle) / width, 1.0) if width > 0 else 1.0
        return Signal(direction, confidence, "keltner breakout")

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        close = history.close
        middle = vec.ema(close, p.period)
        width = p.multiplier * vec.wilder(vec.true_range(history.high, history.low, close), p.atr_period)
        with np.errstate(invalid="ignore"):
            directions = hold_between(close > middle + width, close < middle, close < middle - width, close > middle)
            ratio = np.minimum(np.abs(close - middle) / np.where(width > 0, width, 1.0), 1.0)
        return directions, np.where(directions != 0, np.where(width > 0, ratio, 1.0), 0.0)
