"""From what a run produced (its fills and its equity after every candle) to the backtest's answer: round-trip
trades, performance metrics and a fingerprint. Pure; both modes end here, so equal runs give equal answers.

* The equity curve has one point per candle open time: the account's equity at that candle's close, after
  the fills at its open (with several symbols, after the last symbol's candle at that time).
* Exposure is the fraction of those points at which any position was open (not flat by the ledger's rule,
  ``domain.positions``).
* Trades are ``metrics.round_trips`` of the fills; a position still open at the end is not a trade (it is in
  the final equity, marked at the last close).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slsbot_runtime.backtest.metrics import Trade, fingerprint, performance, round_trips
from slsbot_runtime.domain.errors import DataError
from slsbot_runtime.domain.positions import position_after
from slsbot_runtime.domain.timeframes import utc_iso
from slsbot_runtime.domain.types import Fill, Side

#: How a run reports its progress: ``progress(candles_done, candles_total)``, every few thousand candles and once
#: at the end. A run that falls back from fast to step mode starts counting again.
Progress = Callable[[int, int], None]
#: Candles between two progress reports: a report costs a few microseconds, a candle of step mode ~20.
PROGRESS_EVERY = 4096


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What one run of either mode produced."""

    mode: str  # "step" or "fast"
    fills: list[Fill]  # in the order they were booked
    candle_ts: np.ndarray  # open time of every processed candle, in processing order (int64 ms)
    equity: np.ndarray  # equity at each of those candles' close (float64)
    elapsed_s: float  # wall time of the run itself, data loading excluded


@dataclass(frozen=True, slots=True)
class BacktestResult:
    trades: list[Trade]
    metrics: dict[str, Any]
    fingerprint: str
    mode: str
    candles: int
    elapsed_s: float
    symbols: tuple[str, ...]
    timeframe: str
    fallback_reason: str | None = None
    first_ts: int | None = None
    last_ts: int | None = None
    #: The equity curve: one point per candle open time (ms) and the equity at that candle's close.
    equity_ts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64), compare=False, repr=False)
    equity: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float64), compare=False, repr=False)

    @property
    def candles_per_second(self) -> float:
        return self.candles / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "trades": [trade_json(trade) for trade in self.trades],
            "metrics": self.metrics,
            "fingerprint": self.fingerprint,
            "run": {
                "mode": self.mode,
                "fallback_reason": self.fallback_reason,
                "symbols": list(self.symbols),
                "timeframe": self.timeframe,
                "candles": self.candles,
                "first_candle": _iso(self.first_ts),
                "last_candle": _iso(self.last_ts),
                "elapsed_s": round(self.elapsed_s, 4),
            },
        }


def trade_json(trade: Trade) -> dict[str, Any]:
    data = trade.to_json()
    data["entry_time"] = _iso(trade.entry_ts)
    data["exit_time"] = _iso(trade.exit_ts)
    return data


def equity_curve(candle_ts: np.ndarray, equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One point per open time: the last equity recorded at that time (input in processing order)."""
    ts = np.asarray(candle_ts, dtype=np.int64)
    values = np.asarray(equity, dtype=np.float64)
    if len(ts) == 0:
        return ts, values
    last = np.ones(len(ts), dtype=bool)
    last[:-1] = ts[1:] != ts[:-1]
    return ts[last], values[last]


def exposure(fills: Sequence[Fill], curve_ts: np.ndarray) -> float:
    """The fraction of curve points at which any position was open (after that candle's fills)."""
    if len(curve_ts) == 0:
        return 0.0
    exposed = np.zeros(len(curve_ts), dtype=bool)
    by_symbol: dict[str, list[Fill]] = {}
    for fill in fills:
        by_symbol.setdefault(fill.symbol, []).append(fill)
    for symbol_fills in by_symbol.values():
        held, change_ts, is_open = 0.0, [], []
        for fill in symbol_fills:
            held = position_after(held, fill.quantity if fill.side is Side.BUY else -fill.quantity)
            change_ts.append(fill.ts)
            is_open.append(held != 0.0)
        state = np.searchsorted(np.asarray(change_ts, dtype=np.int64), curve_ts, side="right") - 1
        flags = np.asarray(is_open, dtype=bool)
        exposed |= (state >= 0) & flags[np.maximum(state, 0)]
    return float(exposed.mean())


def summarize(
    record: RunRecord,
    *,
    timeframe: str,
    timeframe_seconds: int,
    symbols: Sequence[str],
    fallback_reason: str | None = None,
) -> BacktestResult:
    curve_ts, curve_equity = equity_curve(record.candle_ts, record.equity)
    trades = round_trips(record.fills)
    try:
        metrics = performance(
            curve_ts,
            curve_equity,
            trades,
            timeframe_seconds=timeframe_seconds,
            exposure=exposure(record.fills, curve_ts),
        )
    except ValueError as error:
        raise DataError(str(error)) from None
    return BacktestResult(
        trades=trades,
        metrics=metrics,
        fingerprint=fingerprint(trades, metrics),
        mode=record.mode,
        candles=len(record.candle_ts),
        elapsed_s=record.elapsed_s,
        symbols=tuple(symbols),
        timeframe=timeframe,
        fallback_reason=fallback_reason,
        first_ts=int(curve_ts[0]) if len(curve_ts) else None,
        last_ts=int(curve_ts[-1]) if len(curve_ts) else None,
        equity_ts=curve_ts,
        equity=curve_equity,
    )


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return utc_iso(ts)
