"""Purged and embargoed splits over samples with label windows ``[t0, t1]`` (times, not row numbers, so rows of
several symbols pooled together are split by time).

A validation window covers ``[A, B]``: the first ``t0`` and the last ``t1`` of its samples. A training sample is
*purged* when its own label window overlaps it, and *embargoed* when it comes within ``embargo`` (a time) of
it: a training sample ``i`` is kept only if ``t1[i] < A - embargo`` or ``t0[i] > B + embargo``. So no training
label is decided by a price inside the validation window, and the samples right next to it, whose features
overlap it through their rolling windows, are left out too.

* ``walk_forward_splits``: validation blocks in time order, training only on what came before (as live).
* ``purged_kfold_splits``: every block validates once, training on everything else (before and after) that
  survives the purge and embargo (de Prado's purged k-fold), for out-of-fold predictions.
* ``train_calibrate_holdout``: the three blocks a retrain uses, oldest to newest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    train: np.ndarray  # row indices, ascending
    test: np.ndarray


def keep_for_training(t0: np.ndarray, t1: np.ndarray, test: np.ndarray, embargo: int) -> np.ndarray:
    """Mask of samples that may train a model validated on rows ``test``: outside the validation window widened
    by ``embargo`` on both sides, label windows included. Rows of ``test`` themselves are never kept."""
    if len(test) == 0:
        return np.ones(len(t0), dtype=bool)
    start = int(t0[test].min()) - embargo
    end = int(t1[test].max()) + embargo
    keep = (t1 < start) | (t0 > end)
    keep[test] = False
    return keep


def time_blocks(t0: np.ndarray, count: int) -> list[np.ndarray]:
    """Rows split into ``count`` contiguous blocks of (nearly) equal numbers of distinct times, oldest first; rows
    sharing a time (several symbols) stay in one block."""
    times = np.unique(t0)
    if count < 1 or len(times) < count:
        raise ValueError(f"cannot split {len(times)} distinct times into {count} blocks")
    edges = [times[round(k * len(times) / count)] for k in range(1, count)]
    which = np.searchsorted(np.asarray(edges), t0, side="right")
    return [np.flatnonzero(which == k) for k in range(count)]


def walk_forward_splits(t0: np.ndarray, t1: np.ndarray, n_splits: int, *, embargo: int = 0) -> Iterator[Split]:
    """``n_splits`` validation blocks, the newest ``n_splits`` of ``n_splits + 1``; each trains on the rows before it
    that survive the purge and embargo."""
    blocks = time_blocks(t0, n_splits + 1)
    for test in blocks[1:]:
        before = t0 < t0[test].min()
        keep = keep_for_training(t0, t1, test, embargo) & before
        yield Split(np.flatnonzero(keep), test)


def purged_kfold_splits(t0: np.ndarray, t1: np.ndarray, n_splits: int, *, embargo: int = 0) -> Iterator[Split]:
    """Every block validates once; training on all other rows that survive the purge and embargo."""
    for test in time_blocks(t0, n_splits):
        yield Split(np.flatnonzero(keep_for_training(t0, t1, test, embargo)), test)


class Blocks(NamedTuple):
    train: np.ndarray
    calibrate: np.ndarray
    holdout: np.ndarray


def block_boundaries(times: np.ndarray, *, calibration_fraction: float, holdout_fraction: float) -> tuple[int, int]:
    """``(calibrate_at, holdout_at)``: the first times of the calibration block and the holdout, so that the
    holdout holds the newest ``holdout_fraction`` of the distinct ``times`` and the calibration block the
    ``calibration_fraction`` before it. Every model of one retrain uses the same boundaries (computed from the
    window's candle times, whatever rows a model's features leave out), so a stacking model's calibration block
    is out of sample for each of its inputs."""
    times = np.unique(times)
    n = len(times)
    if n < 3:
        raise ValueError(f"cannot split {n} distinct times into training, calibration and holdout blocks")
    holdout_at = times[min(n - 1, round(n * (1 - holdout_fraction)))]
    calibrate_at = times[min(n - 2, round(n * (1 - holdout_fraction - calibration_fraction)))]
    return int(calibrate_at), int(holdout_at)


def train_calibrate_holdout(
    t0: np.ndarray, t1: np.ndarray, *, calibrate_at: int, holdout_at: int, embargo: int = 0
) -> Blocks:
    """Rows from ``holdout_at`` on are the holdout, rows from ``calibrate_at`` the calibration block, older rows the
    training block; each older block is purged and embargoed against every newer one, so the calibration and the
    score are both out of sample."""
    holdout = np.flatnonzero(t0 >= holdout_at)
    calibrate_rows = np.flatnonzero((t0 >= calibrate_at) & (t0 < holdout_at))
    calibrate = calibrate_rows[keep_for_training(t0, t1, holdout, embargo)[calibrate_rows]]
    train_rows = np.flatnonzero(t0 < calibrate_at)
    keep = keep_for_training(t0, t1, holdout, embargo) & keep_for_training(t0, t1, calibrate_rows, embargo)
    return Blocks(train_rows[keep[train_rows]], calibrate, holdout)
