"""Buy-and-hold of the same symbols over one fold, on the same account and by the paper exchange's rules.

At the open of each symbol's first candle in the fold, ``1 / len(symbols)`` of the starting balance buys that
symbol as a market order would fill on the paper exchange: the open moved against the buyer by half the spread
plus the slippage, on the market's tick (up) and never above the candle's high; the quantity on the market's
amount step, cut so that it and its fee fit in that share; the fee (``feeRate`` of the notional) paid in the
quote currency. A buy below the market's minimums is not made (its share stays in cash). Then it holds.

The equity curve follows the backtester's convention: one point per candle open time, the cash plus every
holding at its last close, after the fills at that candle's open; the first point is the equity before the
fold (the starting balance). Like any position still open at the end of a backtest, the holdings are marked at
the last close and make no round trip: buy-and-hold has no trades, and it pays the entry's fee, spread and
slippage but no exit fee, as the strategies' positions open at a fold's end do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from slsbot.api.account import PaperSettings
from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.exchange.market_defaults import default_market_rules
from slsbot_runtime.features.base import OHLCV


@dataclass(frozen=True, slots=True)
class Purchase:
    symbol: str
    ts: int
    quantity: float
    price: float
    fee: float


@dataclass(frozen=True, slots=True)
class HoldingCurve:
    ts: np.ndarray  # the point before the fold, then every candle open time in it
    equity: np.ndarray
    purchases: tuple[Purchase, ...]
    exposed_points: int  # points of the fold (the first excluded) at which something is held


def buy_and_hold(
    histories: Sequence[OHLCV],
    *,
    paper: PaperSettings,
    before_ts: int,
    rules: Mapping[str, MarketRules] | None = None,
) -> HoldingCurve:
    """Buy-and-hold over ``histories`` (each symbol's candles of the fold) from ``paper.startingBalance``;
    ``before_ts`` is the time of the curve's first point (the open time of the candle before the fold)."""
    budget = paper.starting_balance / len(histories)
    adverse = (paper.spread_bps / 2.0 + paper.slippage_bps) / 10_000.0
    cash = paper.starting_balance
    purchases = []
    for history in histories:
        if len(history) == 0:
            continue
        market = (rules or {}).get(history.symbol) or default_market_rules(history.symbol)
        price = min(market.round_price(float(history.open[0]) * (1.0 + adverse), 1), float(history.high[0]))
        # a hair under the exact figure, as the paper exchange cuts a buy to the cash it has
        quantity = market.floor_amount(budget / (price * (1.0 + paper.fee_rate)) * (1 - 1e-12))
        if quantity <= 0 or market.order_problem(quantity, price) is not None:
            continue
        fee = quantity * price * paper.fee_rate
        cash -= quantity * price + fee
        purchases.append(Purchase(history.symbol, int(history.ts[0]), quantity, price, fee))
    times = np.unique(np.concatenate([np.asarray(h.ts, dtype=np.int64) for h in histories]))
    equity = np.full(len(times), cash, dtype=np.float64)
    held_from = np.full(len(times), False)
    for purchase in purchases:
        history = next(h for h in histories if h.symbol == purchase.symbol)
        seen = np.searchsorted(np.asarray(history.ts, dtype=np.int64), times, side="right")  # candles so far
        last_close = np.where(seen > 0, np.asarray(history.close)[np.maximum(seen - 1, 0)], 0.0)
        equity = equity + purchase.quantity * last_close
        held_from |= times >= purchase.ts
    return HoldingCurve(
        ts=np.concatenate(([before_ts], times)).astype(np.int64),
        equity=np.concatenate(([paper.starting_balance], equity)),
        purchases=tuple(purchases),
        exposed_points=int(held_from.sum()),
    )
