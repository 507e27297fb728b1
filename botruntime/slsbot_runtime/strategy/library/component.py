"""The base of the library's components: each computes ``signal_arrays`` (directions and confidences) for
a whole history, and ``signals`` is its first half. User components may subclass it too."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping

import numpy as np
from pydantic import ValidationInfo

from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy.base import StrategyComponent


class VectorizedComponent(StrategyComponent):
    """A component that always has a vectorized twin of ``on_candle``."""

    @abstractmethod
    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(directions, confidences)`` for every candle of ``history``, equal to ``on_candle``'s."""

    def signals(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.signal_arrays(history, features)[0]


def slower_than_fast(value: int, info: ValidationInfo) -> int:
    """A ``slow`` period must exceed the ``fast`` one; used as ``field_validator("slow")(slower_than_fast)``."""
    fast = info.data.get("fast")
    if fast is not None and value <= fast:
        raise ValueError(f"must be greater than fast ({fast})")
    return value
