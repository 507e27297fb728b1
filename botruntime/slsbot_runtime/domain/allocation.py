"""The share of the account's capital a runtime trades with, over time, and its returns on that capital. Pure.

A runtime trades with ``equity x allocation / 100``: the allocation is the Strategy's ``allocationPercent`` or a
controller's override (``POST /allocation``). ``AllocationTimeline`` remembers from which candle each allocation
was in force, so that ``/performance`` normalises every period by the capital the runtime had in it, across the
steps of an A/B rollout. ``allocation_periods`` turns the equity curve into those periods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slsbot_runtime.domain.errors import StateError

FULL_PERCENT = 100.0
#: Changes kept in the timeline (an A/B rollout makes a handful); the oldest go first.
MAX_CHANGES = 256


def check_percent(value: Any, field: str = "percent") -> float:
    """``value`` as an allocation in percent, or ValueError naming ``field`` and what it takes."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field}: {value!r} is not a number; send a percentage from 0 to 100")
    if not 0.0 <= value <= FULL_PERCENT:
        raise ValueError(f"{field}: {value!r} is outside 0..100; send a percentage from 0 to 100")
    return float(value)


@dataclass(frozen=True, slots=True)
class AllocationTimeline:
    """``(from_ts, percent)`` pairs, oldest first: ``percent`` is in force for the candles opened at ``from_ts`` (ms)
    and after, until the next pair. Before the first pair, the first one's percent."""

    changes: tuple[tuple[int, float], ...] = ()

    def percent_at(self, ts: int, default: float = FULL_PERCENT) -> float:
        percent = self.changes[0][1] if self.changes else default
        for start, value in self.changes:
            if start > ts:
                break
            percent = value
        return percent

    @property
    def latest(self) -> float | None:
        return self.changes[-1][1] if self.changes else None

    def with_change(self, from_ts: int, percent: float) -> AllocationTimeline:
        """``percent`` from ``from_ts`` on: later or same-time pairs are replaced; unchanged when already in force."""
        kept = tuple(pair for pair in self.changes if pair[0] < from_ts)
        if kept and kept[-1][1] == percent:
            return AllocationTimeline(kept)
        return AllocationTimeline((*kept, (from_ts, percent))[-MAX_CHANGES:])

    def to_json(self) -> list[list[float]]:
        return [[start, percent] for start, percent in self.changes]

    @classmethod
    def from_json(cls, data: Any) -> AllocationTimeline:
        """What ``to_json`` wrote; StateError naming the field otherwise."""
        if not isinstance(data, list):
            raise StateError(f"allocation.changes: expected a list of [fromTs, percent], got {data!r:.80}")
        changes = []
        for item in data:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)):
                raise StateError(f"allocation.changes: {item!r:.80} is not [fromTs, percent]")
            try:
                changes.append((item[0], check_percent(item[1], "allocation.changes")))
            except ValueError as error:
                raise StateError(str(error)) from None
        return cls(tuple(sorted(changes)))


def allocation_periods(
    points: Sequence[tuple[int, float]], timeline: AllocationTimeline, *, since: int, default: float = FULL_PERCENT
) -> list[list[float | int | None]]:
    """One ``[ts, equity, allocated_capital, return_on_allocated]`` per point with ``ts > since``.

    ``points``: ``(candle open time, equity after it)``, one per candle, oldest first; a point at or before
    ``since``, if given, only serves as the period before the first. ``allocated_capital`` is the equity times the
    allocation in force at that candle; ``return_on_allocated`` is ``(equity_t - equity_{t-1}) /
    allocated_capital_{t-1}``: what the runtime made in the period on the capital it traded with through it. None
    for the first point with no earlier one, and where that capital was 0 (nothing was allocated).
    """
    periods: list[list[float | int | None]] = []
    previous: tuple[float, float] | None = None  # equity and allocated capital of the period before
    for ts, equity in points:
        allocated = equity * (timeline.percent_at(ts, default) / FULL_PERCENT)
        if ts > since:
            gained = None if previous is None or previous[1] == 0.0 else (equity - previous[0]) / previous[1]
            periods.append([ts, equity, allocated, gained])
        previous = (equity, allocated)
    return periods
