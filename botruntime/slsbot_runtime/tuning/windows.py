"""The walk-forward windows of a tuning run: per fold an in-sample (training) window and the out-of-sample
(test) window right after it. Pure.

The out-of-sample windows follow each other without a gap and end at the window end; each is ``testDays`` long,
so together they are ``evaluation.folds.walk_forward_folds`` over the last ``folds x testDays`` (whole candles,
equal folds). Fold k's in-sample window is the ``trainDays`` right before its out-of-sample window: it rolls
forward with it, and consecutive in-sample windows overlap when ``trainDays`` exceeds ``testDays``. Both
windows are backtested as the evaluation backtests a fold: the run starts ``warmup`` candles earlier and
trades only inside the window.

A fold's out-of-sample window never overlaps its own in-sample window (it starts where that one ends); it is
read as the next folds' training data, which is the point of walking forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.domain.timeframes import utc_iso
from slsbot_runtime.evaluation.folds import Fold, walk_forward_folds

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class TuningFold:
    index: int
    train: Fold  # the in-sample window (and the warm-up before it)
    test: Fold  # the out-of-sample window (and the warm-up before it)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "train": {"from": utc_iso(self.train.start_ms), "to": utc_iso(self.train.end_ms)},
            "test": {"from": utc_iso(self.test.start_ms), "to": utc_iso(self.test.end_ms)},
        }


def tuning_folds(
    *,
    data_start_ms: int,
    data_end_ms: int,
    interval_ms: int,
    warmup: int,
    train_days: int,
    test_days: int,
    count: int,
    end_ms: int | None = None,
) -> list[TuningFold]:
    """The folds (see the module doc) within the data ``[data_start_ms, data_end_ms)``; ConfigError naming
    ``walkForward`` or ``windowEnd`` when the data cannot hold them."""
    end = data_end_ms if end_ms is None else min(data_end_ms, end_ms)
    end = data_start_ms + (end - data_start_ms) // interval_ms * interval_ms  # on the candle grid
    train_candles = train_days * DAY_MS // interval_ms
    test_ms = test_days * DAY_MS // interval_ms * interval_ms
    first_test = end - count * test_ms
    needed_from = first_test - (train_candles + warmup) * interval_ms
    if needed_from < data_start_ms:
        raise ConfigError(
            f"walkForward: {count} folds of {train_days} training and {test_days} test days, after a warm-up of "
            f"{warmup} candles, need data from {utc_iso(needed_from)} to {utc_iso(end)}, and it starts at "
            f"{utc_iso(data_start_ms)}; ask for fewer or shorter folds, or move windowEnd later"
        )
    try:
        tests = walk_forward_folds(
            data_start_ms=data_start_ms,
            data_end_ms=end,
            interval_ms=interval_ms,
            warmup=train_candles + warmup,
            count=count,
            start_ms=first_test,
            end_ms=end,
        )
    except ConfigError as error:  # a test window under the minimum of candles
        raise ConfigError(f"walkForward.testDays: {error}".replace("--folds: ", "")) from None
    folds = []
    for test in tests:
        train_start = test.start_ms - train_candles * interval_ms
        train = Fold(
            index=test.index,
            start_ms=train_start,
            end_ms=test.start_ms,
            warmup_start_ms=train_start - warmup * interval_ms,
            candles=train_candles,
        )
        oos = Fold(
            index=test.index,
            start_ms=test.start_ms,
            end_ms=test.end_ms,
            warmup_start_ms=test.start_ms - warmup * interval_ms,
            candles=test.candles,
        )
        folds.append(TuningFold(test.index, train, oos))
    return folds


def returns_span(folds: list[TuningFold], index: int) -> tuple[int, int]:
    """The part of fold ``index``'s in-sample window whose returns a trial contributes to its return series:
    up to the next fold's in-sample start (overlapping days are counted once, from the earlier fold), the whole
    window for the last fold."""
    train = folds[index].train
    if index + 1 == len(folds):
        return train.start_ms, train.end_ms
    return train.start_ms, min(train.end_ms, folds[index + 1].train.start_ms)
