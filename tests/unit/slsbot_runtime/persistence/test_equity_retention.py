"""Thinning the equity curve: the newest window row for row, the last row of each older bucket, a bounded total
(the bucket doubles), and a restart that goes on where the last run stopped."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from slsbot_runtime.persistence.equity_retention import BATCH_BUCKETS, EquityRetentionPolicy
from slsbot_runtime.persistence.store import StateStore

MINUTE = 60_000
HOUR = 60 * MINUTE
T0 = 1_700_000_000_000 // HOUR * HOUR  # an hour boundary


def write(store: StateStore, first: int, count: int, *, commit_every: int = 7) -> None:
    """``count`` 5-minute candles of two symbols from candle ``first`` on; equity = the candle's number."""
    for n in range(first, first + count):
        ts = T0 + n * 5 * MINUTE
        store.stage_equity(ts, "BTC/USDT", float(n), 1.0)
        store.stage_equity(ts, "ETH/USDT", n + 0.5, 1.0)  # the last row of each ts: the account after both
        if n % commit_every == 0:
            store.commit()
    store.commit()


def rows(path: Path) -> list[tuple[int, str, float]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT ts, symbol, equity FROM equity ORDER BY rowid").fetchall()


def test_the_newest_window_keeps_every_row_and_older_buckets_their_last_row(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    store.retain_equity(EquityRetentionPolicy(full_ms=6 * HOUR, bucket_ms=HOUR, max_rows=10_000))
    count = 12 * 24 * 5  # five days of 5-minute candles
    write(store, 0, count)
    kept = rows(tmp_path / "state.db")
    newest = T0 + (count - 1) * 5 * MINUTE
    thinned_until = store.load_meta()["equity_thinned_until"]
    assert newest - 6 * HOUR - (BATCH_BUCKETS + 1) * HOUR < thinned_until <= newest - 6 * HOUR
    assert thinned_until % HOUR == 0
    # every candle at or after the thinned point is there, both symbols, in order
    recent = [(ts, symbol) for ts, symbol, _ in kept if ts >= thinned_until]
    expected = [
        (ts, symbol) for ts in range(thinned_until, newest + 1, 5 * MINUTE) for symbol in ("BTC/USDT", "ETH/USDT")
    ]
    assert recent == expected
    # before it: one row per hour, the last one written in that hour (ETH's row of the hour's last candle)
    older = [(ts, symbol, equity) for ts, symbol, equity in kept if ts < thinned_until]
    assert [ts for ts, _, _ in older] == list(range(T0 + 55 * MINUTE, thinned_until, HOUR))
    for ts, symbol, equity in older:
        assert symbol == "ETH/USDT" and equity == (ts - T0) // (5 * MINUTE) + 0.5
    assert len(kept) == len(older) + len(recent) < count * 2 / 3


def test_a_looping_replay_stays_bounded_as_the_bucket_doubles(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    policy = EquityRetentionPolicy(full_ms=2 * HOUR, bucket_ms=HOUR, max_rows=100)
    store.retain_equity(policy)
    window_rows = 2 * 2 * 12  # two symbols, two hours of 5-minute candles
    waiting_rows = 2 * (BATCH_BUCKETS + 1) * 12  # aged out of the window, not thinned yet
    bound = window_rows + waiting_rows + policy.max_rows
    sizes = []
    for day in range(60):  # 60 days of candles, 34,560 rows written
        write(store, day * 288, 288, commit_every=1)
        sizes.append(len(rows(tmp_path / "state.db")))
    assert max(sizes) <= bound
    assert store.load_meta()["equity_bucket_ms"] == 16 * HOUR  # about 1,440 hours in 100 rows: doubled from 1 h
    kept = rows(tmp_path / "state.db")
    assert kept[0][0] < T0 + 16 * HOUR  # the whole history is still represented, only coarser
    assert kept[-1] == (T0 + (60 * 288 - 1) * 5 * MINUTE, "ETH/USDT", 60 * 288 - 1 + 0.5)


def test_a_restart_goes_on_where_the_last_run_stopped(tmp_path: Path) -> None:
    policy = EquityRetentionPolicy(full_ms=2 * HOUR, bucket_ms=HOUR, max_rows=100)
    whole = StateStore.open(tmp_path / "whole.db")
    whole.retain_equity(policy)
    write(whole, 0, 30 * 288)

    parts = tmp_path / "parts.db"
    for first, count in ((0, 11 * 288 + 17), (11 * 288 + 17, 19 * 288 - 17)):
        store = StateStore.open(parts)
        store.retain_equity(policy)  # from the meta the last run left: its bucket and how far it thinned
        write(store, first, count)
        store.close()
    assert rows(parts) == rows(tmp_path / "whole.db")
    reopened = StateStore.open(parts)
    assert reopened.load_meta()["equity_bucket_ms"] == whole.load_meta()["equity_bucket_ms"] > HOUR


def test_a_state_file_written_before_thinning_is_thinned_when_it_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = StateStore.open(path)  # no retain_equity: every row, as a runtime before this version wrote
    write(old, 0, 4 * 288)
    old.close()
    assert len(rows(path)) == 2 * 4 * 288
    store = StateStore.open(path)
    store.retain_equity(EquityRetentionPolicy(full_ms=6 * HOUR, bucket_ms=HOUR, max_rows=1000))
    write(store, 4 * 288, 1)
    kept = rows(path)
    assert len(kept) < 2 * (4 * 24 + 6 * 12 + 12)
    assert kept[0] == (T0 + 55 * MINUTE, "ETH/USDT", 11.5)


def test_without_retention_every_row_is_kept(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    store.retain_equity(None)
    write(store, 0, 3 * 288)
    assert len(rows(tmp_path / "state.db")) == 2 * 3 * 288
