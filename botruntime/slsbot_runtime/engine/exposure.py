"""The account figures the control plane aggregates across the runtimes of an account (``scope: account`` or
``global`` RiskPolicies): exposure per symbol and in total, and today's profit and opening equity.

Exposure is what a symbol holds and has on the way, in quote currency at its last price: ``|position| x price``
plus the unfilled rest of every open order that adds to the position (an entry sent but not yet filled counts, so
the control plane never hands its room out twice). Built when the status is published, never per candle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.execution.order_manager import OrderManager


def exposure_by_symbol(ledger: Ledger, orders: OrderManager, symbols: Iterable[str]) -> dict[str, float]:
    """Each symbol's held and incoming notional (quote currency), the symbols with none left out. Only the open orders
    of ``symbols`` are looked at (per symbol: nothing that grows with the history)."""
    exposure: dict[str, float] = {}
    for symbol, row in ledger.positions.items():
        if row.quantity:
            exposure[symbol] = abs(row.quantity) * ledger.prices.get(symbol, row.average_price)
    working = [order for symbol in symbols if orders.has_unfinished(symbol) for order in orders.unfinished(symbol)]
    for order in working:
        held = ledger.quantity(order.symbol)
        if held and (held > 0) != (order.side.sign > 0):
            continue  # it reduces the position
        price = ledger.prices.get(order.symbol) or order.limit_price or 0.0
        exposure[order.symbol] = exposure.get(order.symbol, 0.0) + order.remaining * price
    return {symbol: exposure[symbol] for symbol in sorted(exposure) if exposure[symbol] > 0}


def account_figures(
    ledger: Ledger, orders: OrderManager, symbols: Iterable[str], equity: float, day_start_equity: float | None
) -> dict[str, Any]:
    """``exposure``, ``total_exposure``, ``pnl_today`` (equity - the UTC day's opening equity; null before the first
    candle) and ``equity_day_start`` for ``/status``."""
    exposure = exposure_by_symbol(ledger, orders, symbols)
    return {
        "exposure": exposure,
        "total_exposure": sum(exposure.values()),
        "pnl_today": None if day_start_equity is None else equity - day_start_equity,
        "equity_day_start": day_start_equity,
    }
