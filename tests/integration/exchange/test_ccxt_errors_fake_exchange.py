"""Every failure the fake exchange can produce leaves CcxtExchange as the right runtime error, and the API key
and secret appear in no error message and no log line, not even ccxt's DEBUG wire log."""

from __future__ import annotations

import logging

import pytest
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path
from tests.fakes.fake_exchange_server import FAKE_API_KEY, FAKE_SECRET, VENUE_PATHS

from slsbot_runtime.domain.errors import (
    AuthenticationError,
    ExchangeUnavailable,
    InsufficientFunds,
    OrderRejected,
    RateLimited,
    TemporaryExchangeError,
)
from slsbot_runtime.domain.types import OrderRequest, Side

pytestmark = pytest.mark.integration

VENUE_IDS = sorted(VENUE_PATHS)


def buy(client_order_id: str, quantity: float = 0.01) -> OrderRequest:
    return OrderRequest(client_order_id, "BTC/USDT", Side.BUY, quantity)


@pytest.mark.parametrize("venue", VENUE_IDS)
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("http_5xx", ExchangeUnavailable),
        ("rate_limit", RateLimited),
        ("invalid_key", AuthenticationError),
        ("insufficient_balance", InsufficientFunds),
    ],
)
def test_each_failure_maps_to_its_runtime_error(venue, kind, expected, fake, open_exchange):
    exchange = open_exchange(venue, attempts=2)
    exchange.load_markets()
    fake.fail_next(kind, times=5, path=VENUE_PATHS[venue].create, method="POST")

    with pytest.raises(expected) as caught:
        exchange.place_order(buy("mapped"))

    assert type(caught.value) is expected
    assert fake.account.orders_by_client_id("mapped") == []
    retried = issubclass(expected, TemporaryExchangeError)
    assert len(fake.calls("POST", VENUE_PATHS[venue].create)) == (2 if retried else 1)


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_temporary_failures_are_retried_until_the_call_succeeds(venue, fake, open_exchange):
    exchange = open_exchange(venue, attempts=4)
    exchange.load_markets()
    fake.fail_next("http_5xx", times=2, path=VENUE_PATHS[venue].create, method="POST")

    order = exchange.place_order(buy("third-time"))

    assert order.filled_quantity == pytest.approx(0.01)
    assert len(fake.account.orders_by_client_id("third-time")) == 1
    delays = fake.clock.sleeps
    assert len(delays) == 2 and 0 < delays[0] <= 0.5 and delays[1] <= 1.0  # backoff with jitter


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_timeouts_that_never_end_leave_as_a_temporary_error(venue, fake, open_exchange):
    exchange = open_exchange(venue, attempts=2, timeout_ms=200)
    fake.fail_next("timeout", times=2, path="/", delay_s=0.5)

    with pytest.raises(TemporaryExchangeError):
        exchange.fetch_balances()


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_a_real_shortfall_is_insufficient_funds_and_nothing_is_booked(venue, fake, open_exchange):
    exchange = open_exchange(venue)
    usdt_before = fake.account.balances["USDT"]

    with pytest.raises(InsufficientFunds):
        exchange.place_order(buy("too-big", quantity=5.0))  # ~ 470k USDT of BTC

    assert fake.account.balances["USDT"] == usdt_before
    assert exchange.fetch_order("too-big", "BTC/USDT") is None


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_wrong_secret_is_an_authentication_error_that_names_neither_key_nor_secret(venue, fake, open_exchange):
    wrong_secret = test_secrets.CCXT_WRONG_SECRET
    exchange = open_exchange(venue, secret=wrong_secret)

    with pytest.raises(AuthenticationError) as caught:
        exchange.fetch_balances()

    message = str(caught.value)
    assert "fetch_balance" in message
    assert FAKE_API_KEY not in message and wrong_secret not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_bybit_echoes_the_key_in_its_signature_error_and_the_adapter_scrubs_it(fake, open_exchange):
    exchange = open_exchange("bybit", secret=test_secrets.CCXT_OTHER_WRONG_SECRET)

    with pytest.raises(AuthenticationError) as caught:
        exchange.fetch_balances()

    assert "origin_string" in str(caught.value)  # the echo is there, ...
    assert FAKE_API_KEY not in str(caught.value)  # ... without the key
    assert "***" in str(caught.value)


@pytest.mark.parametrize("venue", VENUE_IDS)
def test_no_log_line_and_no_repr_holds_a_credential(venue, fake, open_exchange, caplog):
    caplog.set_level(logging.DEBUG)
    exchange = open_exchange(venue, attempts=2)
    fake.fail_next("http_5xx", times=1, path=VENUE_PATHS[venue].create, method="POST")
    exchange.place_order(buy("logged"))
    exchange.fetch_fills("BTC/USDT")
    with pytest.raises(OrderRejected):
        exchange.place_order(OrderRequest("bad id with spaces", "BTC/USDT", Side.BUY, 0.01))

    wire = [r for r in caplog.records if r.name == "slsbot_runtime.exchange.wire"]
    assert wire, "ccxt's wire log (request headers included) was captured"
    assert any("***" in r.getMessage() for r in wire)
    text = caplog.text + repr(exchange) + str(exchange)
    assert FAKE_API_KEY not in text
    assert FAKE_SECRET not in text
