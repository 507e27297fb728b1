"""``Restart``: what ``commit`` writes, ``load`` reads back into fresh parts (the book through the exchange's
``BookPersistence``, and only when the exchange has one); ``reconcile`` halts on books that disagree."""

from __future__ import annotations

from pathlib import Path

import pytest

from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import Balance, Side
from slsbot_runtime.engine.status import Phase
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.persistence.store import StateStore

from .parts import HOUR, SYMBOL, T0, OwnBookExchange, candle, paper, trade, wire


def test_a_commit_is_what_a_restarted_loop_loads(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = wire(paper(), StateStore.open(path))
    first.restart.load()
    trade(first, Side.BUY, 0.5, T0, 100.0)
    first.exchange.on_candle(candle(T0 + 2 * HOUR, 104.0))  # a later close the book remembers
    first.state.watermark.observe(first.ledger.equity())
    first.store.stage_cursor(SYMBOL, T0 + 2 * HOUR)  # as the loop stages each candle
    first.restart.commit()
    first.store.close()

    second = wire(paper(), StateStore.open(path))
    second.restart.load()
    assert second.state.cursor == {SYMBOL: T0 + 2 * HOUR}
    assert (second.ledger.cash, second.ledger.quantity(SYMBOL)) == (first.ledger.cash, 0.5)
    assert second.orders.orders == first.orders.orders
    assert second.state.watermark == first.state.watermark
    assert second.exchange.fetch_balances() == first.exchange.fetch_balances()
    assert second.exchange.last_closes() == {SYMBOL: 104.0}
    assert second.state.startup_phase is Phase.RECONCILING and second.state.started
    second.restart.reconcile()  # the restored book agrees with the restored ledger
    assert second.state.reconciled and second.restart.report is not None


def test_an_exchange_without_a_book_to_persist_gets_none_stored_or_restored(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = wire(paper(OwnBookExchange), StateStore.open(path))
    first.restart.load()
    trade(first, Side.BUY, 0.5, T0, 100.0)
    first.restart.commit()
    first.store.close()
    store = StateStore.open(path)
    assert store.load_paper_book() is None and "paper_last_close" not in store.load_meta()

    own_book = paper(OwnBookExchange)
    second = wire(own_book, store)
    second.restart.load()
    assert second.ledger.quantity(SYMBOL) == 0.5  # the bot's own books come back
    assert own_book.fetch_balances()["USDT"].total == 10_000.0  # the exchange's are its own business


def test_a_state_file_of_another_strategy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path)
    store.stage_meta("strategy_key", "default/other")
    store.commit()
    parts = wire(paper(), store)
    with pytest.raises(StateError, match="belongs to strategy default/other"):
        parts.restart.load()


def test_books_that_disagree_with_the_exchange_halt_trading() -> None:
    store = StateStore.open(":memory:")
    store.stage_meta("cash", 9_000.0)  # the exchange holds 10,000 USDT of this bot's alone
    store.commit()
    parts = wire(paper(), store)
    parts.restart.load()
    with pytest.raises(StateError, match="USDT"):
        parts.restart.reconcile()
    assert not parts.state.reconciled and "USDT" in (parts.state.halt_reason or "")
    assert parts.publisher.status.phase is Phase.HALTED and parts.publisher.status.idle_reason == "Halted"


def test_a_commit_writes_what_only_lives_in_memory() -> None:
    parts = wire(paper(), StateStore.open(":memory:"))
    parts.restart.load()
    trade(parts, Side.BUY, 0.5, T0, 100.0)
    parts.state.watermark.observe(9_990.0)
    parts.risk.observe(T0 + HOUR, parts.ledger.equity(), {SYMBOL: 100.0})
    parts.state.staged, parts.clock.now = 7, parts.clock.now + 5.0
    parts.restart.commit()
    meta = parts.store.load_meta()
    assert (meta["cash"], meta["trade_count"]) == (parts.ledger.cash, parts.ledger.trade_count)
    assert meta["equity_peak"] == 9_990.0
    assert parts.store.load_risk() is None  # the risk manager took no candle from this loop yet
    parts.state.risk_fed = True
    parts.restart.commit()
    assert parts.store.load_risk() is not None
    assert (parts.state.staged, parts.state.last_commit) == (0, parts.clock.now)  # the loop's commit pacing


class QuotingExchange(PaperExchange):
    """An exchange whose error quotes the signed request it failed on, as an exchange library's message can."""

    def fetch_balances(self) -> dict[str, Balance]:
        raise StateError(
            "books disagree: GET https://api.example.com/api/v3/account?timestamp=1&signature=c0ffee answered "
            "apiKey=AKIA123 secret: hunter2"
        )


def test_a_halt_shows_no_credential_the_error_quoted() -> None:
    parts = wire(paper(QuotingExchange), StateStore.open(":memory:"))
    problems: list[str | None] = []
    parts.restart.on_reconciled = problems.append
    parts.restart.load()
    with pytest.raises(StateError):
        parts.restart.reconcile()
    reason = parts.state.halt_reason or ""
    assert reason.startswith("books disagree: GET https://api.example.com/api/v3/account?<redacted> answered")
    assert problems == [reason]
    for secret in ("c0ffee", "AKIA123", "hunter2", "timestamp"):
        assert secret not in reason and secret not in repr(parts.publisher.status)
