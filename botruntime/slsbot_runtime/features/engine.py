"""The feature engine: every feature block of the catalogue behind the ``FeatureSet`` interface.

``FeatureEngine()`` computes all features; ``FeatureEngine(["rsi_14", "atr_14_pct"])`` only the blocks
that hold those names (and returns only those names). ``compute(history)`` is vectorized for backtests;
``incremental()`` gives per-symbol live state whose ``update(candle)`` returns the same values one candle
at a time. Feature values at candle t depend on candles up to t only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

import numpy as np

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV, FeatureSet, IncrementalFeatures
from slsbot_runtime.features.block import FeatureBlock, LiveBlock
from slsbot_runtime.features.momentum import MOMENTUM_BLOCKS
from slsbot_runtime.features.seasonal import CALENDAR_BLOCKS
from slsbot_runtime.features.statistical import STATISTICAL_BLOCKS
from slsbot_runtime.features.volatility import VOLATILITY_BLOCKS
from slsbot_runtime.features.volume import VOLUME_BLOCKS

#: Every block, in the order the engine runs them and lists their names.
CATALOGUE: tuple[FeatureBlock, ...] = (
    *MOMENTUM_BLOCKS,
    *VOLATILITY_BLOCKS,
    *VOLUME_BLOCKS,
    *STATISTICAL_BLOCKS,
    *CALENDAR_BLOCKS,
)
ALL_FEATURES: tuple[str, ...] = tuple(name for block in CATALOGUE for name in block.names)


class FeatureEngine(FeatureSet):
    """The catalogue's features, all of them or the ones named."""

    def __init__(self, names: Iterable[str] | None = None, *, field: str = "features") -> None:
        """``names`` selects features (None: all). An unknown name is a ConfigError naming ``field``."""
        if names is None:
            self.names = ALL_FEATURES
        else:
            wanted = list(dict.fromkeys(names))
            unknown = [name for name in wanted if name not in ALL_FEATURES]
            if unknown:
                raise ConfigError(_unknown_message(unknown, field))
            self.names = tuple(wanted)
        chosen = set(self.names)
        self.blocks = tuple(block for block in CATALOGUE if chosen.intersection(block.names))

    @property
    def warmup(self) -> int:
        """Candles after which every selected feature is defined."""
        return max((block.warmup for block in self.blocks), default=0)

    def families(self) -> dict[str, str]:
        """Feature name -> family (momentum, volatility, volume, statistical, calendar)."""
        return {name: block.family for block in self.blocks for name in block.names if name in self.names}

    def compute(self, history: OHLCV) -> dict[str, np.ndarray]:
        values: dict[str, np.ndarray] = {}
        for block in self.blocks:
            values.update(block.compute(history))
        return {name: values[name] for name in self.names}

    def incremental(self) -> IncrementalFeatureEngine:
        return IncrementalFeatureEngine(self.names, [block.live() for block in self.blocks])


class IncrementalFeatureEngine(IncrementalFeatures):
    """Live feature state for one symbol. Feed every candle in time order."""

    __slots__ = ("_blocks", "_names", "_values")

    def __init__(self, names: tuple[str, ...], blocks: list[LiveBlock]) -> None:
        self._names = names
        self._blocks = blocks
        self._values: dict[str, float] = {}

    def update(self, candle: Candle) -> Mapping[str, float]:
        """A new dict of the selected features after ``candle`` (NaN while warming up)."""
        values = self._values
        for block in self._blocks:
            block.update(candle, values)
        return {name: values[name] for name in self._names}


def _unknown_message(unknown: list[str], field: str) -> str:
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, ALL_FEATURES, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]}?)" if close else ""))
    return (
        f"{field}: unknown feature(s) {', '.join(hints)}; "
        f"the engine has {len(ALL_FEATURES)}, e.g. {', '.join(ALL_FEATURES[:6])} (see docs/concepts/strategies.md)"
    )
