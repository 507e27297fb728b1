"""Walk-forward windows: each fold trains on the days right before its test window, never on it; the test windows
follow each other up to the window end; a trial's return series counts every in-sample day once."""

from __future__ import annotations

import itertools

import pytest

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.tuning.windows import DAY_MS, returns_span, tuning_folds

H = 3_600_000
START = 1_704_067_200_000  # 2024-01-01
END = START + 400 * DAY_MS


def _folds(**changes):
    settings = {"train_days": 60, "test_days": 20, "count": 4, "warmup": 50}
    settings.update(changes)
    return tuning_folds(data_start_ms=START, data_end_ms=END, interval_ms=H, **settings)


def test_each_fold_trains_before_and_tests_after_and_the_test_windows_tile_up_to_the_end():
    folds = _folds()
    assert [f.index for f in folds] == [0, 1, 2, 3]
    assert folds[-1].test.end_ms == END
    for fold in folds:
        assert fold.train.end_ms == fold.test.start_ms  # out of sample starts where in sample stops
        assert fold.train.end_ms - fold.train.start_ms == 60 * DAY_MS and fold.train.candles == 60 * 24
        assert fold.test.end_ms - fold.test.start_ms == 20 * DAY_MS and fold.test.candles == 20 * 24
        assert fold.train.warmup_start_ms == fold.train.start_ms - 50 * H
        assert fold.test.warmup_start_ms == fold.test.start_ms - 50 * H
    for before, after in itertools.pairwise(folds):
        assert after.test.start_ms == before.test.end_ms
        assert after.train.start_ms == before.train.start_ms + 20 * DAY_MS  # the training window rolls forward


def test_a_window_end_moves_the_folds_back_and_is_taken_to_the_candle_grid():
    folds = _folds(end_ms=START + 300 * DAY_MS + H // 2)
    assert folds[-1].test.end_ms == START + 300 * DAY_MS


def test_the_returns_spans_cover_the_in_sample_days_once():
    folds = _folds()
    spans = [returns_span(folds, k) for k in range(len(folds))]
    assert spans[0][0] == folds[0].train.start_ms and spans[-1] == (folds[-1].train.start_ms, folds[-1].train.end_ms)
    for left, right in itertools.pairwise(spans):
        assert left[1] == right[0]  # consecutive, no day twice
    gapped = _folds(train_days=10, test_days=20)  # training windows shorter than the step: gaps between them
    assert [returns_span(gapped, k) for k in range(4)] == [(f.train.start_ms, f.train.end_ms) for f in gapped]


def test_data_too_short_for_the_folds_is_refused_naming_walk_forward():
    with pytest.raises(ConfigError, match=r"^walkForward: 4 folds of 330 training and 20 test days, after a warm-up"):
        _folds(train_days=330)
    with pytest.raises(ConfigError, match=r"^walkForward\.testDays: .*24 each"):
        tuning_folds(
            data_start_ms=START, data_end_ms=END, interval_ms=DAY_MS, warmup=5, train_days=30, test_days=3, count=2
        )
