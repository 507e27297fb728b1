"""The paper exchange's fill rules, balances, idempotency and the round trip of its book."""

from __future__ import annotations

import pytest

from slsbot.api import PaperSettings
from slsbot_runtime.domain.errors import OrderNotFound, OrderRejected
from slsbot_runtime.domain.types import Candle, OrderRequest, OrderStatus, OrderType, Side
from slsbot_runtime.exchange.paper import PaperExchange

HOUR = 3_600_000
SYMBOL = "BTC/USDT"


def settings(**changes: float) -> PaperSettings:
    base = {
        "starting_balance": 10_000.0,
        "fee_rate": 0.001,
        "spread_bps": 2.0,
        "slippage_bps": 3.0,
        "latency_ms": 0,
        "max_volume_participation": 1.0,
    }
    base.update(changes)
    return PaperSettings(**base)


def candle(
    hour: int,
    open_: float,
    *,
    high: float | None = None,
    low: float | None = None,
    volume: float = 1e9,
    close: float | None = None,
) -> Candle:
    close = open_ if close is None else close
    return Candle(
        SYMBOL, hour * HOUR, open_, high or max(open_, close) + 1, low or min(open_, close) - 1, close, volume
    )


def request(cid: str, side: Side, quantity: float, *, decided_hour: int, **extra: object) -> OrderRequest:
    # decided at the close of candle ``decided_hour``
    return OrderRequest(cid, SYMBOL, side, quantity, created_ts=(decided_hour + 1) * HOUR, **extra)  # type: ignore[arg-type]


def test_market_order_fills_at_the_next_open_with_spread_slippage_and_fee() -> None:
    paper = PaperExchange(settings(), interval_ms=HOUR)
    assert paper.on_candle(candle(0, 100.0)) == []
    order = paper.place_order(request("a", Side.BUY, 2.0, decided_hour=0))
    assert order.status == OrderStatus.OPEN
    [fill] = paper.on_candle(candle(1, 110.0, close=120.0))
    adverse = (2.0 / 2 + 3.0) / 10_000  # half the spread plus the slippage
    assert 110.0 * (1 + adverse) == pytest.approx(110.044)
    assert fill.price == 110.05  # up to BTC/USDT's 0.01 tick: rounded against the buyer
    assert fill.ts == HOUR
    assert fill.fee == pytest.approx(2.0 * fill.price * 0.001)
    assert paper.balance("BTC") == 2.0
    assert paper.balance("USDT") == pytest.approx(10_000 - 2.0 * fill.price * 1.001)
    [sell] = paper.on_candle(candle(2, 130.0)) or [None]  # nothing resting: no fill
    assert sell is None
    paper.place_order(request("b", Side.SELL, 2.0, decided_hour=2))
    [exit_fill] = paper.on_candle(candle(3, 140.0))
    assert exit_fill.price == 139.94  # 140 * (1 - adverse) = 139.944, down to the tick against the seller
    assert paper.balance("BTC") == 0.0


def test_an_order_never_fills_on_the_candle_it_was_decided_on() -> None:
    paper = PaperExchange(settings(), interval_ms=HOUR)
    paper.place_order(request("a", Side.BUY, 1.0, decided_hour=5))  # before the exchange saw any candle
    assert paper.on_candle(candle(5, 100.0)) == []
    assert len(paper.on_candle(candle(6, 100.0))) == 1


def test_latency_waits_one_more_candle() -> None:
    paper = PaperExchange(settings(latency_ms=250), interval_ms=HOUR)
    paper.on_candle(candle(0, 100.0))
    paper.place_order(request("a", Side.BUY, 1.0, decided_hour=0))  # submitted 0 ms before candle 1 opens
    assert paper.on_candle(candle(1, 100.0)) == []
    [fill] = paper.on_candle(candle(2, 105.0))
    assert fill.ts == 2 * HOUR


def test_partial_fills_against_volume_carry_over() -> None:
    paper = PaperExchange(settings(max_volume_participation=0.1), interval_ms=HOUR)
    paper.on_candle(candle(0, 100.0))
    paper.place_order(request("a", Side.BUY, 5.0, decided_hour=0))
    first = paper.on_candle(candle(1, 100.0, volume=20.0))
    assert [f.quantity for f in first] == [2.0]
    assert paper.fetch_order("a", SYMBOL).status == OrderStatus.PARTIALLY_FILLED
    second = paper.on_candle(candle(2, 101.0, volume=20.0))
    third = paper.on_candle(candle(3, 102.0, volume=20.0))
    assert [f.quantity for f in second + third] == [2.0, 1.0]
    assert [f.fill_id for f in first + second + third] == ["a-f1", "a-f2", "a-f3"]
    order = paper.fetch_order("a", SYMBOL)
    assert order.status == OrderStatus.FILLED and order.filled_quantity == pytest.approx(5.0)
    assert order.average_price == pytest.approx((2 * first[0].price + 2 * second[0].price + third[0].price) / 5)


def test_limit_orders_fill_only_when_traded_through() -> None:
    paper = PaperExchange(settings(), interval_ms=HOUR)
    paper.on_candle(candle(0, 100.0))
    paper.place_order(request("buy", Side.BUY, 1.0, decided_hour=0, type=OrderType.LIMIT, limit_price=95.0))
    assert paper.on_candle(candle(1, 100.0, low=95.0)) == []  # touched, not through
    [fill] = paper.on_candle(candle(2, 100.0, low=94.0))
    assert fill.price == 95.0 and fill.fee == pytest.approx(0.095)
    paper.place_order(request("sell", Side.SELL, 1.0, decided_hour=2, type=OrderType.LIMIT, limit_price=99.0))
    [gapped] = paper.on_candle(candle(3, 101.0))  # opens above the limit: fills at the better open
    assert gapped.price == 101.0


def test_cancel_and_idempotent_place() -> None:
    paper = PaperExchange(settings(), interval_ms=HOUR)
    first = paper.place_order(request("a", Side.BUY, 1.0, decided_hour=0))
    again = paper.place_order(request("a", Side.BUY, 99.0, decided_hour=3))
    assert again == first and len(paper.fetch_open_orders()) == 1
    canceled = paper.cancel_order("a", SYMBOL)
    assert canceled.status == OrderStatus.CANCELED
    assert paper.cancel_order("a", SYMBOL).status == OrderStatus.CANCELED  # canceling twice is harmless
    assert paper.on_candle(candle(1, 100.0)) == []
    with pytest.raises(OrderNotFound):
        paper.cancel_order("nope", SYMBOL)
    assert paper.fetch_order("nope", SYMBOL) is None


def test_bad_requests_are_rejected() -> None:
    paper = PaperExchange(settings(), interval_ms=HOUR)
    with pytest.raises(OrderRejected, match="quantity must be positive"):
        paper.place_order(request("a", Side.BUY, 0.0, decided_hour=0))
    with pytest.raises(OrderRejected, match="needs a positive limit_price"):
        paper.place_order(request("b", Side.BUY, 1.0, decided_hour=0, type=OrderType.LIMIT))
    with pytest.raises(OrderRejected, match="quoted in EUR"):
        paper.place_order(OrderRequest("c", "BTC/EUR", Side.BUY, 1.0))
    assert paper.fetch_open_orders() == []


def test_balances_cut_and_reject() -> None:
    paper = PaperExchange(settings(starting_balance=1_000.0, spread_bps=0, slippage_bps=0), interval_ms=HOUR)
    paper.on_candle(candle(0, 100.0))
    paper.place_order(request("big", Side.BUY, 50.0, decided_hour=0))
    [fill] = paper.on_candle(candle(1, 100.0))
    assert pytest.approx(9.99000999) == 1_000.0 / 100.1  # what 1000 USDT pays for, fee included...
    assert fill.quantity == 9.99  # ...in whole steps of 0.00001 BTC
    assert paper.fetch_order("big", SYMBOL).status == OrderStatus.CANCELED
    assert 0 <= paper.balance("USDT") < 0.01
    paper.place_order(request("none", Side.BUY, 1.0, decided_hour=1))
    assert paper.on_candle(candle(2, 100.0)) == []
    assert paper.fetch_order("none", SYMBOL).status == OrderStatus.REJECTED
    paper.place_order(request("oversell", Side.SELL, 100.0, decided_hour=2))
    [sold] = paper.on_candle(candle(3, 100.0))
    assert sold.quantity == pytest.approx(fill.quantity)
    balances = paper.fetch_balances()
    assert balances["BTC"].total == pytest.approx(0.0, abs=1e-12)


def test_reserved_balances_show_in_free() -> None:
    paper = PaperExchange(settings(spread_bps=0, slippage_bps=0), interval_ms=HOUR)
    paper.on_candle(candle(0, 100.0))
    paper.place_order(request("a", Side.BUY, 3.0, decided_hour=0))
    paper.on_candle(candle(1, 100.0))
    paper.place_order(request("b", Side.SELL, 1.0, decided_hour=1, type=OrderType.LIMIT, limit_price=500.0))
    btc = paper.fetch_balances()["BTC"]
    assert (btc.total, btc.free) == (3.0, 2.0)


def test_book_round_trip_continues_identically() -> None:
    """Store the drained changes the way the state store does (upserts), restore into a new exchange mid-run:
    the fills that follow are the same as without the restore."""

    def run(restore_at: int | None) -> list[tuple[str, float, float]]:
        paper = PaperExchange(settings(max_volume_participation=0.1), interval_ms=HOUR)
        stored_orders: dict = {}
        stored_eligible: dict = {}
        stored_fills: list = []
        stored_balances: dict = {}
        fills = []
        for hour in range(12):
            changes = paper.drain_changes()
            stored_orders.update({o.client_order_id: o for o in changes.orders})
            stored_eligible.update(changes.eligible_ts)
            stored_fills += changes.fills
            stored_balances.update({b.currency: b for b in changes.balances})
            if restore_at == hour:
                last_close = paper.last_closes()
                paper = PaperExchange(settings(max_volume_participation=0.1), interval_ms=HOUR)
                paper.restore(
                    orders=stored_orders.values(),
                    eligible_ts=stored_eligible,
                    fills=stored_fills,
                    balances=stored_balances.values(),
                    clock_ms=changes.clock_ms,
                    last_close=last_close,
                )
            fills += [(f.fill_id, f.quantity, f.price) for f in paper.on_candle(candle(hour, 100.0 + hour, volume=15))]
            if hour in (0, 4):
                paper.place_order(request(f"o{hour}", Side.BUY, 4.0, decided_hour=hour))
            if hour == 8:
                paper.place_order(request("s", Side.SELL, 5.0, decided_hour=hour))
        return fills

    uninterrupted = run(None)
    assert len(uninterrupted) > 5
    assert run(3) == uninterrupted
    assert run(6) == uninterrupted


def test_settle_now_fills_market_orders_at_the_last_close() -> None:
    paper = PaperExchange(settings(spread_bps=0, slippage_bps=0), interval_ms=HOUR)
    paper.on_candle(candle(0, 100.0, close=104.0))
    paper.place_order(request("a", Side.BUY, 1.0, decided_hour=0))
    [fill] = paper.settle_now()
    assert fill.price == 104.0
    assert paper.fetch_order("a", SYMBOL).status == OrderStatus.FILLED
