"""Purging and embargo, proven on constructed label windows."""

from __future__ import annotations

import numpy as np
import pytest

from slsbot_runtime.ml.labels import forward_labels
from slsbot_runtime.ml.splits import (
    block_boundaries,
    keep_for_training,
    purged_kfold_splits,
    train_calibrate_holdout,
    walk_forward_splits,
)


def _windows(n: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    t0 = np.arange(n, dtype=np.int64)
    return t0, t0 + horizon


def test_labels_are_the_sign_of_the_return_over_the_horizon() -> None:
    close = np.array([10.0, 11.0, 11.0, 9.0, 12.0])
    labels = forward_labels(np.arange(5) * 60, close, 2)
    assert labels.y.tolist() == [1, 0, 1]  # 11 > 10, 9 <= 11 (not up), 12 > 11
    assert labels.t0.tolist() == [0, 60, 120]
    assert labels.t1.tolist() == [120, 180, 240]


@pytest.mark.parametrize(("horizon", "embargo"), [(1, 0), (5, 0), (5, 3), (24, 12)])
def test_no_training_label_window_comes_near_the_validation_window(horizon: int, embargo: int) -> None:
    t0, t1 = _windows(400, horizon)
    for split in [*walk_forward_splits(t0, t1, 4, embargo=embargo), *purged_kfold_splits(t0, t1, 4, embargo=embargo)]:
        start, end = t0[split.test].min(), t1[split.test].max()
        train = split.train
        overlaps = (t1[train] >= start - embargo) & (t0[train] <= end + embargo)
        assert not overlaps.any()
        # and nothing more than that is dropped: every other row outside the test block trains
        outside = np.setdiff1d(np.arange(400), split.test)
        allowed = outside[(t1[outside] < start - embargo) | (t0[outside] > end + embargo)]
        in_walk = np.array_equal(train, allowed[t0[allowed] < start])
        assert np.array_equal(train, allowed) or in_walk


def test_the_purge_is_exactly_the_horizon_and_the_embargo() -> None:
    t0, t1 = _windows(100, 5)
    test = np.arange(50, 60)
    keep = keep_for_training(t0, t1, test, embargo=3)
    # a sample at t is dropped when [t, t + 5] reaches [50 - 3, 59 + 5 + 3]
    assert np.flatnonzero(~keep).tolist() == list(range(42, 68))


def test_walk_forward_trains_only_on_the_past() -> None:
    t0, t1 = _windows(300, 3)
    splits = list(walk_forward_splits(t0, t1, 3, embargo=2))
    assert len(splits) == 3
    for split in splits:
        assert t0[split.train].max() < t0[split.test].min() - 3 - 2


def test_rows_sharing_a_time_stay_in_one_block() -> None:
    t0 = np.repeat(np.arange(100, dtype=np.int64), 3)  # three symbols
    t1 = t0 + 2
    for split in purged_kfold_splits(t0, t1, 5):
        times = set(t0[split.test].tolist())
        assert not times.intersection(t0[split.train].tolist())
        assert len(split.test) % 3 == 0


def test_the_three_blocks_of_a_retrain_are_purged_against_each_newer_one() -> None:
    t0, t1 = _windows(1000, 4)
    calibrate_at, holdout_at = block_boundaries(t0, calibration_fraction=0.2, holdout_fraction=0.2)
    assert (calibrate_at, holdout_at) == (600, 800)
    blocks = train_calibrate_holdout(t0, t1, calibrate_at=calibrate_at, holdout_at=holdout_at, embargo=2)
    assert blocks.holdout.tolist() == list(range(800, 1000))
    assert blocks.calibrate.min() == 600 + 0 and blocks.calibrate.max() == 800 - 4 - 2 - 1
    assert blocks.train.max() == 600 - 4 - 2 - 1
    assert t1[blocks.calibrate].max() < 800 - 2
