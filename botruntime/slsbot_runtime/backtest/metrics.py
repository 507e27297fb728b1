"""Backtest results from fills and an equity curve: round-trip trades and performance metrics. Pure.

Conventions (documented in docs/concepts/backtesting.md):
- A trade is a round trip on one symbol (``domain.round_trips``, which a runtime's ``/performance`` counts too):
  it opens when the position leaves zero and closes when it returns to zero, by the ledger's rule
  (``domain.positions``: an exit filled in pieces that leaves only float residue is flat); a flip closes one
  trade and opens the next at the same fill. Entry and exit prices are the volume-weighted prices of the fills
  on each side; ``fees`` are every fee paid in the trade, in quote currency; ``pnl`` is net of fees.
- Returns are simple per-candle returns of the equity curve. Crypto trades all year: a year is 365 days, so the
  annualisation factor is ``365 * 86400 / timeframe_seconds`` periods.
- Sharpe and Sortino use a zero risk-free rate. Sortino's downside deviation is ``sqrt(mean(min(r, 0)**2))``.
- Ratios that divide by zero (no losing trade, no drawdown, a flat curve) are reported as ``None``.
- Returns, drawdowns, the win rate and the exposure are in **percent**, as everywhere slsbot shows them to a person
  (the runtime's status, ``slsbot report``, ``kubectl get strategies``); their keys end in ``_pct``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence

import numpy as np

from slsbot_runtime.domain.round_trips import Trade, round_trips

__all__ = ["Trade", "fingerprint", "performance", "round_trips"]

_EPS = 1e-12  # a denominator this close to zero makes a ratio undefined


def _ratio(numerator: float, denominator: float) -> float | None:
    if abs(denominator) <= _EPS or not math.isfinite(numerator):
        return None
    return numerator / denominator


def _cagr(start: float, end: float, years: float) -> float | None:
    """Compound annual growth; None where it is not meaningful (no time, a wiped-out account, overflow)."""
    if years <= 0 or start <= 0 or end <= 0:
        return None
    log_growth = math.log(end / start) / years
    return math.expm1(log_growth) if log_growth < 700 else None


def performance(
    ts: Sequence[int] | np.ndarray,
    equity: Sequence[float] | np.ndarray,
    trades: Sequence[Trade],
    *,
    timeframe_seconds: int,
    exposure: float,
) -> dict[str, float | int | None]:
    """The metrics of a run. ``exposure`` is the fraction of candles with an open position (0..1); the result
    gives it, and every return, drawdown and rate, in percent (keys ending in ``_pct``)."""
    eq = np.asarray(equity, dtype=np.float64)
    times = np.asarray(ts, dtype=np.int64)
    if len(eq) < 2:
        raise ValueError("equity: a backtest needs at least two equity points; widen --from/--to")
    returns = np.diff(eq) / eq[:-1]
    periods_per_year = 365 * 86400 / timeframe_seconds
    total_return = eq[-1] / eq[0] - 1.0
    years = (times[-1] - times[0]) / 1000 / (365 * 86400)
    cagr = _cagr(eq[0], eq[-1], years)
    std = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    mean = float(np.mean(returns))
    sharpe = _ratio(mean, std)
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    sortino = _ratio(mean, downside)
    peaks = np.maximum.accumulate(eq)
    max_drawdown = float(np.max(1.0 - eq / peaks))
    pnls = np.array([t.pnl for t in trades], dtype=np.float64)
    gross_profit = float(pnls[pnls > 0].sum()) if len(pnls) else 0.0
    gross_loss = float(-pnls[pnls < 0].sum()) if len(pnls) else 0.0
    return {
        "total_return_pct": 100.0 * float(total_return),
        "cagr_pct": None if cagr is None else 100.0 * float(cagr),
        "sharpe": None if sharpe is None else sharpe * math.sqrt(periods_per_year),
        "sortino": None if sortino is None else sortino * math.sqrt(periods_per_year),
        "calmar": None if cagr is None else _ratio(cagr, max_drawdown),
        "max_drawdown_pct": 100.0 * max_drawdown,
        "profit_factor": _ratio(gross_profit, gross_loss),
        "win_rate_pct": 100.0 * float((pnls > 0).mean()) if len(pnls) else None,
        "expectancy": float(pnls.mean()) if len(pnls) else None,
        "exposure_pct": 100.0 * float(exposure),
        "trades": len(trades),
        "final_equity": float(eq[-1]),
    }


def fingerprint(trades: Sequence[Trade], metrics: dict) -> str:
    """A hash of the exact trades and metrics: the same inputs give the same fingerprint."""
    payload = json.dumps(
        {"trades": [t.to_json() for t in trades], "metrics": metrics}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()
