"""``RiskWatch``: one log line when the risk manager's circuit-breaker levels or its flatten verdict move.

The loop asks only when something moved (``risk.breaker_changes`` counts level changes, the verdict is one bool),
so a candle on which nothing changed costs two comparisons. A restarted loop says which levels are still tripped.
"""

from __future__ import annotations

from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.domain.timeframes import utc_minute
from slsbot_runtime.risk.manager import RiskManager


class RiskWatch:
    def __init__(self, risk: RiskManager, log: StrategyLog) -> None:
        self.risk = risk
        self.log = log
        self.seen = 0  # risk.breaker_changes when the tripped levels were last looked at
        self._tripped: dict[int, str] = {}  # the tripped levels then, by number

    def resume(self) -> None:
        """After the risk manager was restored: remember its tripped levels and say they still are."""
        self.seen, self._tripped = self.risk.breaker_changes, self.risk.tripped_breaker_levels()
        for description in self._tripped.values():
            self.log.info("circuit breaker %s: still tripped", description)

    def changed(self, ts: int, must_flatten: bool, was_flattening: bool) -> None:
        """The breaker levels or the flatten verdict moved at candle ``ts``: one line for each change."""
        risk = self.risk
        self.seen = risk.breaker_changes
        tripped = risk.tripped_breaker_levels()
        drawdown = risk.state().drawdown_percent
        for number, description in tripped.items():
            if number not in self._tripped:
                self.log.info("circuit breaker %s tripped: drawdown %.2f%% from the peak", description, drawdown)
        for number, description in self._tripped.items():
            if number not in tripped:
                self.log.info(
                    "circuit breaker level %d released at %s: drawdown %.2f%% (was %s)",
                    number,
                    utc_minute(ts),
                    drawdown,
                    description,
                )
        self._tripped = tripped
        if must_flatten != was_flattening:
            if must_flatten:
                self.log.warning("%s", risk.halt_message() or "the risk policy flattens every position")
            else:
                self.log.info("the risk halt is over at %s: entries are allowed again", utc_minute(ts))
