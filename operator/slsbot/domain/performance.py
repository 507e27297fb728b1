"""The money maths an A/B rollout does on what runtimes report (``GET /performance``: ``domain.runtime_performance``).

Pure: plain data in, numbers out. A period is one candle of one runtime: its equity, the capital allocated to it,
and its return on that capital over the candle (None while it had no capital). The A/B test compares two runtimes
period by period, paired by candle time (``paired_returns``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from slsbot.api.strategy import TIMEFRAME_SECONDS
from slsbot.domain.runtime_performance import PerformancePeriod

SECONDS_PER_YEAR = 365 * 86_400


def paired_returns(
    baseline: Sequence[PerformancePeriod], candidate: Sequence[PerformancePeriod], *, after: int, until: int
) -> list[tuple[int, float, float]]:
    """``(ts, baseline_return, candidate_return)`` of the candles after ``after`` and up to ``until`` (both ms)
    at which both runtimes had capital, oldest first. A candle one of them did not report, or at which one of
    them had no capital (no return), is left out: only like is compared with like."""
    theirs = {
        p.ts: p.return_on_allocated for p in candidate if after < p.ts <= until and _finite(p.return_on_allocated)
    }
    pairs = [
        (p.ts, p.return_on_allocated, theirs[p.ts])
        for p in baseline
        if p.ts in theirs and _finite(p.return_on_allocated)
    ]
    return sorted(pairs)  # type: ignore[arg-type]


def compounded_return_percent(periods: Sequence[PerformancePeriod]) -> float | None:
    """The periods' returns compounded, in percent; None without one."""
    returns = [p.return_on_allocated for p in periods if _finite(p.return_on_allocated)]
    if not returns:
        return None
    growth = 1.0
    for value in returns:
        growth *= 1.0 + value
    return (growth - 1.0) * 100.0


def annualised_sharpe(periods: Sequence[PerformancePeriod], *, timeframe: str) -> float | None:
    """Mean over standard deviation of the periods' returns, times the square root of the periods in a year
    (no risk-free rate: the returns are on capital that would otherwise sit idle); None with fewer than two
    returns or none that differ."""
    returns = [p.return_on_allocated for p in periods if _finite(p.return_on_allocated)]
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if variance <= 0:
        return None
    per_year = SECONDS_PER_YEAR / TIMEFRAME_SECONDS[timeframe]
    return mean / math.sqrt(variance) * math.sqrt(per_year)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
