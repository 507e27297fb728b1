"""Replaying recorded candles as a feed: several symbols merged in time order, optionally looping.

A feed is any iterable of ``Candle`` in non-decreasing time order; candles with the same open time come
in the order the symbols were configured. The replay itself never sleeps: pacing (``secondsPerCandle``) is
the runner's job, so a backtest drives the same feed as fast as it can.

Looping: when the data ends and ``loop`` is on, the replay starts again from the first candle with every
timestamp shifted forward by ``span + 2 intervals`` (span = last open time - first open time over all
symbols). Time keeps increasing, so the cursor, the equity curve and every per-candle state stay
consistent across passes; the one missing interval between passes is seen by the gap detector, so after
each wrap every symbol warms up again before it trades (prices jump back to the start of the data, and no
strategy should trade across that jump).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, count, repeat

from slsbot_runtime.domain.errors import DataError
from slsbot_runtime.domain.ohlcv import OHLCV
from slsbot_runtime.domain.types import Candle


def iterate_history(history: OHLCV, ts_offset: int = 0) -> Iterator[Candle]:
    """The candles of one history, in order, with ``ts_offset`` ms added to each open time.

    The columns become Python numbers ``CHUNK_CANDLES`` rows at a time, not all at once: a whole history as lists
    (seven lists of every row) would be young objects the cyclic garbage collector traverses, all of them, at its
    first passes while the feed runs, and would hold every row's numbers in memory until the end."""
    return chain.from_iterable(_chunks(history, ts_offset))


#: Rows turned into candles at a time (``iterate_history``).
CHUNK_CANDLES = 4096


def _chunks(history: OHLCV, ts_offset: int) -> Iterator[Iterator[Candle]]:
    ts = history.ts if ts_offset == 0 else history.ts + ts_offset
    symbol, columns = history.symbol, (ts, history.open, history.high, history.low, history.close, history.volume)
    for start in range(0, len(ts), CHUNK_CANDLES):
        rows = zip(
            repeat(symbol),
            *(column[start : start + CHUNK_CANDLES].tolist() for column in columns),
            strict=False,  # repeat() never ends: the columns, all of one length, end it
        )
        # ``Candle._make(row)`` without its Python frame (the rows always have the seven fields): every candle of a
        # replay or a step backtest is built here; ``tuple.__new__(Candle, row)`` called by ``map`` itself, not
        # through a ``partial``, which cost a call more per candle
        yield map(tuple.__new__, repeat(Candle), rows)


def merge_in_time_order(streams: Sequence[Iterable[Candle]]) -> Iterator[Candle]:
    """One stream of every candle in open-time order; ties keep the order of ``streams`` (a heap merge)."""
    if len(streams) == 1:
        return iter(streams[0])
    return heapq.merge(*streams, key=_open_time)


def _open_time(candle: Candle) -> int:
    return candle.ts


class ReplayFeed:
    """Recorded candles of one or more symbols, merged in time order; see the module doc for ``loop``."""

    def __init__(self, histories: Sequence[OHLCV], *, interval_ms: int, loop: bool = False) -> None:
        if not histories:
            raise DataError("replay: no symbols to replay")
        empty = [h.symbol for h in histories if len(h) == 0]
        if empty:
            raise DataError(f"replay: no candles for {', '.join(empty)}")
        self.histories = tuple(histories)
        self.interval_ms = interval_ms
        self.loop = loop
        first = min(int(h.ts[0]) for h in histories)
        last = max(int(h.ts[-1]) for h in histories)
        self.pass_shift_ms = last - first + 2 * interval_ms

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(h.symbol for h in self.histories)

    def __len__(self) -> int:
        """Candles in one pass over the data."""
        return sum(len(h) for h in self.histories)

    def __iter__(self) -> Iterator[Candle]:
        if not self.loop:  # one pass: the merged candles themselves, without a generator in between
            return merge_in_time_order([iterate_history(h) for h in self.histories])
        return self._passes()

    def _passes(self) -> Iterator[Candle]:
        for number in count():
            shift = number * self.pass_shift_ms
            yield from merge_in_time_order([iterate_history(h, shift) for h in self.histories])
