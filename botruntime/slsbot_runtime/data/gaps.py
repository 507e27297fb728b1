"""Gap, warmup and staleness bookkeeping for candle feeds. Pure: no clock, time is passed in.

A gap is a missing interval: a candle whose open time is more than one interval after the previous candle
of the same symbol. After a gap (and at the very start) a symbol is *warming up* until ``warmup_candles``
candles have been seen again; the trading loop opens no position on a symbol while it warms up, because
indicators computed across a hole in the data do not mean what they say. Only entries wait: exits, cancels
and risk flattening go on during the warmup.
"""

from __future__ import annotations

from dataclasses import dataclass

from slsbot_runtime.domain.errors import DataError
from slsbot_runtime.domain.types import Candle


@dataclass(frozen=True, slots=True)
class Gap:
    symbol: str
    after_ts: int  # open time of the last candle before the hole
    next_ts: int  # open time of the first candle after it
    missing: int  # candles missing


class GapTracker:
    """Per symbol: the last open time, gaps seen, and candles since the last gap (for the warmup)."""

    def __init__(self, *, interval_ms: int, warmup_candles: int) -> None:
        self.interval_ms = interval_ms
        self.warmup_candles = warmup_candles
        self._last_ts: dict[str, int] = {}
        self._since_gap: dict[str, int] = {}
        self.gaps: list[Gap] = []

    def observe(self, candle: Candle) -> Gap | None:
        """Record ``candle``; the gap it closes, if any. DataError when it is not after the last one."""
        symbol, ts = candle.symbol, candle.ts
        last = self._last_ts.get(symbol)
        gap = None
        if last is None:
            self._since_gap[symbol] = 1
        elif ts <= last:
            raise DataError(
                f"{symbol}: candle at {ts} is not after the previous one at {last}; "
                f"feeds must be in strictly increasing time order per symbol"
            )
        elif ts - last > self.interval_ms:
            gap = Gap(symbol, last, ts, (ts - last) // self.interval_ms - 1)
            self.gaps.append(gap)
            self._since_gap[symbol] = 1
        else:
            self._since_gap[symbol] += 1
        self._last_ts[symbol] = ts
        return gap

    def is_warm(self, symbol: str) -> bool:
        """Enough candles since the start or the last gap to trade ``symbol``."""
        return self._since_gap.get(symbol, 0) >= self.warmup_candles

    def candles_since_gap(self, symbol: str) -> int:
        return self._since_gap.get(symbol, 0)

    def last_ts(self, symbol: str) -> int | None:
        return self._last_ts.get(symbol)


def is_stale(last_open_ts: int | None, now_ms: int, *, interval_ms: int, max_intervals: float) -> bool:
    """True when no candle closed within ``max_intervals`` intervals of ``now_ms``.

    The candle opened at ``last_open_ts`` closed at ``last_open_ts + interval``; the next one is due one
    interval later. The feed is stale once ``now`` is more than ``max_intervals`` intervals past that
    last close. With no candle at all the feed is stale (the caller decides how long to wait for the first).
    """
    if last_open_ts is None:
        return True
    return now_ms - (last_open_ts + interval_ms) > max_intervals * interval_ms
