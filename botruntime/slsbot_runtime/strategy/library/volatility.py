"""Volatility components: act on a move that is large for the current volatility, or only in a calm regime."""

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
from slsbot_runtime.strategy.library.holding import HoldFor, hold_for
from slsbot_runtime.strategy.library.signal_math import (
    TIE,
    confidence_of,
    confidences_of,
    direction_of,
    directions_of,
)

NAN = math.nan
#: A close 2 % away from its trend average gives confidence tanh(1) = 0.76.
REGIME_CONFIDENCE_SCALE = 0.02


class AtrVolatilityBreakoutParams(StrategyParams):
    period: int = Field(default=14, ge=1, le=100_000, description="Period of the ATR (Wilder).")
    multiplier: float = Field(
        default=1.5, gt=0, le=20, description="A close-to-close move beyond this many ATRs is a breakout."
    )
    hold: int = Field(default=24, ge=1, le=100_000, description="Candles to keep the breakout's direction.")


class AtrVolatilityBreakout(VectorizedComponent):
    """A breakout is a close more than ``multiplier`` ATRs (as of the previous candle) away from the previous
    close. Its direction is held for ``hold`` candles, including the breakout's own; a new breakout
    restarts the count (and may flip the direction).

    Confidence: 1 on the breakout candle, falling linearly towards 0 as the hold runs out.
    """

    id = "atr_volatility_breakout"
    Params = AtrVolatilityBreakoutParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        self._range = live.TrueRange()
        self._atr = live.Wilder(self.params.period)
        self._previous_atr = NAN
        self._previous_close = NAN
        self._held = HoldFor(self.params.hold)

    @property
    def warmup(self) -> int:
        return self.params.period + 1

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        close = candle.close
        band = self.params.multiplier * self._previous_atr
        move = close - self._previous_close
        self._previous_close = close
        self._previous_atr = self._atr.update(self._range.update(candle.high, candle.low, close))
        event = 1.0 if move > band else (-1.0 if move < -band else 0.0)
        direction = self._held.update(event)
        if direction == 0.0:
            return FLAT
        return Signal(direction, 1.0 - self._held.age / self.params.hold, "volatility breakout")

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        close = history.close
        atr = vec.wilder(vec.true_range(history.high, history.low, close), p.period)
        band = p.multiplier * vec.shift(atr, 1)
        move = vec.diff(close)
        with np.errstate(invalid="ignore"):
            events = np.where(move > band, 1.0, np.where(move < -band, -1.0, 0.0))
        directions, age = hold_for(events, p.hold)
        return directions, np.where(directions != 0, 1.0 - age / p.hold, 0.0)


class VolatilityRegimeParams(StrategyParams):
    fast: int = Field(default=24, ge=2, le=100_000, description="Candles of the recent realised volatility.")
    slow: int = Field(
        default=168,
        ge=2,
        le=100_000,
        validate_default=True,
        description="Candles of the reference realised volatility; more than fast.",
    )
    ratio: float = Field(
        default=1.0, gt=0, le=100, description="Calm regime: recent volatility below ratio * reference volatility."
    )
    trend: int = Field(default=50, ge=1, le=100_000, description="Candles of the SMA that gives the trend.")

    _check_slow = field_validator("slow")(slower_than_fast)


class VolatilityRegime(VectorizedComponent):
    """Follows the trend (+1 above the ``trend`` SMA, -1 below) only in a calm regime, when the realised
    volatility (sample std of 1-candle log returns) over ``fast`` candles is below ``ratio`` times the one
    over ``slow`` candles (or when the reference window did not move at all); flat in a turbulent regime.

    Confidence: tanh(|close / SMA - 1| / 2 %).
    """

    id = "volatility_regime"
    Params = VolatilityRegimeParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        p = self.params
        self._recent, self._reference = live.RollingMoments(p.fast), live.RollingMoments(p.slow)
        self._trend = live.RollingMean(p.trend)
        self._previous_close = NAN

    @property
    def warmup(self) -> int:
        return max(self.params.slow + 1, self.params.trend)

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        close = candle.close
        previous, self._previous_close = self._previous_close, close
        trend = self._trend.update(close)
        if previous != previous:
            return FLAT
        ret = math.log(close / previous)
        self._recent.update(ret)
        if not self._reference.update(ret) or trend != trend:
            return FLAT
        reference = self._reference
        calm = live.is_flat(reference.var(), reference.mean()) or (
            self._recent.std(ddof=1) < self.params.ratio * reference.std(ddof=1) * (1.0 - TIE)
        )
        spread = close / trend - 1.0
        direction = direction_of(spread) if calm else 0.0
        if direction == 0.0:
            return FLAT
        return Signal(direction, confidence_of(spread, REGIME_CONFIDENCE_SCALE), "calm trend")

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        close = history.close
        returns = np.log(close / vec.shift(close, 1))
        recent = vec.rolling_std(returns, p.fast, ddof=1)
        mean, var, _, _ = vec.rolling_moments(returns, p.slow)
        reference = np.sqrt(var * p.slow / (p.slow - 1))
        with np.errstate(invalid="ignore"):
            calm = vec.is_flat(var, mean) | (recent < p.ratio * reference * (1.0 - TIE))
        spread = close / vec.rolling_mean(close, p.trend) - 1.0
        directions = np.where(calm, directions_of(spread), 0.0)
        return directions, confidences_of(spread, REGIME_CONFIDENCE_SCALE, directions)
