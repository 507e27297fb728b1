"""CcxtExchange against the fake exchange server, through ccxt's real HTTP client: orders, idempotent client
ids, cancels, fills and balances, for Binance and Bybit."""

from __future__ import annotations

import pytest
from tests.fakes.fake_exchange_server import VENUE_PATHS

from slsbot_runtime.domain.errors import OrderNotFound, OrderRejected
from slsbot_runtime.domain.types import OrderRequest, OrderStatus, OrderType, Side

pytestmark = pytest.mark.integration

VENUE_IDS = sorted(VENUE_PATHS)


def market_buy(client_order_id: str, quantity: float = 0.01) -> OrderRequest:
    return OrderRequest(client_order_id, "BTC/USDT", Side.BUY, quantity)


def limit_buy(client_order_id: str, price: float = 50_000.0) -> OrderRequest:
    return OrderRequest(client_order_id, "BTC/USDT", Side.BUY, 0.01, OrderType.LIMIT, limit_price=price)


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_market_order_is_filled_and_moves_the_balances(venue, fake, open_exchange):
    exchange = open_exchange(venue)
    before = exchange.fetch_balances()

    order = exchange.place_order(market_buy("buy-1"))

    assert order.status is OrderStatus.FILLED
    assert order.client_order_id == "buy-1"
    assert order.filled_quantity == pytest.approx(0.01)
    last_close = fake.account.klines.price("BTCUSDT", fake.clock.now_ms())
    assert order.average_price == pytest.approx(last_close)
    after = exchange.fetch_balances()
    assert after["USDT"].total == pytest.approx(before["USDT"].total - 0.01 * last_close)
    assert after["BTC"].total == pytest.approx(before["BTC"].total + 0.01 * 0.999)  # fee taken in BTC
    fills = exchange.fetch_fills("BTC/USDT")
    assert [(f.client_order_id, f.quantity, f.fee_currency) for f in fills] == [("buy-1", 0.01, "BTC")]


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_resending_a_client_id_returns_the_same_order_without_a_second_one(venue, fake, open_exchange):
    exchange = open_exchange(venue)
    first = exchange.place_order(market_buy("same-id"))

    again = exchange.place_order(market_buy("same-id"))

    assert again.exchange_order_id == first.exchange_order_id
    assert again.status is OrderStatus.FILLED
    assert len(fake.account.orders_by_client_id("same-id")) == 1
    assert len(fake.calls("POST", VENUE_PATHS[venue].create)) == 1


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_timeout_after_the_exchange_took_the_order_does_not_duplicate_it(venue, fake, open_exchange):
    exchange = open_exchange(venue, timeout_ms=300)
    fake.fail_next("timeout_after_processing", path=VENUE_PATHS[venue].create, method="POST", delay_s=0.8)

    order = exchange.place_order(market_buy("lost-answer"))

    assert order.status is OrderStatus.FILLED
    assert len(fake.account.orders_by_client_id("lost-answer")) == 1
    assert len(fake.calls("POST", VENUE_PATHS[venue].create)) == 1  # found by its id, not resent
    assert fake.clock.sleeps, "the retry backed off before looking the order up"


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_timeout_before_the_exchange_took_the_order_resends_it_once(venue, fake, open_exchange):
    exchange = open_exchange(venue, timeout_ms=300)
    fake.fail_next("timeout", path=VENUE_PATHS[venue].create, method="POST", delay_s=0.8)

    order = exchange.place_order(market_buy("never-arrived"))

    assert order.status is OrderStatus.FILLED
    assert len(fake.account.orders_by_client_id("never-arrived")) == 1
    assert len(fake.calls("POST", VENUE_PATHS[venue].create)) == 2


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_duplicate_rejection_resolves_to_the_existing_order(venue, fake, open_exchange):
    exchange = open_exchange(venue)
    resting = exchange.place_order(limit_buy("resting"))
    assert resting.status is OrderStatus.OPEN
    # The lookup before sending misses the order (a lagging replica), so the exchange sees a duplicate.
    fake.fail_next("order_unknown", times=2, path=VENUE_PATHS[venue].query, method="GET")

    again = exchange.place_order(limit_buy("resting"))

    assert again.exchange_order_id == resting.exchange_order_id
    assert len(fake.account.orders_by_client_id("resting")) == 1
    assert len(fake.calls("POST", VENUE_PATHS[venue].create)) == 2  # the second was refused by the exchange


def test_binance_accepts_a_reused_client_id_once_the_first_order_closed_so_the_adapter_must_look_first(
    fake, open_exchange
):
    exchange = open_exchange("binance")
    exchange.place_order(market_buy("closed-id"))
    raw_client = exchange._client

    raw_client.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "closed-id"})

    assert len(fake.account.orders_by_client_id("closed-id")) == 2  # what place_order's lookup prevents


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_cancel_by_client_id_and_cancel_of_a_filled_order(venue, fake, open_exchange):
    exchange = open_exchange(venue)
    exchange.place_order(limit_buy("to-cancel"))
    assert [o.client_order_id for o in exchange.fetch_open_orders("BTC/USDT")] == ["to-cancel"]

    canceled = exchange.cancel_order("to-cancel", "BTC/USDT")

    assert (canceled.client_order_id, canceled.status) == ("to-cancel", OrderStatus.CANCELED)
    assert exchange.fetch_open_orders("BTC/USDT") == []
    assert fake.account.free("USDT") == pytest.approx(fake.account.balances["USDT"])  # funds released
    exchange.place_order(market_buy("done"))
    assert exchange.cancel_order("done", "BTC/USDT").status is OrderStatus.FILLED
    with pytest.raises(OrderNotFound):
        exchange.cancel_order("never-placed", "BTC/USDT")


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_resting_limit_order_fills_when_a_later_candle_reaches_its_price(venue, fake, open_exchange):
    exchange = open_exchange(venue)
    price = fake.account.klines.price("BTCUSDT", fake.clock.now_ms())
    exchange.place_order(limit_buy("dip", price=round(price * 0.995, 2)))

    fake.clock.advance(48 * 3600)

    order = exchange.fetch_order("dip", "BTC/USDT")
    assert order is not None and order.status is OrderStatus.FILLED
    assert [f.client_order_id for f in exchange.fetch_fills("BTC/USDT")] == ["dip"]
    assert exchange.fetch_order("unknown-id", "BTC/USDT") is None


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_a_fresh_adapter_maps_every_fill_to_its_client_id_across_pages(venue, fake, open_exchange):
    page = {"binance": 1000, "bybit": 100}[venue]
    for i in range(page + 5):  # straight into the fake account: more fills than one page holds
        fake.account.place("BTCUSDT", "BUY", "MARKET", 0.0001, None, f"bulk-{i}")
        fake.clock.advance(1)
    exchange = open_exchange(venue)  # knows none of these orders yet

    fills = exchange.fetch_fills("BTC/USDT", since_ts=fake.account.trades[0].ts)

    assert [f.client_order_id for f in fills] == [f"bulk-{i}" for i in range(page + 5)]
    assert len({f.fill_id for f in fills}) == page + 5


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_fills_after_days_without_trading_are_found(venue, fake, open_exchange):
    exchange = open_exchange(venue)
    first = exchange.place_order(market_buy("before-quiet"))
    fake.clock.advance(3 * 24 * 3600)  # Binance answers myTrades by 24-hour windows
    exchange.place_order(market_buy("after-quiet"))

    fills = exchange.fetch_fills("BTC/USDT", since_ts=first.created_ts + 1)

    assert [f.client_order_id for f in fills] == ["after-quiet"]


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_the_markets_rules_come_from_the_venue_and_an_order_ccxt_would_cut_is_never_sent(venue, fake, open_exchange):
    exchange = open_exchange(venue)
    rules = exchange.market_rules("BTC/USDT")
    assert rules is not None  # the fake's filters: LOT_SIZE / lotSizeFilter, PRICE_FILTER / priceFilter, NOTIONAL
    assert (rules.amount_step, rules.price_tick, rules.min_amount, rules.min_notional) == (0.00001, 1e-6, 0.00001, 5)
    with pytest.raises(OrderRejected, match=r"quantity: 0\.0123456 is not a whole number .* round it down to 0\.01234"):
        exchange.place_order(market_buy("off-step", quantity=0.0123456))
    with pytest.raises(OrderRejected, match=r"quantity: rounds to 0 at BTC/USDT's amount step"):
        exchange.place_order(market_buy("dust", quantity=1e-9))
    assert fake.calls("POST", VENUE_PATHS[venue].create) == []
    assert exchange.place_order(market_buy("on-step", quantity=0.01234)).status is OrderStatus.FILLED


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_open_orders_leave_out_an_order_placed_without_a_client_id(venue, fake, open_exchange):
    """An order placed by hand on a venue that makes up no client id for it (Bybit's empty ``orderLinkId``) cannot be
    the runtime's: the open orders the restart reconcile reads for orders to adopt leave it out instead of failing."""
    exchange = open_exchange(venue)
    price = fake.account.klines.price("BTCUSDT", fake.clock.now_ms())
    exchange.place_order(limit_buy("mine", price=round(price * 0.9, 2)))
    fake.account.place("BTCUSDT", "BUY", "LIMIT", 0.01, round(price * 0.8, 2), "")  # by hand, no client id

    assert [o.client_order_id for o in exchange.fetch_open_orders("BTC/USDT")] == ["mine"]


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_fills_leave_out_the_trades_of_an_order_placed_without_a_client_id(venue, fake, open_exchange):
    """A trade made by hand on the same account, its order without a client id, cannot be the runtime's: the fills
    leave it out instead of failing (the restart reconcile reads every traded symbol's fills)."""
    exchange = open_exchange(venue)
    exchange.place_order(market_buy("mine"))
    fake.account.place("BTCUSDT", "BUY", "MARKET", 0.02, None, "")  # by hand, no client id

    assert [(f.client_order_id, f.quantity) for f in exchange.fetch_fills("BTC/USDT")] == [("mine", 0.01)]
    assert [f.client_order_id for f in open_exchange(venue).fetch_fills("BTC/USDT")] == ["mine"]  # a fresh adapter
