"""Small pieces every library component shares: turning a spread into a direction with a tie band, and a
spread into a confidence. Each comes as a scalar (``on_candle``) and an array (``signal_arrays``) twin."""

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
