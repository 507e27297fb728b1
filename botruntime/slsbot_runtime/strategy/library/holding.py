"""Position-like directions for components that enter on one condition and leave on another.

``Holding`` (one candle at a time) and ``hold_between`` (whole arrays) follow the same rules at each candle:

1. a long entry makes the direction +1, else a short entry makes it -1 (an entry always wins);
2. else a long exit ends a long (0), a short exit ends a short (0);
3. else the direction stays as it was.

``HoldFor`` / ``hold_for`` keep the direction of the last event for a number of candles instead.
"""

from __future__ import annotations

import numpy as np


class Holding:
    __slots__ = ("direction",)

    def __init__(self) -> None:
        self.direction = 0.0

    def update(self, long_entry: bool, long_exit: bool, short_entry: bool, short_exit: bool) -> float:
        if long_entry:
            self.direction = 1.0
        elif short_entry:
            self.direction = -1.0
        elif (self.direction > 0 and long_exit) or (self.direction < 0 and short_exit):
            self.direction = 0.0
        return self.direction


def hold_between(
    long_entry: np.ndarray, long_exit: np.ndarray, short_entry: np.ndarray, short_exit: np.ndarray
) -> np.ndarray:
    """The array twin of ``Holding``: the direction after each candle."""
    n = len(long_entry)
    index = np.arange(n)
    entry = np.where(long_entry, 1.0, np.where(short_entry, -1.0, 0.0))
    last = np.maximum.accumulate(np.where(entry != 0, index, -1))
    seen = last >= 0
    at = np.where(seen, last, 0)
    side = np.where(seen, entry[at], 0.0)
    long_exits = np.cumsum(long_exit)
    short_exits = np.cumsum(short_exit)
    open_long = (side > 0) & (long_exits - long_exits[at] == 0)
    open_short = (side < 0) & (short_exits - short_exits[at] == 0)
    return np.where(open_long, 1.0, np.where(open_short, -1.0, 0.0))


class HoldFor:
    """Direction of the last event (+1 or -1) for ``candles`` candles including the event's own."""

    __slots__ = ("_age", "_candles", "direction")

    def __init__(self, candles: int) -> None:
        self._candles = candles
        self._age = candles
        self.direction = 0.0

    def update(self, event: float) -> float:
        """``event`` is +1, -1 or 0 (none); returns the held direction."""
        if event:
            self.direction, self._age = event, 0
        else:
            self._age += 1
        return self.direction if self._age < self._candles else 0.0

    @property
    def age(self) -> int:
        """Candles since the last event (0 on the event's candle)."""
        return self._age


def hold_for(events: np.ndarray, candles: int) -> tuple[np.ndarray, np.ndarray]:
    """The array twin of ``HoldFor``: held directions and the age of the last event at each candle."""
    n = len(events)
    index = np.arange(n)
    last = np.maximum.accumulate(np.where(events != 0, index, -1))
    seen = last >= 0
    age = np.where(seen, index - last, candles)
    side = np.where(seen, events[np.where(seen, last, 0)], 0.0)
    return np.where(age < candles, side, 0.0), age
