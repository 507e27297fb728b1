"""``Shutdown``: a flatten settles a book kept in the process at once, asks an exchange that keeps its own until the
deadline, and does nothing but persist on books that are halted."""

from __future__ import annotations

from slsbot_runtime.domain.types import OrderStatus, Side
from slsbot_runtime.engine.shutdown import FLATTEN_POLL_S
from slsbot_runtime.engine.status import Phase
from slsbot_runtime.persistence.store import StateStore

from .parts import HOUR, SYMBOL, T0, OwnBookExchange, paper, trade, wire


def long_position(exchange_cls=None):
    parts = wire(paper() if exchange_cls is None else paper(exchange_cls), StateStore.open(":memory:"))
    parts.restart.load()
    parts.restart.reconcile()
    trade(parts, Side.BUY, 0.5, T0, 100.0)
    assert parts.ledger.quantity(SYMBOL) == 0.5
    return parts


def test_a_flatten_settles_a_book_kept_in_the_process_at_its_last_close() -> None:
    parts = long_position()
    parts.shutdown.shutdown(cancel_orders=True, flatten=True, fill_deadline_s=30.0)
    assert parts.ledger.open_positions() == 0 and parts.orders.unfinished() == []
    (exit_order,) = [o for o in parts.orders.orders.values() if o.side == Side.SELL]
    assert exit_order.status == OrderStatus.FILLED and exit_order.reason == "flatten at shutdown"
    assert exit_order.average_price is not None and exit_order.average_price < 100.0  # against the trader
    assert parts.clock.naps == []  # nothing to wait for
    assert parts.state.finished and parts.publisher.status.phase is Phase.FINISHED
    assert parts.publisher.status.idle_message == "shut down (cancelOrders=True, flatten=True): trades no more"


def test_a_flatten_asks_an_exchange_keeping_its_own_book_until_the_deadline() -> None:
    parts = long_position(OwnBookExchange)  # its market orders fill only on a next candle, which never comes
    parts.shutdown.shutdown(cancel_orders=False, flatten=True, fill_deadline_s=1.0)
    (exit_order,) = parts.orders.unfinished()
    assert exit_order.side == Side.SELL and exit_order.status == OrderStatus.OPEN
    assert parts.ledger.quantity(SYMBOL) == 0.5
    assert parts.clock.naps == [FLATTEN_POLL_S] * 5  # asked every 0.2 s for 1 s, then gave up
    assert parts.state.finished


def test_a_halted_loop_cancels_and_flattens_nothing_but_persists() -> None:
    parts = long_position()
    parts.orders.create_intent(SYMBOL, Side.BUY, 0.1, candle_ts=T0 + HOUR, created_ts=T0 + 2 * HOUR, reason="test")
    parts.orders.send_pending()
    parts.state.halt_reason = "the state disagrees with the exchange"
    parts.shutdown.shutdown(cancel_orders=True, flatten=True, fill_deadline_s=30.0)
    assert len(parts.orders.unfinished()) == 1 and parts.ledger.quantity(SYMBOL) == 0.5
    assert parts.store.load_meta()["cash"] == parts.ledger.cash  # committed
    assert parts.publisher.status.phase is Phase.HALTED


def test_a_drain_asked_before_the_reconciliation_reconciles_first() -> None:
    parts = wire(paper(), StateStore.open(":memory:"))
    parts.restart.load()
    parts.shutdown.shutdown(cancel_orders=True, flatten=False, fill_deadline_s=30.0)
    assert parts.state.reconciled and parts.restart.report is not None and parts.state.finished
