"""What a runtime reports of its performance (``GET /performance``), and the money maths an A/B rollout does on it.

Pure: plain data in, numbers out. A period is one candle of one runtime: its equity at the close, the capital
allocated to it, and its return on that capital over the candle (None while it had no capital). The A/B test
compares two runtimes period by period, paired by candle time (``paired_returns``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from slsbot.api.strategy import TIMEFRAME_SECONDS

SECONDS_PER_YEAR = 365 * 86_400


@dataclass(frozen=True, slots=True)
class Period:
    ts: int  # the candle's time, ms since the epoch (UTC)
    equity: float
    allocated: float  # capital allocated to the runtime at this candle
    ret: float | None  # return on the capital allocated at the candle before; None when that was zero


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """One runtime's answer to ``GET /performance?since=...``: figures about the candles after ``since``."""

    allocation_percent: float  # the share of the account's capital it trades with now
    last_candle_ts: int | None  # its market clock: the newest candle it has seen (None before the first)
    periods: tuple[Period, ...] = ()
    closed_trades: int = 0  # round trips closed after ``since``
    drawdown_percent: float = 0.0  # below its equity peak now
    breaker_level: int = 0  # the circuit breaker's tripped level (0: none)


def paired_returns(
    baseline: Sequence[Period], candidate: Sequence[Period], *, after: int, until: int
) -> list[tuple[int, float, float]]:
    """``(ts, baseline_return, candidate_return)`` of the candles after ``after`` and up to ``until`` (both ms)
    at which both runtimes had capital, oldest first. A candle one of them did not report, or at which one of
    them had no capital, is left out: only like is compared with like."""
    theirs = {p.ts: p.ret for p in candidate if after < p.ts <= until and p.ret is not None}
    pairs = [(p.ts, p.ret, theirs[p.ts]) for p in baseline if p.ts in theirs and p.ret is not None]
    return sorted(pairs)


def compounded_return_percent(periods: Sequence[Period]) -> float | None:
    """The periods' returns compounded, in percent; None without one."""
    returns = [p.ret for p in periods if p.ret is not None]
    if not returns:
        return None
    growth = 1.0
    for value in returns:
        growth *= 1.0 + value
    return (growth - 1.0) * 100.0


def annualised_sharpe(periods: Sequence[Period], *, timeframe: str) -> float | None:
    """Mean over standard deviation of the periods' returns, times the square root of the periods in a year
    (no risk-free rate: the returns are on capital that would otherwise sit idle); None with fewer than two
    returns or none that differ."""
    returns = [p.ret for p in periods if p.ret is not None]
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if variance <= 0:
        return None
    per_year = SECONDS_PER_YEAR / TIMEFRAME_SECONDS[timeframe]
    return mean / math.sqrt(variance) * math.sqrt(per_year)
