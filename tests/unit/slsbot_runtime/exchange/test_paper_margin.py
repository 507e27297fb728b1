"""Shorts on the paper exchange need collateral and pay borrow interest the way Binance Margin charges it, and the
ledger booking the same fills stays equal to the exchange's balances."""

from __future__ import annotations

import pytest

from slsbot.api import PaperSettings
from slsbot_runtime.domain.types import Candle, Fill, OrderRequest, OrderStatus, Side
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.exchange.paper_margin import short_sell_room
from slsbot_runtime.execution.ledger import Ledger

HOUR = 3_600_000
MINUTE = 60_000
BTC, ETH = "BTC/USDT", "ETH/USDT"


def paper(*, interval_ms: int = HOUR, **changes: float) -> PaperExchange:
    settings = {"spread_bps": 0.0, "slippage_bps": 0.0, "fee_rate": 0.001, "max_volume_participation": 1.0}
    return PaperExchange(PaperSettings(**{**settings, **changes}), interval_ms=interval_ms, allow_short=True)


def flat(symbol: str, ts: int, price: float) -> Candle:
    return Candle(symbol, ts, price, price, price, price, 1e9)


def order(cid: str, symbol: str, side: Side, quantity: float, *, at: int) -> OrderRequest:
    return OrderRequest(cid, symbol, side, quantity, created_ts=at)


def test_a_short_is_cut_to_what_the_collateral_allows() -> None:
    exchange = paper(starting_balance=1_000.0)
    exchange.on_candle(flat(BTC, 0, 40_000.0))
    exchange.place_order(order("short", BTC, Side.SELL, 2.5, at=HOUR))  # 100,000 USDT of BTC
    [fill] = exchange.on_candle(flat(BTC, HOUR, 40_000.0))
    # 0.5 x the short's notional must stay within the equity left after the fee: q <= 1000 / (40000 x 0.501)
    assert fill.quantity == 0.0499
    assert exchange.fetch_order("short", BTC).status == OrderStatus.CANCELED
    assert exchange.fetch_order("short", BTC).reason == "insufficient margin for the rest"
    equity = exchange.balance("USDT") + exchange.balance("BTC") * 40_000.0
    assert equity >= 0.5 * 0.0499 * 40_000.0
    exchange.place_order(order("more", BTC, Side.SELL, 0.01, at=2 * HOUR))
    assert exchange.on_candle(flat(BTC, 2 * HOUR, 40_000.0)) == []
    assert exchange.fetch_order("more", BTC).status == OrderStatus.REJECTED
    assert exchange.fetch_order("more", BTC).reason == "insufficient margin"


def test_selling_what_is_held_needs_no_collateral() -> None:
    exchange = paper(starting_balance=4_100.0)
    exchange.on_candle(flat(BTC, 0, 40_000.0))
    exchange.place_order(order("buy", BTC, Side.BUY, 0.1, at=HOUR))
    exchange.on_candle(flat(BTC, HOUR, 40_000.0))
    exchange.on_candle(flat(BTC, 2 * HOUR, 10_000.0))  # equity now ~1,100: the long alone is worth 1,000
    exchange.place_order(order("sell", BTC, Side.SELL, 1.0, at=3 * HOUR))
    [fill] = exchange.on_candle(flat(BTC, 3 * HOUR, 10_000.0))
    # 96 USDT left after the buy: the 0.1 held, and a short while 0.5 x its notional <= the equity after the fee:
    # q <= (96 + 1000 + 0.5 x 0.1 x 10000) / (10000 x 0.501) = 0.31856...
    assert fill.quantity == 0.31856
    assert exchange.balance("BTC") == pytest.approx(-0.21856)


def test_every_short_counts_against_the_collateral() -> None:
    exchange = paper(starting_balance=1_000.0)
    exchange.on_candle(flat(ETH, 0, 2_000.0))
    exchange.on_candle(flat(BTC, 0, 40_000.0))
    exchange.place_order(order("eth", ETH, Side.SELL, 0.5, at=HOUR))  # 1,000 USDT of ETH: half the room
    exchange.place_order(order("btc", BTC, Side.SELL, 1.0, at=HOUR))
    [eth] = exchange.on_candle(flat(ETH, HOUR, 2_000.0))
    assert eth.quantity == 0.5
    [btc] = exchange.on_candle(flat(BTC, HOUR, 40_000.0))
    eth_interest = 0.5 * (0.0002 / 24) * 2_000.0  # its first hour, owed since the sale
    equity = 1_000.0 - eth.fee - eth_interest
    room = short_sell_room(held=0.0, price=40_000.0, equity=equity, other_shorts=1_000.0, margin=0.5, fee_rate=0.001)
    assert room == pytest.approx((equity - 500.0) / (40_000.0 * 0.501))
    assert btc.quantity == exchange.market_rules(BTC).floor_amount(room) == 0.02489  # half of what 1,000 USDT backs


def test_borrow_interest_follows_binances_worked_example() -> None:
    """Binance: borrowed at 13:20 and repaid at 14:15, two hours of interest (one at borrowing, one at 14:00)."""
    five = 5 * MINUTE
    exchange = paper(interval_ms=five, starting_balance=10_000.0, short_borrow_rate_per_day=0.0002)
    day = 20_000 * 24 * HOUR  # a UTC midnight
    borrowed_at, repaid_at = day + 13 * HOUR + 20 * MINUTE, day + 14 * HOUR + 15 * MINUTE
    exchange.on_candle(flat(BTC, borrowed_at - five, 40_000.0))
    exchange.place_order(order("short", BTC, Side.SELL, 0.1, at=borrowed_at))
    [sold] = exchange.on_candle(flat(BTC, borrowed_at, 40_000.0))
    assert sold.fee == pytest.approx(4.0)  # the fee only: the interest is collected with the buy back
    exchange.on_candle(flat(BTC, repaid_at - five, 40_000.0))
    exchange.place_order(order("cover", BTC, Side.BUY, 0.1, at=repaid_at))
    [bought] = exchange.on_candle(flat(BTC, repaid_at, 40_000.0))
    interest = 0.1 * (0.0002 / 24) * 2 * 40_000.0  # in BTC, bought back at the fill price
    assert bought.fee == pytest.approx(4.0 + interest, rel=1e-12)
    assert exchange.balance("BTC") == pytest.approx(0.0, abs=1e-15)
    assert exchange.balance("USDT") == pytest.approx(10_000.0 - 8.0 - interest, rel=1e-12)


def test_a_longer_short_pays_every_hour_started_and_the_ledger_agrees() -> None:
    exchange = paper(starting_balance=10_000.0, short_borrow_rate_per_day=0.0024)  # 0.0001 per hour
    ledger = Ledger(cash=10_000.0, quote_currency="USDT")
    fills: list[Fill] = []
    exchange.on_candle(flat(BTC, 0, 40_000.0))
    exchange.place_order(order("short", BTC, Side.SELL, 0.1, at=HOUR))
    for hour in range(1, 5):
        fills += exchange.on_candle(flat(BTC, hour * HOUR, 40_000.0 + hour))
    exchange.place_order(order("cover", BTC, Side.BUY, 0.1, at=5 * HOUR))
    fills += exchange.on_candle(flat(BTC, 5 * HOUR, 39_000.0))
    sold, bought = fills
    assert (sold.ts, bought.ts) == (HOUR, 5 * HOUR)
    hours = 1 + 4  # at borrowing, then at 02:00, 03:00, 04:00 and 05:00
    assert bought.fee == pytest.approx(0.1 * 39_000.0 * 0.001 + 0.1 * 0.0001 * hours * 39_000.0, rel=1e-12)
    for fill in fills:
        ledger.apply(fill)
    assert ledger.cash == exchange.balance("USDT")  # exactly: the reconcile compares them
    assert ledger.quantity(BTC) == exchange.balance("BTC") == 0.0
    row = ledger.positions[BTC]
    assert row.realized_pnl == pytest.approx(0.1 * (sold.price - bought.price) - sold.fee - bought.fee)


def test_a_restored_book_charges_the_same_interest() -> None:
    def run(restore_at: int | None) -> list[tuple[str, float, float]]:
        exchange = paper(starting_balance=10_000.0, short_borrow_rate_per_day=0.01)
        orders, eligible, fills, balances = {}, {}, [], {}
        seen = []
        for hour in range(10):
            changes = exchange.drain_changes()
            orders.update({o.client_order_id: o for o in changes.orders})
            eligible.update(changes.eligible_ts)
            fills += changes.fills
            balances.update({b.currency: b for b in changes.balances})
            if hour == restore_at:
                closes = exchange.last_closes()
                exchange = paper(starting_balance=10_000.0, short_borrow_rate_per_day=0.01)
                exchange.restore(
                    orders=orders.values(),
                    eligible_ts=eligible,
                    fills=fills,
                    balances=balances.values(),
                    clock_ms=changes.clock_ms,
                    last_close=closes,
                )
            seen += [(f.fill_id, f.quantity, f.fee) for f in exchange.on_candle(flat(BTC, hour * HOUR, 40_000.0))]
            if hour in (1, 3):
                exchange.place_order(order(f"short{hour}", BTC, Side.SELL, 0.05, at=(hour + 1) * HOUR))
            if hour in (6, 8):
                exchange.place_order(order(f"cover{hour}", BTC, Side.BUY, 0.05, at=(hour + 1) * HOUR))
        return seen

    uninterrupted = run(None)
    assert len(uninterrupted) == 4 and uninterrupted[2][2] > 0.05 * 40_000.0 * 0.001  # interest collected
    assert run(5) == uninterrupted
    assert run(8) == uninterrupted
