"""THROWAWAY STAND-IN, DELETE AT MERGE: P4's branch (allocation) owns this module and replaces it whole.

The A/B rollout controller (P7) reads a runtime's ``GET /performance`` and ``POST /allocation`` answers as these
types; this file gives them the names and fields of P4's ``slsbot.domain.runtime_performance`` so the controller runs
before P4 lands. When merging, take P4's version of this path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class AllocationSetting:
    percent: float
    source: Literal["spec", "controller"]


@dataclass(frozen=True, slots=True)
class PerformancePeriod:
    ts: int  # the candle's time, ms UTC
    equity: float
    allocated_capital: float
    return_on_allocated: float | None  # None when the capital allocated at the candle before was 0


@dataclass(frozen=True, slots=True)
class RuntimePerformance:
    allocation_percent: float
    last_candle_ts: int | None
    periods: tuple[PerformancePeriod, ...]
    closed_trades: int
    drawdown_percent: float
    breaker_level: int
