"""Building the ccxt adapters without any network: the per-exchange options, testnet, the endpoint
redirect, and requests refused before anything is sent."""

from __future__ import annotations

import pytest

from slsbot_runtime.domain.errors import ConfigError, OrderRejected
from slsbot_runtime.domain.types import OrderRequest, OrderType, Side
from slsbot_runtime.exchange.ccxt_exchange import redirect_urls
from slsbot_runtime.exchange.ccxt_venues import CCXT_EXCHANGES, BinanceExchange, BybitExchange, open_ccxt_exchange
from slsbot_runtime.exchange.credentials import ExchangeCredentials

CREDENTIALS = ExchangeCredentials("unitKEY0123456789abcdef", "unitSECRET0123456789abcdef")


def test_the_supported_exchanges_state_what_they_support():
    assert set(CCXT_EXCHANGES) == {"binance", "bybit"}
    for exchange_class in CCXT_EXCHANGES.values():
        assert exchange_class.features["fetch_order_by_client_id"] is True
        assert exchange_class.duplicate_order_markers
    assert BybitExchange.create_returns_order_state is False
    assert BinanceExchange.create_returns_order_state is True


def test_an_unknown_exchange_names_the_field_and_the_choices():
    with pytest.raises(ConfigError, match=r"account.exchange: 'kraken' is not supported; use one of binance, bybit"):
        open_ccxt_exchange("kraken", CREDENTIALS, testnet=False)


@pytest.mark.parametrize("exchange_id", sorted(CCXT_EXCHANGES))
def test_options_are_set_per_client_without_touching_the_class_defaults(exchange_id):
    exchange = open_ccxt_exchange(exchange_id, CREDENTIALS, testnet=False)
    client = exchange._client

    assert client.options["fetchMarkets"]["types"] == ["spot"]
    assert client.has["fetchCurrencies"] is False
    client.options["fetchMarkets"]["types"].append("linear")
    assert CCXT_EXCHANGES[exchange_id].ccxt_options["fetchMarkets"]["types"] == ["spot"]


def test_testnet_switches_ccxt_to_the_sandbox_urls():
    live = open_ccxt_exchange("binance", CREDENTIALS, testnet=False)
    test = open_ccxt_exchange("binance", CREDENTIALS, testnet=True)

    assert not live.sandbox and live.api_host == "api.binance.com"
    assert test.sandbox and test.api_host == "testnet.binance.vision"


def test_the_endpoint_moves_every_url_keeping_its_path():
    urls = {
        "public": "https://api.binance.com/api/v3",
        "sapi": "https://api.binance.com/sapi/v1",
        "v5": "https://api.{hostname}",
        "nested": {"spot": "wss://stream.binance.com:9443/ws"},
    }

    moved = redirect_urls(urls, "http://127.0.0.1:8123/")

    assert moved == {
        "public": "http://127.0.0.1:8123/api/v3",
        "sapi": "http://127.0.0.1:8123/sapi/v1",
        "v5": "http://127.0.0.1:8123",
        "nested": {"spot": "http://127.0.0.1:8123/ws"},
    }


def test_repr_shows_neither_key_nor_secret():
    exchange = open_ccxt_exchange("bybit", CREDENTIALS, testnet=True)
    assert CREDENTIALS.api_key not in repr(exchange) and CREDENTIALS.secret not in repr(exchange)
    assert repr(exchange) == "BybitExchange(sandbox=True, api='api-testnet.bybit.com')"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (OrderRequest("", "BTC/USDT", Side.BUY, 1.0), "client_order_id"),
        (OrderRequest("has space", "BTC/USDT", Side.BUY, 1.0), "client_order_id"),
        (OrderRequest("x" * 37, "BTC/USDT", Side.BUY, 1.0), "client_order_id"),
        (OrderRequest("ok-1", "BTC/USDT", Side.BUY, 0.0), "quantity"),
        (OrderRequest("ok-1", "BTC/USDT", Side.BUY, float("nan")), "quantity"),
        (OrderRequest("ok-1", "BTC/USDT", Side.BUY, 1.0, OrderType.LIMIT), "limit_price"),
    ],
)
def test_a_bad_request_is_refused_before_anything_is_sent(request_, field):
    # The endpoint is a closed port: any attempt to send would be a network error, not OrderRejected.
    exchange = open_ccxt_exchange("binance", CREDENTIALS, testnet=False, endpoint="http://127.0.0.1:9", timeout_ms=200)
    with pytest.raises(OrderRejected, match=f"^{field}: "):
        exchange.place_order(request_)


@pytest.mark.parametrize("exchange_id", sorted(CCXT_EXCHANGES))
def test_signed_requests_use_the_exchanges_clock_and_a_recv_window(exchange_id, monkeypatch):
    """ccxt measures the offset to the exchange's time when the markets load (``adjustForTimeDifference``) and
    signs with it: a host clock 7 s behind the exchange's still signs with the exchange's time."""
    exchange = open_ccxt_exchange(exchange_id, CREDENTIALS, testnet=True)
    client = exchange._client
    assert client.options["adjustForTimeDifference"] is True
    assert client.options["recvWindow"] == 10_000
    local = 1_700_000_000_000
    monkeypatch.setattr(client, "milliseconds", lambda: local)
    monkeypatch.setattr(client, "fetch_time", lambda params=None: local + 7_000)
    client.load_time_difference()
    assert client.nonce() == local + 7_000


@pytest.mark.parametrize("exchange_id", sorted(CCXT_EXCHANGES))
def test_a_key_is_switched_on_the_same_client_keeping_its_time_offset_and_scrubbing_both_keys(exchange_id):
    old = ExchangeCredentials("oldKey0123456789abcdef", "oldSecret0123456789abcdef")
    new = ExchangeCredentials("newKey0123456789abcdef", "newSecret0123456789abcdef", password="newPass")
    exchange = open_ccxt_exchange(exchange_id, old, testnet=False)
    client = exchange._client
    client.options["timeDifference"] = 1234  # measured against the exchange's clock before the switch
    client.options["hasAlreadyAuthenticatedSuccessfully"] = True  # the old key had worked

    exchange.use_credentials(new)

    assert exchange._client is client
    assert (client.apiKey, client.secret, client.password) == (new.api_key, new.secret, "newPass")
    assert client.options["timeDifference"] == 1234
    assert client.options["hasAlreadyAuthenticatedSuccessfully"] is False  # the new key has not worked yet
    assert set(old.values) | set(new.values) <= set(exchange._secrets)
    assert new.secret not in repr(exchange) and new.api_key not in repr(exchange)
