"""Walk-forward folds: consecutive, end to end, whole candles, each after a warm-up that lies inside the data."""

from __future__ import annotations

import itertools

import pytest

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.evaluation.folds import walk_forward_folds

H = 3_600_000
START = 1_726_272_000_000  # 2024-09-14T00:00Z


def test_folds_cover_the_period_end_to_end_in_whole_candles_as_equal_as_they_can_be():
    folds = walk_forward_folds(data_start_ms=START, data_end_ms=START + 1000 * H, interval_ms=H, warmup=100, count=4)
    assert [f.index for f in folds] == [0, 1, 2, 3]
    assert folds[0].start_ms == START + 100 * H and folds[-1].end_ms == START + 1000 * H
    assert all(a.end_ms == b.start_ms for a, b in itertools.pairwise(folds))
    assert [f.candles for f in folds] == [225, 225, 225, 225]
    assert all(f.warmup_start_ms == f.start_ms - 100 * H for f in folds)
    uneven = walk_forward_folds(data_start_ms=START, data_end_ms=START + 1003 * H, interval_ms=H, warmup=100, count=4)
    assert [f.candles for f in uneven] == [225, 226, 226, 226] and sum(f.candles for f in uneven) == 903


def test_the_held_out_period_starts_no_earlier_than_the_warm_up_allows_and_stays_on_the_candle_grid():
    folds = walk_forward_folds(
        data_start_ms=START,
        data_end_ms=START + 1000 * H,
        interval_ms=H,
        warmup=100,
        count=2,
        start_ms=START + 10 * H,  # asked for, but the first fold's warm-up would start before the data
        end_ms=START + 800 * H + 1,  # mid-candle: that candle opens before the end, so it is in
    )
    assert folds[0].start_ms == START + 100 * H and folds[0].warmup_start_ms == START
    assert folds[-1].end_ms == START + 800 * H + 1 and sum(f.candles for f in folds) == 701
    later = walk_forward_folds(
        data_start_ms=START,
        data_end_ms=START + 1000 * H,
        interval_ms=H,
        warmup=100,
        count=2,
        start_ms=START + 500 * H - 1,
    )
    assert later[0].start_ms == START + 500 * H


def test_a_period_too_short_for_the_folds_is_refused_naming_the_option():
    with pytest.raises(
        ConfigError, match=r"--folds: .* holds 100 candles after a warm-up of 100; 6 folds need at least 144"
    ):
        walk_forward_folds(data_start_ms=START, data_end_ms=START + 200 * H, interval_ms=H, warmup=100, count=6)
    with pytest.raises(ConfigError, match="--folds: at least one fold"):
        walk_forward_folds(data_start_ms=START, data_end_ms=START + 200 * H, interval_ms=H, warmup=0, count=0)


def test_folds_describe_themselves_in_utc():
    (fold,) = walk_forward_folds(data_start_ms=START, data_end_ms=START + 48 * H, interval_ms=H, warmup=24, count=1)
    assert fold.to_json() == {
        "index": 0,
        "from": "2024-09-15T00:00:00Z",
        "to": "2024-09-16T00:00:00Z",
        "warmup_from": "2024-09-14T00:00:00Z",
        "candles": 24,
    }
