"""``RiskFeed``: fast mode's risk manager, fed the equity of the candles where its state can change.

The step loop hands ``RiskManager.observe`` the equity after every candle. On most candles that changes nothing but
the manager's clock: its state (the equity peak, the UTC day and its opening equity, the daily-loss latch, the
breaker levels and their cooldowns) moves only on a candle that

* opens a UTC day, or is the last one before it (its equity becomes the day's opening equity),
* lifts the equity above the breaker's peak (the manager's own peak is never lower),
* brings the drawdown to a breaker level not yet tripped, or the day's loss to ``dailyLossLimitPercent``,
* comes at or after a tripped level's cooldown end (the level may release; a flattenAndHalt level takes a new peak).

Fast mode feeds the manager those candles, in the loop's order, with the equity the step mode's ledger shows after
them (cash plus each position at its symbol's last close, added in symbol order), and skips the others. Between two
events of the fast loop nothing is bought or sold, so the equity of every candle in between is known from the
holdings; it moves only on the candles of held symbols, the only ones looked at. The thresholds are read from the
manager's own snapshot after each feed, with a margin that errs towards feeding: a candle fed that need not be is
harmless (it is what step mode does), only a skipped candle that mattered would not be.

The risk manager then answers ``evaluate`` at an entry exactly as in step mode, and ``must_flatten`` (a tripped
flattenAndHalt level, the kill switch) changes on the very candle it does in step mode: ``advance`` stops there so
the loop can act on it. The volatility halt is not fed here (no closes are passed): its mask is computed up front
(``volatility_mask``), and the anomaly rule never runs in fast mode (``eligibility``).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from slsbot.api.riskpolicy import BreakerAction, RiskPolicySpec
from slsbot_runtime.risk.breaker import breaker_levels
from slsbot_runtime.risk.manager import DAY_MS, RiskManager

#: Relative margin on the equity thresholds: a candle this close to one is fed (the manager's own arithmetic of the
#: same comparison differs from the threshold's by a few units in the last place).
MARGIN = 1e-9
NEVER = math.inf


@dataclass(frozen=True, slots=True)
class Holding:
    """A symbol held between two events: its quantity, and where its candles are (processing positions) and close."""

    quantity: float
    positions: Sequence[int]  # ascending
    closes: Sequence[float]


class RiskFeed:
    """Feeds ``risk`` the candles of a run (``ts``: open time of every candle in the loop's processing order) at
    which its state can change; ``opening_equity`` is the equity before the first (the starting balance)."""

    def __init__(self, risk: RiskManager, policy: RiskPolicySpec, ts: np.ndarray, *, opening_equity: float) -> None:
        self.risk = risk
        risk.set_opening_equity(opening_equity)  # as the loop's restart does before the first candle
        self._ts = array("q")
        self._ts.frombytes(np.ascontiguousarray(ts, dtype=np.int64).view(np.uint8))
        self._levels = breaker_levels(policy.circuit_breaker)
        self._daily_limit = policy.daily_loss_limit_percent
        self._days = day_edges(ts).tolist()
        self.fed = -1  # the last position fed to the manager
        self.scanned = -1  # every position up to this one has been looked at
        self.must_flatten = False
        self.feeds = 0
        self._refresh()

    # -- what the loop calls ------------------------------------------------------------------------------------

    def advance(self, stop: int, cash: float, holdings: Sequence[Holding]) -> int | None:
        """Look at the positions after the last one looked at and before ``stop``, over which the account holds
        ``cash`` and ``holdings`` (symbol order), feeding the manager those that can change its state. Returns the
        position where ``must_flatten`` changed, having stopped there, or None."""
        start = self.scanned + 1
        if start >= stop:
            return None
        forced = self._forced(start, stop)
        count = len(holdings)
        if count == 0:  # the equity is the cash: only the day edges and the cooldown ends can matter
            for position in forced:
                if position > self.fed and self._feed(position, cash):
                    self.scanned = position
                    return position
            self.scanned = stop - 1
            return None
        last = [0.0] * count
        candles: list[tuple[int, int, int]] = []
        for slot, holding in enumerate(holdings):
            positions = holding.positions
            first = bisect_left(positions, start)
            end = bisect_left(positions, stop, first)
            last[slot] = holding.closes[first - 1]  # a held symbol had a candle before its fill
            candles += zip(positions[first:end], repeat(slot, end - first), range(first, end), strict=True)
        candles += zip(forced, repeat(count), repeat(0))  # after the candle's own entry when it is both
        if count > 1 or forced:
            candles.sort()
        quantities = [holding.quantity for holding in holdings]
        closes = [holding.closes for holding in holdings]
        for position, slot, j in candles:
            if slot < count:
                last[slot] = closes[slot][j]
            if position <= self.fed:
                continue
            equity = cash
            for s in range(count):  # Ledger.equity: the cash, then each position at its last close, in symbol order
                equity += quantities[s] * last[s]
            if (slot == count or self._relevant(position, equity)) and self._feed(position, equity):
                self.scanned = position
                return position
        self.scanned = stop - 1
        return None

    def settle(self, position: int, equity: float) -> bool:
        """The candle at ``position`` after its fills, with the ledger's ``equity``: fed when it can change the
        manager's state. True when ``must_flatten`` changed there."""
        if position <= self.scanned:
            return False
        forced = bool(self._forced(position, position + 1))
        self.scanned = position
        if position > self.fed and (forced or self._relevant(position, equity)):
            return self._feed(position, equity)
        return False

    def release_position(self) -> int | None:
        """While ``must_flatten`` holds by a flattenAndHalt level: the first position at or after the cooldown end
        of the most severe one tripped (where the breaker takes a new peak and lets go); None otherwise (the kill
        switch never lets go)."""
        if self._flatten_until is None:
            return None
        position = bisect_left(self._ts, self._flatten_until)
        return position if position < len(self._ts) else None

    # -- the manager's state --------------------------------------------------------------------------------------

    def _feed(self, position: int, equity: float) -> bool:
        self.risk.observe(self._ts[position], equity)
        self.fed = position
        self.feeds += 1
        self._refresh()
        flatten = self.risk.must_flatten
        if flatten != self.must_flatten:
            self.must_flatten = flatten
            return True
        return False

    def _relevant(self, position: int, equity: float) -> bool:
        return (
            equity > self._high
            or equity <= self._low
            or (self._ts[position] >= self._release_from and equity >= self._release_low)
        )

    def _refresh(self) -> None:
        """The thresholds the next candles are compared with, from the manager's snapshot."""
        snapshot = self.risk.snapshot()
        breaker = snapshot["breaker"]
        peak = breaker["peak"]
        tripped = {item["level"]: item["until_ts"] for item in breaker["tripped"]}
        levels = self._levels
        self._high = -NEVER if peak is None else peak  # before the first candle every candle is a new peak
        low = release_low = -NEVER
        if peak is not None and peak > 0:
            trips = [peak * (1.0 - level.drawdown_percent / 100.0) for level in levels if level.number not in tripped]
            releases = [peak * (1.0 - levels[number - 1].drawdown_percent / 100.0) for number in tripped]
            low = max(trips, default=-NEVER)
            release_low = min(releases, default=-NEVER)
        start = snapshot["day_start_equity"]
        if not snapshot["daily_limit_hit"] and start is not None and start > 0:
            low = max(low, start * (1.0 - self._daily_limit / 100.0))
        self._low = low + abs(low) * MARGIN
        self._release_low = release_low - abs(release_low) * MARGIN
        self._release_from = min(tripped.values(), default=NEVER)
        self._untils = sorted(set(tripped.values()))
        flattening = sorted(
            (number, until)
            for number, until in tripped.items()
            if levels[number - 1].action == BreakerAction.FLATTEN_AND_HALT
        )
        # the breaker waits for the most severe tripped flattenAndHalt level's cooldown before it takes a new peak
        self._flatten_until = flattening[-1][1] if flattening else None

    def _forced(self, start: int, stop: int) -> list[int]:
        """The positions in ``start`` .. ``stop - 1`` fed whatever the equity: the day edges, and the first candle
        at or after each tripped level's cooldown end."""
        days = self._days
        forced = days[bisect_left(days, start) : bisect_left(days, stop)]
        for until in self._untils:
            position = bisect_left(self._ts, until)
            if start <= position < stop:
                forced.append(position)
        if len(forced) > 1:
            forced = sorted(set(forced))
        return forced


def day_edges(ts: np.ndarray) -> np.ndarray:
    """The positions that open a UTC day (the first included) and the last position before each of them."""
    ts = np.asarray(ts, dtype=np.int64)
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64)
    day = ts // DAY_MS
    opens = np.flatnonzero(np.concatenate(([True], day[1:] != day[:-1])))
    return np.unique(np.concatenate((opens, opens[1:] - 1)))
