"""What a runtime says about its capital and its results, as the controllers read it (``POST /allocation`` and
``GET /performance`` of its control port; ``adapters.runtime_client`` builds these from the answers). Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class AllocationSetting:
    """The allocation a runtime trades with after ``POST /allocation``: the override (``controller``) or, once it
    was cleared, the Strategy's ``allocationPercent`` (``spec``)."""

    percent: float
    source: Literal["spec", "controller"]


@dataclass(frozen=True, slots=True)
class PerformancePeriod:
    """One candle: the equity after it, the capital allocated then, and the return on the capital allocated in the
    candle before (None for the first period, or when that capital was 0)."""

    ts: int  # the candle's open time, ms UTC
    equity: float
    allocated_capital: float
    return_on_allocated: float | None


@dataclass(frozen=True, slots=True)
class RuntimePerformance:
    """``GET /performance?since=``: the periods after ``since``, the round trips closed after it, and the risk
    figures now. ``last_candle_ts`` is the ``since`` of the next look (None before the first candle)."""

    allocation_percent: float
    last_candle_ts: int | None
    periods: tuple[PerformancePeriod, ...]
    closed_trades: int
    drawdown_percent: float
    breaker_level: int
