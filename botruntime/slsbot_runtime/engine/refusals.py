"""``EntryRefusals``: the entries the risk manager refused, said in ``/status`` and in the log, but not once per candle.

A refused entry is honest (no edge, the daily loss limit, a tripped breaker, a volatility halt...); a bot that
quietly stops trading is not. Per symbol, a *refusal streak* runs from the first refused entry to the next entry
the risk manager takes: while one runs, ``idle_message`` says since when and why, and the loop reports the idle
reason ``EntriesRefused``. A signal that turns flat meanwhile does not end the streak: the bot has still not been
allowed the entry it last wanted. A restarted loop takes the streaks back from the state file's risk decisions.

The log gets one INFO line for the first refusal of each (symbol, rule) in a streak, then at most one summary line
per ``summary_every_s`` seconds of wall time with how many more were refused, and one line when entries are taken
again. A backtest, which does not log at INFO, keeps the streaks and formats nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.domain.timeframes import utc_minute
from slsbot_runtime.risk.base import RiskEvent

SUMMARY_EVERY_S = 60.0
SYMBOLS_SHOWN = 3  # symbols named in the idle message; the others are counted


@dataclass(slots=True)
class RefusalStreak:
    since_ts: int  # close of the candle of the first refused entry
    count: int
    events: tuple[RiskEvent, ...]  # of the latest refusal

    @property
    def rule(self) -> str:
        return str(self.events[0].rule) if self.events else "unknown"

    @property
    def message(self) -> str:
        return "; ".join(event.message for event in self.events) or "refused"


@dataclass(slots=True)
class _Logged:
    at: float  # wall time of the last line about this (symbol, rule)
    unlogged: int = 0  # refusals since then


class EntryRefusals:
    def __init__(
        self, log: StrategyLog, clock: Callable[[], float], *, summary_every_s: float = SUMMARY_EVERY_S
    ) -> None:
        self.log = log
        self.clock = clock
        self.summary_every_s = summary_every_s
        self.streaks: dict[str, RefusalStreak] = {}
        self._logged: dict[tuple[str, str], _Logged] = {}

    def refused(self, symbol: str, ts: int, events: Sequence[RiskEvent]) -> None:
        """The entry decided at candle close ``ts`` on ``symbol`` was refused, for ``events``."""
        events = tuple(events)
        streak = self.streaks.get(symbol)
        if streak is None:
            streak = self.streaks[symbol] = RefusalStreak(ts, 1, events)
        else:
            streak.count += 1
            streak.events = events
        if self.log.isEnabledFor(logging.INFO):
            self._log_refusal(symbol, streak)

    def restore(self, symbol: str, since_ts: int, count: int, events: Sequence[RiskEvent]) -> None:
        """A streak the state file shows (``StateStore.load_refused_entries``), for a restarted loop."""
        self.streaks[symbol] = RefusalStreak(since_ts, count, tuple(events))

    def accepted(self, symbol: str) -> None:
        """The risk manager took an entry on ``symbol``: its streak, if one ran, ends."""
        streak = self.streaks.pop(symbol, None)
        if streak is None or not self.log.isEnabledFor(logging.INFO):
            return
        for key in [key for key in self._logged if key[0] == symbol]:
            logged = self._logged.pop(key)
            if logged.unlogged:
                self.log.info("%d more entries refused on %s (%s)", logged.unlogged, symbol, key[1])
        self.log.info(
            "entries on %s taken again after %d refused since %s", symbol, streak.count, utc_minute(streak.since_ts)
        )

    def flush(self) -> None:
        """Log the refusals not counted in a line yet (the loop stops): every refusal is in the log as a count."""
        for (symbol, rule), logged in self._logged.items():
            if logged.unlogged:
                self.log.info("%d more entries refused on %s (%s)", logged.unlogged, symbol, rule)
                logged.at, logged.unlogged = self.clock(), 0

    def idle_message(self) -> str | None:
        """One line for ``/status``: which symbols have their entries refused, since when and why; None if none."""
        if not self.streaks:
            return None
        parts = [
            f"entries refused on {symbol} since {utc_minute(streak.since_ts)} ({streak.count} refused): "
            f"{streak.message}"
            for symbol, streak in list(self.streaks.items())[:SYMBOLS_SHOWN]
        ]
        hidden = len(self.streaks) - SYMBOLS_SHOWN
        if hidden > 0:
            parts.append(f"and on {hidden} more symbol{'s' if hidden > 1 else ''}")
        return "; ".join(parts)

    def _log_refusal(self, symbol: str, streak: RefusalStreak) -> None:
        key = (symbol, streak.rule)
        now = self.clock()
        logged = self._logged.get(key)
        if logged is None:
            self._logged[key] = _Logged(now)
            self.log.info("entry refused on %s (%s): %s", symbol, streak.rule, streak.message)
            return
        logged.unlogged += 1
        if now - logged.at >= self.summary_every_s:
            self.log.info(
                "%d more entries refused on %s (%s) in the last %.0fs; the latest: %s",
                logged.unlogged,
                symbol,
                streak.rule,
                now - logged.at,
                streak.message,
            )
            logged.at, logged.unlogged = now, 0
