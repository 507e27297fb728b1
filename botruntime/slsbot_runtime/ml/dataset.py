"""From candle windows to a training table: feature rows, labels and label windows, pooled over symbols.

Each window is one symbol's last candles before a retrain point: the feature engine's warmup, then up to
``lookback`` candles that become samples. Features are the feature engine's vectorized values; a row with a
feature not yet defined (warmup, a gap's re-warm) or no label yet is left out. Rows are in time order, symbols
in window order within one time, so every split is by time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.engine import FeatureEngine
from slsbot_runtime.ml.labels import forward_labels


@dataclass(frozen=True, slots=True)
class Dataset:
    features: tuple[str, ...]
    X: np.ndarray  # (rows, features) float64
    y: np.ndarray  # (rows,) int8
    t0: np.ndarray  # (rows,) int64 open time of the sample's candle
    t1: np.ndarray  # (rows,) int64 open time of the candle that decides its label
    symbol: np.ndarray  # (rows,) index into the windows
    #: Open times of every sample candle of the windows, whether or not its features are defined yet: the times
    #: the blocks of a retrain are cut on (``splits.block_boundaries``), the same for every model of one retrain.
    sample_times: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def rows(self, index: np.ndarray) -> Dataset:
        return Dataset(
            self.features,
            self.X[index],
            self.y[index],
            self.t0[index],
            self.t1[index],
            self.symbol[index],
            self.sample_times,
        )

    def fingerprint(self) -> str:
        """SHA-256 of the table's values (what the model was trained on), for the registry."""
        digest = hashlib.sha256()
        digest.update(",".join(self.features).encode())
        for array in (self.X, self.y, self.t0, self.t1, self.symbol):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def build_dataset(windows: Sequence[OHLCV], features: Sequence[str], *, horizon: int, lookback: int) -> Dataset:
    """The pooled training table of ``windows`` (one per symbol), samples from each window's last ``lookback``
    candles."""
    engine = FeatureEngine(features, field="ml.models[].features")
    names = engine.names
    parts_X, parts_y, parts_t0, parts_t1, parts_s, sample_times = [], [], [], [], [], []
    for k, window in enumerate(windows):
        labels = forward_labels(window.ts, window.close, horizon)
        n = len(labels.y)
        if n == 0:
            continue
        values = engine.compute(window)
        X = np.column_stack([np.asarray(values[name], dtype=np.float64)[:n] for name in names])
        first = max(0, len(window) - lookback)
        usable = np.all(np.isfinite(X), axis=1)
        usable[:first] = False
        sample_times.append(labels.t0[first:])
        parts_X.append(X[usable])
        parts_y.append(labels.y[usable])
        parts_t0.append(labels.t0[usable])
        parts_t1.append(labels.t1[usable])
        parts_s.append(np.full(int(usable.sum()), k, dtype=np.int16))
    if not parts_X:
        empty = np.empty(0, dtype=np.int64)
        return Dataset(names, np.empty((0, len(names))), np.empty(0, dtype=np.int8), empty, empty, empty, empty)
    X, y = np.concatenate(parts_X), np.concatenate(parts_y)
    t0, t1, symbol = np.concatenate(parts_t0), np.concatenate(parts_t1), np.concatenate(parts_s)
    order = np.lexsort((symbol, t0))
    times = np.unique(np.concatenate(sample_times))
    return Dataset(names, X[order], y[order], t0[order], t1[order], symbol[order], times)


def feature_warmup(features: Sequence[str]) -> int:
    """Candles the feature engine needs before these features are all defined."""
    return FeatureEngine(features, field="ml.models[].features").warmup
