"""The fault proxy in front of the fake exchange, and the fake's late and partial fills, driven through the
runtime's real ccxt adapter: each fault kind on an order creation leaves exactly one order at the exchange, the
seed fixes the schedule, the rate is the rate asked for, a stalled feed repeats or holds, and fills that come
late or in parts are each reported once."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.fakes.fake_exchange_server import VENUE_PATHS, FakeExchangeServer, FillPlan
from tests.fakes.fault_proxy import FaultKind, FaultPlan, FaultProxy, StallMode

from slsbot_runtime.domain.types import OrderRequest, OrderStatus, Side

pytestmark = pytest.mark.integration

VENUE_IDS = sorted(VENUE_PATHS)
HOLD_S = 0.8  # the proxy's "timeout": past the adapter's 300 ms client timeout in these tests


@pytest.fixture
def proxy(fake: FakeExchangeServer) -> Iterator[FaultProxy]:
    with FaultProxy(fake.url, FaultPlan(rate=0.0, hold_s=HOLD_S)) as started:
        yield started


def market_buy(client_order_id: str, quantity: float = 0.01) -> OrderRequest:
    return OrderRequest(client_order_id, "BTC/USDT", Side.BUY, quantity)


@pytest.mark.parametrize("venue", VENUE_IDS)
@pytest.mark.parametrize(
    "kind",
    [
        FaultKind.DROP_AFTER,
        FaultKind.TIMEOUT_AFTER,
        FaultKind.DROP_BEFORE,
        FaultKind.TIMEOUT,
        FaultKind.HTTP_5XX,
        FaultKind.RATE_LIMIT,
    ],
)
def test_a_fault_on_order_creation_leaves_exactly_one_order_at_the_exchange(venue, kind, fake, proxy, open_exchange):
    exchange = open_exchange(venue, timeout_ms=300, endpoint=proxy.url)
    create = VENUE_PATHS[venue].create
    proxy.inject_next(kind, path=create, method="POST")

    order = exchange.place_order(market_buy(f"f-{kind}"))

    assert proxy.injected[kind] == 1
    assert [f.client_order_id for f in proxy.faults] == [f"f-{kind}"]
    assert order.status is OrderStatus.FILLED
    assert len(fake.account.orders_by_client_id(f"f-{kind}")) == 1
    # Either the faulted request reached the exchange and the retry found the order by its id, or it did not and
    # the retry was the one POST that did.
    assert len(fake.calls("POST", create)) == 1
    assert len(fake.account.trades) == 1


def test_the_rate_holds_and_one_seed_gives_one_schedule(fake):
    def schedule(seed: int) -> tuple[list[tuple[int, str]], dict[str, int]]:
        plan = FaultPlan(rate=0.2, seed=seed, weights={FaultKind.HTTP_5XX: 1.0, FaultKind.RATE_LIMIT: 1.0})
        with FaultProxy(fake.url, plan) as proxy, httpx.Client(trust_env=False) as client:
            statuses = [client.get(proxy.url + "/api/v3/time").status_code for _ in range(1000)]
        failed = sum(status != 200 for status in statuses)
        assert failed == len(proxy.faults)
        return [(f.seq, str(f.kind)) for f in proxy.faults], proxy.injected

    first, counts = schedule(11)
    again, _ = schedule(11)
    other, _ = schedule(12)
    assert first == again
    assert first != other
    # 1,000 draws at p = 0.2: the count is within 4.5 standard deviations (sd = 12.6) of 200
    assert 143 <= len(first) <= 257, len(first)
    assert counts[FaultKind.HTTP_5XX] > 50 and counts[FaultKind.RATE_LIMIT] > 50
    assert counts[FaultKind.TIMEOUT] == 0


def test_a_rate_limit_answers_429_with_retry_after_in_the_venues_shape(fake):
    plan = FaultPlan(rate=1.0, weights={FaultKind.RATE_LIMIT: 1.0}, retry_after_s=3)
    with FaultProxy(fake.url, plan) as proxy:
        binance = httpx.get(proxy.url + "/api/v3/time", trust_env=False)
        bybit = httpx.get(proxy.url + "/v5/market/time", trust_env=False)
    assert binance.status_code == bybit.status_code == 429
    assert binance.headers["Retry-After"] == "3"
    assert binance.json()["code"] == -1003 and bybit.json()["retCode"] == 10006


def test_a_stale_feed_repeats_the_last_answer_and_a_held_feed_answers_when_it_ends(fake, proxy):
    klines = proxy.url + "/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=3"
    before = httpx.get(klines, trust_env=False).json()
    fake.clock.advance(2 * 3600)

    proxy.stall_feed(StallMode.STALE)
    stale = httpx.get(klines, trust_env=False).json()
    proxy.stall_feed(StallMode.HELD)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(klines, trust_env=False, timeout=0.3)
    proxy.end_stall()
    fresh = httpx.get(klines, trust_env=False).json()

    assert stale == before
    assert fresh[-1][0] == before[-1][0] + 2 * 3_600_000
    assert proxy.injected[FaultKind.FEED_STALE] == 1 and proxy.injected[FaultKind.FEED_HELD] == 1


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_late_and_partial_fills_are_reported_once_each_as_the_clock_moves(venue, fake, open_exchange):
    exchange = open_exchange(venue)
    fake.account.fill_plan = FillPlan(parts=3, delay_ms=60_000, interval_ms=60_000)
    btc_before = fake.account.balances["BTC"]

    placed = exchange.place_order(market_buy("late-1", 0.03))
    assert placed.status is OrderStatus.OPEN and placed.filled_quantity == 0.0
    assert exchange.fetch_fills("BTC/USDT") == []

    seen: list[list[str]] = []
    for _ in range(3):
        fake.clock.advance(60)
        seen.append([f.fill_id for f in exchange.fetch_fills("BTC/USDT")])
        order = exchange.fetch_order("late-1", "BTC/USDT")
        assert order is not None
        expected = OrderStatus.FILLED if len(seen) == 3 else OrderStatus.PARTIALLY_FILLED
        assert order.status is expected
        assert order.filled_quantity == pytest.approx(0.01 * len(seen))

    assert [len(ids) for ids in seen] == [1, 2, 3]
    assert len(set(seen[-1])) == 3
    assert fake.account.balances["BTC"] == pytest.approx(btc_before + 0.03 * 0.999)
    assert fake.account.locked.get("USDT", 0.0) == pytest.approx(0.0, abs=1e-6)


def test_a_canceled_partial_order_releases_only_what_is_left(fake, open_exchange):
    exchange = open_exchange("binance")
    fake.account.fill_plan = FillPlan(parts=2, delay_ms=0, interval_ms=3_600_000)
    usdt_before = fake.account.balances["USDT"]

    placed = exchange.place_order(market_buy("half-1", 0.02))
    canceled = exchange.cancel_order("half-1", "BTC/USDT")

    assert placed.filled_quantity == pytest.approx(0.01)
    assert canceled.status is OrderStatus.CANCELED
    assert fake.account.locked.get("USDT", 0.0) == pytest.approx(0.0, abs=1e-6)
    fake.clock.advance(2 * 3600)
    assert exchange.fetch_order("half-1", "BTC/USDT").filled_quantity == pytest.approx(0.01)
    assert fake.account.balances["USDT"] < usdt_before
    assert len(fake.account.trades) == 1  # the second part, due an hour later, never came


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_a_429_is_retried_no_sooner_than_its_retry_after(venue, fake, clock, open_exchange):
    plan = FaultPlan(rate=0.0, retry_after_s=7)
    with FaultProxy(fake.url, plan) as proxy:
        exchange = open_exchange(venue, endpoint=proxy.url)
        exchange.load_markets()
        proxy.inject_next(FaultKind.RATE_LIMIT, path=VENUE_PATHS[venue].create, method="POST")

        order = exchange.place_order(market_buy("slow-down"))

    assert order.status is OrderStatus.FILLED
    assert proxy.injected[FaultKind.RATE_LIMIT] == 1
    assert clock.sleeps and max(clock.sleeps) >= 7.0, f"retried after {clock.sleeps} s; the exchange asked for 7 s"
    assert len(fake.account.orders_by_client_id("slow-down")) == 1
