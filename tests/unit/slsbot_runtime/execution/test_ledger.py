"""The bot's own books: cash, positions, results of closed trades."""

from __future__ import annotations

import pytest

from slsbot_runtime.domain.types import Fill, Side
from slsbot_runtime.execution.ledger import Ledger


def fill(n: int, side: Side, quantity: float, price: float, fee: float = 0.0, currency: str = "USDT") -> Fill:
    return Fill(f"f{n}", "o", "BTC/USDT", side, quantity, price, fee, currency, n)


def test_round_trip_with_fees_in_the_cost_basis() -> None:
    ledger = Ledger(cash=1_000.0, quote_currency="USDT")
    ledger.apply(fill(1, Side.BUY, 2.0, 100.0, fee=0.2))
    row = ledger.positions["BTC/USDT"]
    assert row.quantity == 2.0 and row.average_price == pytest.approx(100.1)
    assert ledger.cash == pytest.approx(1_000 - 200.2)
    ledger.mark("BTC/USDT", 110.0)
    assert ledger.equity() == pytest.approx(1_000 - 200.2 + 220.0)
    ledger.apply(fill(2, Side.SELL, 2.0, 110.0, fee=0.22))
    assert row.quantity == 0.0
    assert row.realized_pnl == pytest.approx(220 - 0.22 - 200.2)
    assert (row.wins, row.losses) == (1, 0)
    assert ledger.cash == pytest.approx(1_000 + row.realized_pnl)
    assert ledger.trade_count == 2


def test_a_losing_partial_exit_and_a_flip_through_zero() -> None:
    ledger = Ledger(cash=1_000.0, quote_currency="USDT")
    ledger.apply(fill(1, Side.BUY, 2.0, 100.0))
    ledger.apply(fill(2, Side.SELL, 1.0, 90.0))
    row = ledger.positions["BTC/USDT"]
    assert (row.quantity, row.average_price, row.losses, row.gross_loss) == (1.0, 100.0, 1, 10.0)
    ledger.apply(fill(3, Side.SELL, 3.0, 95.0))
    assert (row.quantity, row.average_price) == (-2.0, 95.0)
    assert ledger.open_positions() == 1


def test_fee_in_the_base_currency_reduces_what_was_bought() -> None:
    ledger = Ledger(cash=1_000.0, quote_currency="USDT")
    ledger.apply(fill(1, Side.BUY, 1.0, 100.0, fee=0.001, currency="BTC"))
    assert ledger.quantity("BTC/USDT") == pytest.approx(0.999)
    assert ledger.cash == 900.0


def test_snapshot_lists_open_positions_only() -> None:
    ledger = Ledger(cash=1_000.0, quote_currency="USDT")
    ledger.apply(fill(1, Side.BUY, 1.0, 100.0))
    ledger.apply(Fill("x", "o", "ETH/USDT", Side.BUY, 1.0, 10.0, 0.0, "USDT", 2))
    ledger.apply(Fill("y", "o", "ETH/USDT", Side.SELL, 1.0, 10.0, 0.0, "USDT", 3))
    snapshot = ledger.snapshot(5)
    assert list(snapshot.positions) == ["BTC/USDT"]
    assert snapshot.cash == 900.0 and snapshot.equity == 1_000.0
