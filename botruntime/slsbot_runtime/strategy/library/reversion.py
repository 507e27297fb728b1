"""Mean-reversion components: buy what fell unusually far, sell what rose unusually far, and hold until
the move has reverted past an exit level (see ``holding`` for the exact rules)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from slsbot_runtime.domain.types import FLAT, Candle, Signal
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.indicators import streaming as live
from slsbot_runtime.features.indicators import vectorized as vec
from slsbot_runtime.strategy.base import StrategyParams
from slsbot_runtime.strategy.library.component import VectorizedComponent
from slsbot_runtime.strategy.library.holding import Holding, hold_between


def _above(field: str):
    def check(value: float, info: ValidationInfo) -> float:
        other = info.data.get(field)
        if other is not None and value <= other:
            raise ValueError(f"must be greater than {field} ({other})")
        return value

    return check


class RsiReversionParams(StrategyParams):
    period: int = Field(default=14, ge=2, le=10_000, description="Candles of Wilder's RSI.")
    oversold: float = Field(default=30.0, gt=0, lt=100, description="Go long when RSI falls below this.")
    exit: float = Field(
        default=50.0,
        gt=0,
        lt=100,
        validate_default=True,
        description="Leave a long when RSI is back at or above this, a short at or below; above oversold.",
    )
    overbought: float = Field(
        default=70.0,
        gt=0,
        lt=100,
        validate_default=True,
        description="Go short when RSI rises above this; above exit.",
    )

    _check_exit = field_validator("exit")(_above("oversold"))
    _check_overbought = field_validator("overbought")(_above("exit"))


class RsiReversion(VectorizedComponent):
    """Long when RSI < oversold until RSI >= exit; short when RSI > overbought until RSI <= exit.

    Confidence: how far RSI still is from the exit, as a share of the entry distance (1 at the entry level
    or beyond, falling to 0 at the exit).
    """

    id = "rsi_reversion"
    Params = RsiReversionParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        self._rsi = live.Rsi(self.params.period)
        self._holding = Holding()

    @property
    def warmup(self) -> int:
        return self.params.period + 1

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        p = self.params
        rsi = self._rsi.update(candle.close)
        direction = self._holding.update(rsi < p.oversold, rsi >= p.exit, rsi > p.overbought, rsi <= p.exit)
        if direction == 0.0:
            return FLAT
        reach = p.exit - p.oversold if direction > 0 else p.overbought - p.exit
        return Signal(direction, min(abs(p.exit - rsi) / reach, 1.0), "rsi extreme")

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        rsi = vec.rsi(history.close, p.period)
        with np.errstate(invalid="ignore"):
            directions = hold_between(rsi < p.oversold, rsi >= p.exit, rsi > p.overbought, rsi <= p.exit)
        reach = np.where(directions > 0, p.exit - p.oversold, p.overbought - p.exit)
        confidences = np.where(directions != 0, np.minimum(np.abs(p.exit - rsi) / reach, 1.0), 0.0)
        return directions, confidences


class BollingerReversionParams(StrategyParams):
    period: int = Field(default=20, ge=2, le=10_000, description="Candles of the moving mean and standard deviation.")
    num_std: float = Field(default=2.0, gt=0, le=10, description="Band width in standard deviations: the entry level.")
    exit_z: float = Field(
        default=0.0,
        ge=0,
        le=10,
        description="Leave a long once the z-score is back at or above -exit_z (a short: at or below +exit_z); "
        "0 is the middle band. Less than num_std.",
    )

    @field_validator("exit_z")
    @classmethod
    def _inside_bands(cls, value: float, info: ValidationInfo) -> float:
        bands = info.data.get("num_std")
        if bands is not None and value >= bands:
            raise ValueError(f"must be less than num_std ({bands})")
        return value


class BollingerReversion(VectorizedComponent):
    """Long when the close is below the lower Bollinger band (z < -num_std) until z >= -exit_z; short when
    above the upper band until z <= exit_z. z = (close - SMA) / population std of ``period`` closes.

    Confidence: min(1, |z| / num_std).
    """

    id = "bollinger_reversion"
    Params = BollingerReversionParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        self._moments = live.RollingMoments(self.params.period)
        self._holding = Holding()

    @property
    def warmup(self) -> int:
        return self.params.period

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        p = self.params
        self._moments.update(candle.close)
        z = self._moments.zscore(candle.close)
        direction = self._holding.update(z < -p.num_std, z >= -p.exit_z, z > p.num_std, z <= p.exit_z)
        if direction == 0.0:
            return FLAT
        return Signal(direction, min(abs(z) / p.num_std, 1.0), "outside the band")

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        z = vec.rolling_zscore(history.close, p.period)
        with np.errstate(invalid="ignore"):
            directions = hold_between(z < -p.num_std, z >= -p.exit_z, z > p.num_std, z <= p.exit_z)
        return directions, np.where(directions != 0, np.minimum(np.abs(z) / p.num_std, 1.0), 0.0)


class ZscoreReversionParams(StrategyParams):
    horizon: int = Field(default=24, ge=1, le=10_000, description="Candles of the log return being judged.")
    period: int = Field(
        default=168, ge=2, le=100_000, description="Candles of return history that define 'usual' (mean and std)."
    )
    entry: float = Field(default=2.0, gt=0, le=10, description="Enter when |z| of the return exceeds this.")
    exit: float = Field(
        default=0.5,
        ge=0,
        le=10,
        validate_default=True,
        description="Leave once the z-score is back within this of 0 (on the entry side); less than entry.",
    )

    @field_validator("exit")
    @classmethod
    def _below_entry(cls, value: float, info: ValidationInfo) -> float:
        entry = info.data.get("entry")
        if entry is not None and value >= entry:
            raise ValueError(f"must be less than entry ({entry})")
        return value


class ZscoreReversion(VectorizedComponent):
    """Fades unusual moves: z = z-score of the ``horizon``-candle log return among the last ``period``
    such returns. Long when z < -entry until z >= -exit; short when z > entry until z <= exit.

    Confidence: min(1, |z| / entry).
    """

    id = "zscore_reversion"
    Params = ZscoreReversionParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        self._then = live.Lag(self.params.horizon)
        self._moments = live.RollingMoments(self.params.period)
        self._holding = Holding()

    @property
    def warmup(self) -> int:
        return self.params.horizon + self.params.period

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        p = self.params
        then = self._then.update(candle.close)
        if then != then:
            return FLAT
        move = math.log(candle.close / then)
        self._moments.update(move)
        z = self._moments.zscore(move)
        direction = self._holding.update(z < -p.entry, z >= -p.exit, z > p.entry, z <= p.exit)
        if direction == 0.0:
            return FLAT
        return Signal(direction, min(abs(z) / p.entry, 1.0), "unusual move")

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        close = history.close
        z = vec.rolling_zscore(np.log(close / vec.shift(close, p.horizon)), p.period)
        with np.errstate(invalid="ignore"):
            directions = hold_between(z < -p.entry, z >= -p.exit, z > p.entry, z <= p.exit)
        return directions, np.where(directions != 0, np.minimum(np.abs(z) / p.entry, 1.0), 0.0)
