"""The feature interface. A feature set computes the same values two ways: vectorized over a whole
history (backtests, fast mode) and incrementally one candle at a time (live). The two must agree, and no
value at time t may depend on candles after t."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from slsbot_runtime.domain.types import Candle


@dataclass(frozen=True, slots=True)
class OHLCV:
    """A history of one symbol's candles as float64 arrays; ``ts`` holds open times in ms (int64)."""

    symbol: str
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def candle(self, i: int) -> Candle:
        return Candle(
            self.symbol,
            int(self.ts[i]),
            float(self.open[i]),
            float(self.high[i]),
            float(self.low[i]),
            float(self.close[i]),
            float(self.volume[i]),
        )

    def slice(self, start: int, stop: int) -> OHLCV:
        return OHLCV(
            self.symbol,
            self.ts[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
        )


class IncrementalFeatures(ABC):
    """Live state of a feature set for one symbol."""

    @abstractmethod
    def update(self, candle: Candle) -> Mapping[str, float]:
        """Values after this candle closed; NaN while a feature is still warming up."""


class FeatureSet(ABC):
    names: tuple[str, ...]

    @abstractmethod
    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        """Every feature over the whole history, one array per name, NaN while warming up."""

    @abstractmethod
    def incremental(self) -> IncrementalFeatures: ...
