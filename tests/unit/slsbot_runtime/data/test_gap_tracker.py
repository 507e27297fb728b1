"""Gaps and warmup on the real 33-hour Binance outage of 2018-02-08, and the staleness rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.data.gaps import GapTracker, is_stale
from slsbot_runtime.data.replay import iterate_history
from slsbot_runtime.domain.errors import DataError
from slsbot_runtime.domain.types import Candle

HOUR = 3_600_000
OUTAGE_START = int(datetime(2018, 2, 8, 1, tzinfo=UTC).timestamp() * 1000)  # first missing candle


def test_the_real_33_hour_gap_is_found_and_warmup_restarts(market_data_dir: Path) -> None:
    history = load_history(
        market_data_dir / "binance-spot-1h-2017",
        "BTC/USDT",
        "1h",
        interval_ms=HOUR,
        start=datetime(2018, 2, 1, tzinfo=UTC),
    )
    tracker = GapTracker(interval_ms=HOUR, warmup_candles=50)
    warm_after_gap = []
    found = None
    for candle in iterate_history(history):
        gap = tracker.observe(candle)
        if gap is not None and found is None:
            found = gap
        if found is not None:
            warm_after_gap.append(tracker.is_warm("BTC/USDT"))
            if len(warm_after_gap) == 60:
                break
    assert found is not None
    assert found.after_ts == OUTAGE_START - HOUR
    assert found.missing == 33
    assert found.next_ts == OUTAGE_START + 33 * HOUR
    # not traded until 50 candles have been seen again: the 50th candle after the gap is the first warm one
    assert warm_after_gap.index(True) == 49
    assert all(warm_after_gap[49:])


def test_time_going_back_is_refused() -> None:
    tracker = GapTracker(interval_ms=HOUR, warmup_candles=1)
    tracker.observe(Candle("A/B", 2 * HOUR, 1, 1, 1, 1, 1))
    with pytest.raises(DataError, match="not after the previous one"):
        tracker.observe(Candle("A/B", HOUR, 1, 1, 1, 1, 1))
    assert tracker.last_ts("A/B") == 2 * HOUR


def test_staleness() -> None:
    # the candle opened at 0 closed at 1h; the next one closes at 2h; with 2 intervals allowed, stale after 3h
    assert not is_stale(0, 3 * HOUR, interval_ms=HOUR, max_intervals=2)
    assert is_stale(0, 3 * HOUR + 1, interval_ms=HOUR, max_intervals=2)
    assert is_stale(None, 0, interval_ms=HOUR, max_intervals=2)
