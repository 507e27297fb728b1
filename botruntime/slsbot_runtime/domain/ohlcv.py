"""``OHLCV``: a history of one symbol's candles as arrays, what loaders read, replays walk and features compute on."""

from __future__ import annotations

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
