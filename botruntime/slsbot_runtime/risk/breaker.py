"""The drawdown circuit breaker: up to three levels, each tripped by a drawdown from the equity peak.

A level trips as soon as the drawdown reaches its ``drawdown_percent`` (escalation is immediate, several levels
may trip on one candle). A tripped level stays tripped until its cooldown has passed *and* the drawdown is back
below its threshold. A ``flattenAndHalt`` level has the book closed, so equity cannot recover by itself: when
its cooldown has passed the breaker takes the current equity as its new peak (the loss is accepted), which
releases every level. The hard ``maxDrawdownPercent`` limit keeps measuring from the all-time peak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slsbot.api.base import parse_duration
from slsbot.api.riskpolicy import BreakerAction
from slsbot.api.riskpolicy import CircuitBreaker as CircuitBreakerSpec
from slsbot_runtime.domain.equity import drawdown_percent
from slsbot_runtime.risk.snapshot import BreakerSnapshot


@dataclass(frozen=True, slots=True)
class BreakerLevel:
    number: int  # 1..3 in increasing drawdown order
    action: str  # a BreakerAction value
    drawdown_percent: float
    size_multiplier: float
    cooldown_ms: int


@dataclass(frozen=True, slots=True)
class TrippedLevel:
    tripped_ts: int
    until_ts: int  # earliest release; the drawdown must also be back below the level


def breaker_levels(spec: CircuitBreakerSpec) -> tuple[BreakerLevel, ...]:
    """The policy's levels sorted by drawdown and numbered from 1."""
    ordered = sorted(spec.levels, key=lambda level: level.drawdown_percent)
    return tuple(
        BreakerLevel(
            number=index,
            action=str(level.action),
            drawdown_percent=level.drawdown_percent,
            size_multiplier=level.size_multiplier,
            cooldown_ms=int(parse_duration(level.cooldown).total_seconds() * 1000),
        )
        for index, level in enumerate(ordered, start=1)
    )


class CircuitBreaker:
    """State of the breaker levels; fed once per candle by the risk manager."""

    def __init__(self, levels: tuple[BreakerLevel, ...]) -> None:
        self.levels = levels
        self.peak: float | None = None  # the peak the breaker measures from; reset after a flatten-and-halt
        self.tripped: dict[int, TrippedLevel] = {}
        self.changes = 0  # levels tripped or released so far: a reader compares it to see that something changed

    def update(self, ts: int, equity: float) -> None:
        if self.tripped:
            flatten = self._tripped_flatten_level()
            if flatten is not None and ts >= self.tripped[flatten.number].until_ts:
                self.peak = equity
        peak = self.peak
        if peak is None or equity > peak:  # max(peak, equity)
            self.peak = peak = equity
        if not self.levels:
            return
        drawdown = drawdown_percent(peak, equity)
        for level in self.levels:
            trip = self.tripped.get(level.number)
            if trip is None and drawdown >= level.drawdown_percent:
                self.tripped[level.number] = TrippedLevel(tripped_ts=ts, until_ts=ts + level.cooldown_ms)
                self.changes += 1
            elif trip is not None and ts >= trip.until_ts and drawdown < level.drawdown_percent:
                del self.tripped[level.number]
                self.changes += 1

    def drawdown_of(self, equity: float) -> float:
        """Drawdown of ``equity`` from the breaker's peak, in percent."""
        return 0.0 if self.peak is None else drawdown_percent(max(self.peak, equity), equity)

    def current_level(self) -> BreakerLevel | None:
        """The most severe tripped level, or None."""
        if not self.tripped:
            return None
        return self.levels[max(self.tripped) - 1]

    def size_multiplier(self) -> float:
        """What new entry sizes are multiplied by: the smallest multiplier of the tripped reduceSize levels."""
        reducing = self.reducing_level()
        return 1.0 if reducing is None else reducing.size_multiplier

    def entry_stopping_level(self) -> BreakerLevel | None:
        """The most severe tripped level that forbids new entries, or None."""
        if not self.tripped:
            return None
        stopping = [
            level
            for level in self._tripped_levels()
            if level.action in (BreakerAction.STOP_ENTRIES, BreakerAction.FLATTEN_AND_HALT)
        ]
        return stopping[-1] if stopping else None

    def must_flatten(self) -> bool:
        return bool(self.tripped) and self._tripped_flatten_level() is not None

    def flatten_level(self) -> BreakerLevel | None:
        """The most severe tripped flattenAndHalt level, or None."""
        return self._tripped_flatten_level() if self.tripped else None

    def reducing_level(self) -> BreakerLevel | None:
        """The tripped reduceSize level whose multiplier applies, or None."""
        if not self.tripped:
            return None
        reducing = [level for level in self._tripped_levels() if level.action == BreakerAction.REDUCE_SIZE]
        return min(reducing, key=lambda level: level.size_multiplier, default=None)

    def _tripped_levels(self) -> list[BreakerLevel]:
        return [self.levels[number - 1] for number in sorted(self.tripped)]

    def _tripped_flatten_level(self) -> BreakerLevel | None:
        flattening = [level for level in self._tripped_levels() if level.action == BreakerAction.FLATTEN_AND_HALT]
        return flattening[-1] if flattening else None

    def snapshot(self) -> dict[str, Any]:
        """The breaker's state as ``BreakerSnapshot`` dumps it to JSON (built directly: it is written at
        every commit of the state file)."""
        return {
            "peak": None if self.peak is None else float(self.peak),
            "tripped": [
                {
                    "level": number,
                    "action": self.levels[number - 1].action,
                    "tripped_ts": trip.tripped_ts,
                    "until_ts": trip.until_ts,
                }
                for number, trip in sorted(self.tripped.items())
            ],
        }

    def restored(self, snapshot: BreakerSnapshot) -> CircuitBreaker:
        """A new breaker with these levels and the snapshot's state.

        Tripped levels are matched to this policy's levels by number and action, else by action alone, so
        after a policy change a tripped stopEntries level stays tripped; a level the policy lost is dropped.
        """
        breaker = CircuitBreaker(self.levels)
        breaker.peak = snapshot.peak
        for item in snapshot.tripped:
            level = self._match(item.level, item.action)
            if level is not None:
                breaker.tripped[level.number] = TrippedLevel(tripped_ts=item.tripped_ts, until_ts=item.until_ts)
        return breaker

    def _match(self, number: int, action: str) -> BreakerLevel | None:
        for level in self.levels:
            if level.number == number and level.action == action:
                return level
        return next((level for level in self.levels if level.action == action), None)
