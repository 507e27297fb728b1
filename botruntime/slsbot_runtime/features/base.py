"""The feature interface. A feature set computes the same values two ways: vectorized over a whole
history (backtests, fast mode) and incrementally one candle at a time (live). The two must agree, and no
value at time t may depend on candles after t."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from slsbot_runtime.domain.ohlcv import OHLCV
from slsbot_runtime.domain.types import Candle

__all__ = ["OHLCV", "FeatureSet", "IncrementalFeatures"]


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
