"""Reconciliation with the exchange after any restart, before the first trade.

0. Adopt: for each symbol the strategy trades, the exchange's fills since the newest point the state knows (its
   newest booked fill of that symbol, else its cursor) and its open orders are read; every order among them whose
   client id carries this strategy's tag (``client_ids.strategy_tag``) and that the state lacks (a state restored
   from an older backup, or one whose tail a crash lost) is fetched and taken over as the exchange shows it; its
   fills are then booked by the next steps, once each. An id of the old format (``sls-`` + 32 hex digits, from
   before the tag) does not say its strategy: it is adopted only when it is the old id of one of this strategy's
   decisions on a candle since that point (with the candles' interval known). Orders of other strategies on the
   same account are never adopted. A state that has booked nothing and processed no candle (a new one) adopts
   nothing.
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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import Order, OrderStatus, split_symbol
from slsbot_runtime.execution.client_ids import LEGACY_PREFIX, is_own, legacy_client_order_ids
from slsbot_runtime.execution.order_manager import OrderManager

BALANCE_TOLERANCE = 1e-9  # relative


@dataclass(slots=True)
class ReconcileReport:
    checked: int = 0
    resent: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    fills_booked: int = 0
    #: Client ids of the orders taken over from the exchange (step 0), oldest first.
    adopted: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def reconcile(
    manager: OrderManager,
    *,
    symbols: Iterable[str] = (),
    cursor: Mapping[str, int] | None = None,
    interval_ms: int | None = None,
) -> ReconcileReport:
    """Bring ``manager`` (orders, fills, ledger) in line with its exchange; StateError if it cannot be.

    ``symbols`` are the ones the strategy trades (those of the stored orders are added), ``cursor`` the open time of
    the last candle the state processed per symbol: where adoption starts for a symbol without a booked fill;
    ``interval_ms`` the candles' interval, with which ids of the old format are recognised as this strategy's."""
    exchange = manager.exchange
    report = ReconcileReport()
    booked_before = manager.ledger.trade_count
    remote_filled: dict[str, float] = {}
    adopted = _adopt(manager, symbols, cursor or {}, interval_ms, report)
    for order in manager.unfinished():
        remote = adopted.get(order.client_order_id)
        if remote is not None:  # just fetched: its fills are booked and its status taken like any other order's
            remote_filled[order.client_order_id] = remote.filled_quantity
            manager.absorb(order, remote)
            continue
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


def adoption_start(symbol: str, *, last_fill_ts: int | None, cursor: Mapping[str, int]) -> int | None:
    """From when the exchange's fills of ``symbol`` are read for orders to adopt: the newest fill the state booked
    in it, else the last candle it processed in it, else the oldest last candle of any symbol (a symbol added to the
    strategy since); None when the state has processed nothing (a new state: the account's past is not its own)."""
    if last_fill_ts is not None:
        return last_fill_ts
    if symbol in cursor:
        return cursor[symbol]
    return min(cursor.values()) if cursor else None


def _adopt(
    manager: OrderManager,
    symbols: Iterable[str],
    cursor: Mapping[str, int],
    interval_ms: int | None,
    report: ReconcileReport,
) -> dict[str, Order]:
    """Step 0: take over this strategy's orders the exchange has and the state lacks; the exchange's view of each,
    by client id. Nothing is booked here: the orders are known now, so the next steps book their fills in time
    order with the state's own."""
    exchange, known = manager.exchange, manager.orders
    found: dict[str, Order] = {}
    for symbol in sorted(set(symbols) | {order.symbol for order in known.values()}):
        since = adoption_start(symbol, last_fill_ts=manager.last_fill_ts(symbol), cursor=cursor)
        if since is None:
            continue
        open_orders = {
            o.client_order_id: o for o in exchange.fetch_open_orders(symbol) if o.client_order_id not in known
        }
        fills = [fill for fill in exchange.fetch_fills(symbol, since) if fill.client_order_id not in known]
        seen = {cid: order.created_ts for cid, order in open_orders.items()}
        for fill in fills:
            seen[fill.client_order_id] = max(seen.get(fill.client_order_id, fill.ts), fill.ts)
        own = _own_ids(manager, symbol, seen, since=since, interval_ms=interval_ms)
        for cid in sorted(own & open_orders.keys()):
            found[cid] = open_orders[cid]
        unknown: set[str] = set()
        for fill in fills:
            cid = fill.client_order_id
            if cid not in own or cid in found or cid in unknown:
                continue
            remote = exchange.fetch_order(cid, symbol)
            if remote is None:
                unknown.add(cid)
                report.problems.append(
                    f"fill {fill.fill_id} belongs to order {cid} ({symbol}), which the exchange does not show"
                )
                continue
            found[cid] = remote
    for remote in sorted(found.values(), key=lambda order: order.created_ts):
        manager.adopt(remote)
        report.adopted.append(remote.client_order_id)
    return found


def _own_ids(
    manager: OrderManager, symbol: str, seen: Mapping[str, int], *, since: int, interval_ms: int | None
) -> set[str]:
    """Which of the client ids ``seen`` (each with the newest time it was seen at) are this strategy's: those with its
    tag, and those of the old format that are the old id of one of its decisions on a candle from the one before
    ``since`` on (with ``interval_ms`` known: a state from before the upgrade, restored)."""
    own = {cid for cid in seen if is_own(cid, manager.tag)}
    old = {cid: ts for cid, ts in seen.items() if cid.startswith(LEGACY_PREFIX)}
    if old and interval_ms:
        candidates = legacy_client_order_ids(
            manager.strategy_key,
            symbol,
            first_ts=since - interval_ms,
            last_ts=max(old.values()),
            interval_ms=interval_ms,
        )
        own |= old.keys() & candidates
    return own


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
