"""What a signal model learns: whether the close ``horizon`` candles ahead is above this close.

For candle t of one symbol the label is 1 when ``close[t + horizon] > close[t]`` and 0 otherwise (a flat close
counts as 0, "not up"), and its *label window* runs from the candle's open time ``t0 = ts[t]`` to
``t1 = ts[t + horizon]``, the open time of the candle whose close decides it. The last ``horizon`` candles of a
history have no label yet. Candles are counted, not hours, as the feature engine counts them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Labels(NamedTuple):
    y: np.ndarray  # int8, 1 up / 0 not up, for the first n - horizon candles
    t0: np.ndarray  # int64, open time of the candle the features describe
    t1: np.ndarray  # int64, open time of the candle whose close decides the label


def forward_labels(ts: np.ndarray, close: np.ndarray, horizon: int) -> Labels:
    """Labels and label windows of every candle that has one (the first ``len - horizon``)."""
    if horizon < 1:
        raise ValueError(f"horizon: must be at least 1 candle, got {horizon}")
    n = len(close) - horizon
    if n <= 0:
        empty = np.empty(0, dtype=np.int64)
        return Labels(np.empty(0, dtype=np.int8), empty, empty)
    close = np.asarray(close, dtype=np.float64)
    ts = np.asarray(ts, dtype=np.int64)
    return Labels((close[horizon:] > close[:n]).astype(np.int8), ts[:n].copy(), ts[horizon:].copy())
