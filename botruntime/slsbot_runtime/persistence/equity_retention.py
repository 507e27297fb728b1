"""Thinning the equity curve, so that a bot left on (a looping replay, a live bot for years) keeps a bounded state file.

The loop writes one equity row per candle. ``EquityThinner`` keeps:

* every row of the newest ``full_ms`` of candle time (measured back from the newest row written);
* of the older rows, the last one written in each ``bucket_ms`` interval (intervals aligned to the UTC epoch, so a
  bucket is the same whatever the start; the last row of a bucket is the account's equity when it ended, or,
  for the bucket the window's edge runs through, the last row before that edge);
* and when the older rows would pass ``max_rows``, the bucket doubles (1h, 2h, 4h, ...) and every older row is
  thinned again, so the file holds at most the newest window, one batch of rows waiting to be thinned, and
  ``max_rows`` older rows, however long the bot runs.

It runs inside the store's commit transaction, once at least ``BATCH_BUCKETS`` buckets of candle time have left
the window since the last time (so a commit per candle does not pay a DELETE per candle), and writes its own
progress (the bucket and how far it thinned) into ``meta`` in that same transaction: a restarted runtime goes on
where it stopped. Thinning keeps the last row of each bucket among the rows older than the window, so running it
again over the same rows changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

#: Buckets of candle time that must have left the window before the rows are thinned again.
BATCH_BUCKETS = 24
_EARLIEST = -(2**62)  # before any candle
META_BUCKET = "equity_bucket_ms"
META_THINNED_UNTIL = "equity_thinned_until"

_DELETE = (
    "DELETE FROM equity WHERE ts >= ? AND ts < ? AND rowid NOT IN "
    "(SELECT max(rowid) FROM equity WHERE ts >= ? AND ts < ? GROUP BY ts / ?)"
)


@dataclass(frozen=True, slots=True)
class EquityRetentionPolicy:
    """What ``state.equityRetention`` asks for, in milliseconds of candle time."""

    full_ms: int
    bucket_ms: int
    max_rows: int

    def __post_init__(self) -> None:
        if self.full_ms < 0 or self.bucket_ms <= 0 or self.max_rows < 1:
            raise ValueError(f"equity retention: {self} needs full_ms >= 0, bucket_ms > 0 and max_rows >= 1")


class EquityThinner:
    """The thinning state of one state file: the bucket in use and the candle time thinned so far."""

    def __init__(self, policy: EquityRetentionPolicy, *, bucket_ms: int | None = None, thinned_until: int = 0):
        self.policy = policy
        # a bucket doubled earlier stays doubled; a policy with a coarser interval than stored wins
        self.bucket_ms = max(policy.bucket_ms, bucket_ms or 0)
        self.thinned_until = thinned_until

    @classmethod
    def from_meta(cls, policy: EquityRetentionPolicy, meta: dict[str, object]) -> EquityThinner:
        bucket, until = meta.get(META_BUCKET), meta.get(META_THINNED_UNTIL)
        return cls(
            policy,
            bucket_ms=bucket if isinstance(bucket, int) else None,
            thinned_until=until if isinstance(until, int) else 0,
        )

    @property
    def progress(self) -> tuple[int, int]:
        """(bucket_ms, thinned_until): put back by the store when the transaction that thinned is rolled back."""
        return self.bucket_ms, self.thinned_until

    @progress.setter
    def progress(self, value: tuple[int, int]) -> None:
        self.bucket_ms, self.thinned_until = value

    def due(self, newest_ts: int) -> bool:
        """Whether rows written up to ``newest_ts`` left enough new candle time behind the window to thin."""
        return self._cutoff(newest_ts) - self.thinned_until >= BATCH_BUCKETS * self.policy.bucket_ms

    def thin(self, db: sqlite3.Connection, newest_ts: int) -> None:
        """Thin the rows that left the window (inside the caller's transaction) and record how far it went."""
        cutoff = self._cutoff(newest_ts)
        if cutoff <= self.thinned_until:
            return
        # from the start of the bucket the last run ended in: that bucket's last row may be a newer one now
        self._keep_last_per_bucket(db, self.thinned_until // self.bucket_ms * self.bucket_ms, cutoff)
        self.thinned_until = cutoff
        while db.execute("SELECT count(*) FROM equity WHERE ts < ?", (cutoff,)).fetchone()[0] > self.policy.max_rows:
            self.bucket_ms *= 2
            self._keep_last_per_bucket(db, _EARLIEST, cutoff)
        db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [(META_BUCKET, json.dumps(self.bucket_ms)), (META_THINNED_UNTIL, json.dumps(self.thinned_until))],
        )

    def _keep_last_per_bucket(self, db: sqlite3.Connection, start: int, end: int) -> None:
        db.execute(_DELETE, (start, end, start, end, self.bucket_ms))

    def _cutoff(self, newest_ts: int) -> int:
        """Rows opened before this are older than the window (a boundary of the configured interval)."""
        bucket = self.policy.bucket_ms
        return (newest_ts - self.policy.full_ms) // bucket * bucket
