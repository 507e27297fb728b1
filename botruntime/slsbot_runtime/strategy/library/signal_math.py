"""Small pieces every library component shares: turning a spread into a direction with a tie band, a spread
into a confidence, and a side into its crossings. Each comes as a scalar (``on_candle``) and an array
(``signal_arrays``) twin."""

from __future__ import annotations

import math

import numpy as np

#: Two indicator values closer than this (relative) are a tie: direction 0. Keeps the step and vectorized
#: paths from disagreeing on rounding noise when, e.g., both averages of a constant price are equal.
TIE = 1e-10


def direction_of(spread: float) -> float:
    """+1 above the tie band, -1 below it, 0 inside it or when ``spread`` is NaN."""
    if spread > TIE:
        return 1.0
    if spread < -TIE:
        return -1.0
    return 0.0


def directions_of(spread: np.ndarray) -> np.ndarray:
    return np.where(spread > TIE, 1.0, np.where(spread < -TIE, -1.0, 0.0))


def confidence_of(magnitude: float, scale: float) -> float:
    """tanh(|magnitude| / scale): 0 at no signal, 0.76 at one ``scale``, towards 1 beyond."""
    return math.tanh(abs(magnitude) / scale)


def confidences_of(magnitude: np.ndarray, scale: float, directions: np.ndarray) -> np.ndarray:
    """The array twin of ``confidence_of``, 0 where the direction is flat."""
    with np.errstate(invalid="ignore"):
        value = np.tanh(np.abs(magnitude) / scale)
    return np.where(directions != 0, value, 0.0)


class Crossing:
    """The crossover rule, one candle at a time: ``update(side)`` with the side a spread is on (+1, -1, or 0
    for a tie or no value yet) answers +1 on the candle where the side turns positive after having been
    negative, -1 where it turns negative after having been positive, 0 otherwise. A tie keeps the last side
    (backtrader's ``CrossOver``), and the first side ever seen, at the end of a warmup, is not a crossing."""

    __slots__ = ("side",)

    def __init__(self) -> None:
        self.side = 0.0  # the last non-zero side

    def update(self, side: float) -> float:
        if side == 0.0:
            return 0.0
        previous, self.side = self.side, side
        return side if previous != 0.0 and previous != side else 0.0


def crossings(sides: np.ndarray) -> np.ndarray:
    """The array twin of ``Crossing``: for every candle, the crossing its side makes (+1, -1 or 0)."""
    n = len(sides)
    index = np.arange(n)
    last = np.maximum.accumulate(np.where(sides != 0, index, -1))  # the last non-zero side at or before t
    before = np.concatenate(([-1], last[:-1]))  # ... strictly before t
    previous = np.where(before >= 0, sides[np.maximum(before, 0)], 0.0)
    return np.where((sides != 0) & (previous != 0) & (sides != previous), sides, 0.0)
