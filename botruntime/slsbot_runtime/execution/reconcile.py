"""Reconciliation with the exchange after any restart, before the first trade.

1. Every unfinished order (pending, open, partially filled) is looked up by its client id. Found: its
   status and id are taken over. Not found and still pending: it never reached the exchange, so it is sent
   again with the same id. Not found but acknowledged before: unexplained.
2. Fills since the last one booked are fetched per traded symbol and booked once (fill ids dedupe).
3. Each order's filled quantity must now equal the exchange's.
4. Positions are compared with balances: on an account the bot owns alone (the paper exchange) the base
   balance of each symbol must equal the position and the quote balance the cash; on a shared account the
   base balance must at least cover the long position.

Anything unexplained raises StateError listing every problem: the runtime refuses to trade and reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import OrderStatus, split_symbol
from slsbot_runtime.execution.order_manager import OrderManager

BALANCE_TOLERANCE = 1e-9  # relative


@dataclass(slots=True)
class ReconcileReport:
    checked: int = 0
    resent: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    fills_booked: int = 0
    problems: list[str] = field(default_factory=list)


def reconcile(manager: OrderManager) -> ReconcileReport:
    """Bring ``manager`` (orders, fills, ledger) in line with its exchange; StateError if it cannot be."""
    exchange = manager.exchange
    report = ReconcileReport()
    booked_before = manager.ledger.trade_count
    remote_filled: dict[str, float] = {}
    for order in manager.unfinished():
        report.checked += 1
        remote = exchange.fetch_order(order.client_order_id, order.symbol)  # the adapter retries
        if remote is None:
            if order.status == OrderStatus.PENDING:
                manager.resend(order)
                report.resent.append(order.client_order_id)
            else:
                report.problems.append(
                    f"order {order.client_order_id} ({order.symbol}) is {order.status} here "
                    f"but the exchange does not know it"
                )
            continue
        status_before = order.status
        remote_filled[order.client_order_id] = remote.filled_quantity
        manager.absorb(order, remote)
        if order.status != status_before:
            report.updated.append(order.client_order_id)
    traded = {o.symbol for o in manager.orders.values()}
    for symbol in sorted(traded):
        manager.fetch_missing_fills(symbol)
    report.fills_booked = manager.ledger.trade_count - booked_before
    for cid, filled in remote_filled.items():
        order = manager.orders[cid]
        if abs(order.filled_quantity - filled) > BALANCE_TOLERANCE * max(1.0, order.quantity):
            report.problems.append(
                f"order {cid} ({order.symbol}): the exchange filled {filled}, "
                f"the fills booked here add up to {order.filled_quantity}"
            )
    report.problems.extend(_balance_problems(manager))
    if report.problems:
        raise StateError("reconcile: " + "; ".join(report.problems))
    return report


def _balance_problems(manager: OrderManager) -> list[str]:
    exchange = manager.exchange
    ledger = manager.ledger
    exclusive = exchange.features.get("exclusive_account", False)
    balances = exchange.fetch_balances()
    problems = []
    for symbol, row in sorted(ledger.positions.items()):
        base, _ = split_symbol(symbol)
        held = balances[base].total if base in balances else 0.0
        tolerance = BALANCE_TOLERANCE * max(1.0, abs(row.quantity))
        if exclusive and abs(held - row.quantity) > tolerance:
            problems.append(f"{symbol}: position {row.quantity} {base} but the exchange balance is {held}")
        elif not exclusive and row.quantity > 0 and held < row.quantity - tolerance:
            problems.append(f"{symbol}: long {row.quantity} {base} but the exchange holds only {held}")
    if exclusive:
        quote = ledger.quote_currency
        cash = balances[quote].total if quote in balances else 0.0
        if abs(cash - ledger.cash) > BALANCE_TOLERANCE * max(1.0, abs(ledger.cash)):
            problems.append(f"cash: {ledger.cash} {quote} booked but the exchange balance is {cash}")
    return problems
