"""The replay feed: several symbols merged in time order, and looping with time moving on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.data.gaps import GapTracker
from slsbot_runtime.data.replay import CHUNK_CANDLES, ReplayFeed, iterate_history
from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV

HOUR = 3_600_000


def _history(symbol: str, start: int, count: int, step: int = HOUR) -> OHLCV:
    ts = np.arange(count, dtype=np.int64) * step + start
    prices = np.arange(count, dtype=np.float64) + 100
    return OHLCV(symbol, ts, prices, prices + 1, prices - 1, prices, np.ones(count))


def test_merge_is_in_time_order_with_ties_in_config_order(market_data_dir: Path) -> None:
    folder = market_data_dir / "binance-spot-1h-2024"
    btc = load_history(folder, "BTC/USDT", "1h", interval_ms=HOUR).slice(0, 500)
    eth = load_history(folder, "ETH/USDT", "1h", interval_ms=HOUR).slice(100, 600)
    candles = list(ReplayFeed([eth, btc], interval_ms=HOUR))
    assert len(candles) == 1000
    keys = [(c.ts, 0 if c.symbol == "ETH/USDT" else 1) for c in candles]
    assert keys == sorted(keys)
    assert [c.close for c in candles if c.symbol == "BTC/USDT"] == btc.close.tolist()


def test_loop_continues_time_and_leaves_a_one_candle_hole() -> None:
    feed = ReplayFeed([_history("A/B", 0, 5), _history("C/D", 2 * HOUR, 3)], interval_ms=HOUR, loop=True)
    first_two_passes = []
    for candle in feed:
        first_two_passes.append(candle)
        if len(first_two_passes) == 16:
            break
    a = [c for c in first_two_passes if c.symbol == "A/B"]
    assert [c.ts // HOUR for c in a] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert [c.close for c in a] == [100, 101, 102, 103, 104] * 2  # prices start over
    tracker = GapTracker(interval_ms=HOUR, warmup_candles=3)
    gaps = [tracker.observe(c) for c in first_two_passes]
    assert [(g.symbol, g.missing) for g in gaps if g is not None] == [("A/B", 1), ("C/D", 3)]


def test_a_history_longer_than_a_chunk_comes_whole_in_order_with_every_field() -> None:
    count = 2 * CHUNK_CANDLES + 5  # two whole chunks and a part: every boundary between chunks is crossed
    rng = np.random.default_rng(7)
    closes = 100 + rng.random(count)
    history = OHLCV(
        "A/B", np.arange(count, dtype=np.int64) * HOUR, closes - 0.5, closes + 1, closes - 1, closes, rng.random(count)
    )
    rows = list(
        zip(history.ts.tolist(), history.open.tolist(), history.high.tolist(), history.low.tolist(),
            history.close.tolist(), history.volume.tolist(), strict=True)
    )  # fmt: skip
    candles = list(iterate_history(history))
    assert [(c.ts, c.open, c.high, c.low, c.close, c.volume) for c in candles] == rows
    assert {c.symbol for c in candles} == {"A/B"}
    assert all(type(c) is Candle and type(c.ts) is int and type(c.close) is float for c in candles)
    shifted = list(iterate_history(history, 5 * HOUR))
    assert [c.ts for c in shifted] == [ts + 5 * HOUR for ts, *_ in rows]
    assert [c.close for c in shifted] == history.close.tolist()
