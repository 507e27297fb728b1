"""Test-only strategy components that look ahead on purpose, for the lookahead check to catch. Never registered
in the library: tests add them with ``LIBRARY.extended(...)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from slsbot_runtime.domain.types import Candle, Signal
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams
from slsbot_runtime.strategy.library.component import VectorizedComponent


class _NoParams(StrategyParams):
    pass


class NextClosePeeker(VectorizedComponent):
    """Long when the next candle closes higher. ``on_candle`` cannot see the next candle, so it compares with
    the previous one; ``signal_arrays`` reads the next candle's close (the classic shift the wrong way), and
    for the last candle of a history, which has none, it has no opinion."""

    id = "next_close_peeker"
    Params = _NoParams

    def __init__(self, params: Mapping[str, object] | None = None) -> None:
        super().__init__(params)
        self._previous: float | None = None

    @property
    def warmup(self) -> int:
        return 1

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        previous, self._previous = self._previous, candle.close
        return Signal(0.0 if previous is None else float(np.sign(candle.close - previous)))

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        close = np.asarray(history.close, dtype=np.float64)
        following = np.append(close[1:], close[-1:])  # the next candle's close; the last has none
        return np.sign(following - close), np.ones(len(close))


class SharedTapePeeker(StrategyComponent):
    """Long when the next candle closes higher, as told by a tape of closes that every instance writes to and
    reads from (state shared between runs): once one run has seen a later candle, another run's decision about
    an earlier one changes. It has no vectorized form. ``TAPE`` must be cleared before each test."""

    id = "shared_tape_peeker"
    Params = _NoParams
    TAPE: ClassVar[dict[int, float]] = {}
    INTERVAL_MS: ClassVar[int] = 3_600_000

    @property
    def warmup(self) -> int:
        return 1

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        self.TAPE[candle.ts] = candle.close
        following = self.TAPE.get(candle.ts + self.INTERVAL_MS)
        return Signal(0.0 if following is None else float(np.sign(following - candle.close)))
