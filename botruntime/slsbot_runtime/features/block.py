"""A feature block: a few related features computed together, vectorized and incrementally.

Blocks are the unit the engine selects: asking for one feature of a block computes the whole block, which
shares its state (one ring buffer of closes serves every return horizon). Each block states its ``warmup``:
the number of candles after which every one of its values is defined.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

import numpy as np

from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV


class LiveBlock(Protocol):
    def update(self, candle: Candle, out: dict[str, float]) -> None:
        """Write this block's values after ``candle`` into ``out`` (NaN while warming up)."""


class FeatureBlock(ABC):
    #: Feature names this block writes, in a stable order.
    names: tuple[str, ...]
    #: Candles after which every value of the block is defined.
    warmup: int
    #: The family the block belongs to (momentum, volatility, volume, statistical, calendar).
    family: str

    @abstractmethod
    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        """Every feature of the block over ``history``."""

    @abstractmethod
    def live(self) -> LiveBlock:
        """Fresh incremental state for one symbol."""
