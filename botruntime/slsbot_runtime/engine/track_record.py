"""The strategy's own track record per symbol, for Kelly sizing: its *signals'* round trips, not the
account's trades.

Sizing from the account's closed trades has a trap: once the record says "no edge", nothing is traded and
the record never changes again. So the record follows what the signal would have done: a round trip opens
at the close where the target turns long (or short) and closes where it turns away, its result is the price
move net of ``round_trip_cost`` (both fees). The last ``window`` round trips count; below ``min_trades``
there is no record and the risk manager sizes from the ensemble's confidence instead.

It depends only on candles and decisions, so a restart's replay rebuilds it exactly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class SignalTrackRecord:
    round_trip_cost: float = 0.002
    window: int = 50
    min_trades: int = 20
    _side: int = 0
    _entry: float = 0.0
    _results: deque[float] = field(default_factory=deque)
    #: The results above 0 and minus those at or below 0, in the order they came: what ``win_rate_and_payoff``
    #: sums, kept as results come and go instead of picked out of the window at every entry.
    _wins: deque[float] = field(default_factory=deque)
    _losses: deque[float] = field(default_factory=deque)

    def observe(self, target: int | None, close: float) -> None:
        """The target (+1, 0, -1, or None for no opinion) decided at this candle's ``close``."""
        if target is None or target == self._side:
            return
        if self._side != 0 and self._entry > 0:
            result = self._side * (close / self._entry - 1.0) - self.round_trip_cost
            self._results.append(result)
            if result > 0:
                self._wins.append(result)
            elif result <= 0:  # NaN is neither
                self._losses.append(-result)
            if len(self._results) > self.window:
                oldest = self._results.popleft()
                if oldest > 0:
                    self._wins.popleft()
                elif oldest <= 0:
                    self._losses.popleft()
        self._side = target
        self._entry = close

    def win_rate_and_payoff(self) -> tuple[float | None, float | None]:
        results, wins, losses = self._results, self._wins, self._losses
        if len(results) < self.min_trades:
            return None, None
        if not wins or not losses or sum(losses) == 0:
            return None, None
        return len(wins) / len(results), (sum(wins) / len(wins)) / (sum(losses) / len(losses))
