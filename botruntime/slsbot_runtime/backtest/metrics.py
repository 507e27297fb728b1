"""Backtest results from fills and an equity curve: round-trip trades and performance metrics. Pure.

Conventions (documented in docs/concepts/backtesting.md):
- A trade is a round trip on one symbol: it opens when the position leaves zero and closes when it returns to
  zero, by the ledger's rule (``domain.positions``: an exit filled in pieces that leaves only float residue
  is flat); a flip closes one trade and opens the next at the same fill. Entry and exit prices are the
  volume-weighted prices of the fills on each side; ``fees`` are every fee paid in the trade, in quote currency;
  ``pnl`` is net of fees.
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
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from slsbot_runtime.domain.positions import position_after
from slsbot_runtime.domain.types import Fill, Side

_EPS = 1e-12  # a denominator this close to zero makes a ratio undefined


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    side: str  # "long" or "short"
    entry_ts: int
    exit_ts: int
    quantity: float
    entry_price: float
    exit_price: float
    fees: float
    pnl: float

    @property
    def return_pct(self) -> float:
        cost = self.entry_price * self.quantity
        return 100.0 * self.pnl / cost if cost > 0 else 0.0

    def to_json(self) -> dict:
        data = asdict(self)
        data["return_pct"] = self.return_pct
        return data


@dataclass(slots=True)
class _Open:
    sign: int
    entry_ts: int
    entry_qty: float = 0.0
    entry_value: float = 0.0
    exit_qty: float = 0.0
    exit_value: float = 0.0
    fees: float = 0.0


def round_trips(fills: Iterable[Fill]) -> list[Trade]:
    """Round-trip trades from fills in time order. An unclosed position at the end is not a trade."""
    positions: dict[str, float] = {}
    open_trades: dict[str, _Open] = {}
    trades: list[Trade] = []
    for fill in fills:
        qty = fill.quantity
        signed = qty if fill.side is Side.BUY else -qty
        before = positions.get(fill.symbol, 0.0)
        fee_quote = fill.fee if fill.fee_currency != fill.symbol.split("/")[0] else fill.fee * fill.price
        after = position_after(before, signed)  # exactly 0.0 where the ledger is flat
        positions[fill.symbol] = after
        current = open_trades.get(fill.symbol)
        if current is None:  # flat before this fill: it opens a trade
            current = _Open(sign=1 if signed > 0 else -1, entry_ts=fill.ts)
            open_trades[fill.symbol] = current
        same_direction = (signed > 0) == (current.sign > 0)
        if same_direction:
            current.entry_qty += qty
            current.entry_value += qty * fill.price
            current.fees += fee_quote
            continue
        closing = min(qty, abs(before))
        share = closing / qty if qty > 0 else 1.0
        current.exit_qty += closing
        current.exit_value += closing * fill.price
        current.fees += fee_quote * share
        if after == 0.0 or (after > 0) != (before > 0):
            trades.append(_close(fill.symbol, current, fill.ts))
            del open_trades[fill.symbol]
            if after != 0.0:  # the fill flipped the position: the remainder opens a new trade
                rest = qty - closing
                flipped = _Open(sign=1 if signed > 0 else -1, entry_ts=fill.ts)
                flipped.entry_qty = rest
                flipped.entry_value = rest * fill.price
                flipped.fees = fee_quote * (1 - share)
                open_trades[fill.symbol] = flipped
    return trades


def _close(symbol: str, trade: _Open, exit_ts: int) -> Trade:
    entry_price = trade.entry_value / trade.entry_qty
    exit_price = trade.exit_value / trade.exit_qty
    gross = (exit_price - entry_price) * trade.exit_qty * trade.sign
    return Trade(
        symbol=symbol,
        side="long" if trade.sign > 0 else "short",
        entry_ts=trade.entry_ts,
        exit_ts=exit_ts,
        quantity=trade.exit_qty,
        entry_price=entry_price,
        exit_price=exit_price,
        fees=trade.fees,
        pnl=gross - trade.fees,
    )


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
