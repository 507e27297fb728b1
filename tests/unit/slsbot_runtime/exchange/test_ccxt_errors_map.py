"""ccxt exceptions become the runtime's tree at the boundary, with credentials scrubbed from every message
and log line."""

from __future__ import annotations

import logging

import ccxt
import pytest

from slsbot_runtime.domain import errors
from slsbot_runtime.exchange.errors_map import (
    ScrubbingLogger,
    ccxt_boundary,
    map_ccxt_error,
    runtime_error_class,
    scrub,
)

KEY = "k3yVALUEvisible0123456789"
SECRET = "s3cretVALUEvisible0123456789"


@pytest.mark.parametrize(
    ("ccxt_error", "runtime_error"),
    [
        (ccxt.RequestTimeout, errors.TemporaryExchangeError),
        (ccxt.NetworkError, errors.TemporaryExchangeError),
        (ccxt.InvalidNonce, errors.TemporaryExchangeError),
        (ccxt.DDoSProtection, errors.RateLimited),
        (ccxt.RateLimitExceeded, errors.RateLimited),
        (ccxt.ExchangeNotAvailable, errors.ExchangeUnavailable),
        (ccxt.OnMaintenance, errors.ExchangeUnavailable),
        (ccxt.AuthenticationError, errors.AuthenticationError),
        (ccxt.PermissionDenied, errors.AuthenticationError),
        (ccxt.InsufficientFunds, errors.InsufficientFunds),
        (ccxt.InvalidOrder, errors.OrderRejected),
        (ccxt.DuplicateOrderId, errors.OrderRejected),
        (ccxt.OrderNotFound, errors.OrderNotFound),
        (ccxt.BadSymbol, errors.ExchangeError),
        (ccxt.ExchangeError, errors.ExchangeError),
        (ccxt.NullResponse, errors.ExchangeError),
        (ValueError, errors.ExchangeError),
    ],
)
def test_each_ccxt_error_maps_to_its_runtime_class(ccxt_error, runtime_error):
    assert runtime_error_class(ccxt_error("boom")) is runtime_error
    mapped = map_ccxt_error(ccxt_error("boom"), operation="binance create_order")
    assert type(mapped) is runtime_error
    assert str(mapped).startswith("binance create_order failed: boom")
    assert ccxt_error.__name__ in str(mapped)


def test_temporary_and_permanent_branches_are_what_the_retry_helper_sees():
    assert isinstance(map_ccxt_error(ccxt.RequestTimeout("t"), operation="x"), errors.TemporaryExchangeError)
    assert isinstance(map_ccxt_error(ccxt.AuthenticationError("a"), operation="x"), errors.PermanentExchangeError)
    assert not isinstance(map_ccxt_error(ccxt.BadSymbol("b"), operation="x"), errors.TemporaryExchangeError)


def test_scrub_removes_every_secret_and_request_signatures():
    text = f"GET /api?apiKey={KEY}&timestamp=1&signature=abcdef0123 header X-KEY: {KEY} secret {SECRET}"

    cleaned = scrub(text, [KEY, SECRET, None, ""])

    assert KEY not in cleaned and SECRET not in cleaned and "abcdef0123" not in cleaned
    assert "signature=***" in cleaned and "timestamp=1" in cleaned


def test_scrub_replaces_the_longer_secret_first_when_one_contains_the_other():
    assert scrub("abcXYZ", ["abc", "abcXYZ"]) == "***"


def test_boundary_converts_scrubs_and_does_not_chain_the_original():
    with pytest.raises(errors.AuthenticationError) as caught, ccxt_boundary("bybit fetch_balance", [KEY, SECRET]):
        raise ccxt.AuthenticationError(f'bybit {{"retMsg": "error sign! origin_string[1{KEY}5000]"}}')

    assert KEY not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_boundary_lets_runtime_errors_through_unchanged():
    original = errors.OrderRejected("quantity: must be positive")
    with pytest.raises(errors.OrderRejected) as caught, ccxt_boundary("x"):
        raise original
    assert caught.value is original


def test_long_messages_are_cut():
    mapped = map_ccxt_error(ccxt.ExchangeError("x" * 5000), operation="op")
    assert len(str(mapped)) < 700


def test_scrubbing_logger_formats_then_scrubs_what_ccxt_logs(caplog):
    caplog.set_level(logging.DEBUG, logger="test.wire")
    wire = ScrubbingLogger(logging.getLogger("test.wire"), [KEY, SECRET])

    wire.debug("%s %s, Request: %s %s", "GET", "http://x/api", {"X-MBX-APIKEY": KEY}, f"secret={SECRET}")
    wire.info("plain message without args")

    assert KEY not in caplog.text and SECRET not in caplog.text
    assert "X-MBX-APIKEY" in caplog.text and "***" in caplog.text
    assert "plain message without args" in caplog.text


def test_scrubbing_logger_skips_formatting_when_the_level_is_off(caplog):
    caplog.set_level(logging.WARNING, logger="test.quiet")
    wire = ScrubbingLogger(logging.getLogger("test.quiet"), [KEY])

    wire.debug("%s", KEY)

    assert caplog.records == []


class HeadersKept:
    """What the boundary reads of a ccxt client after a failed call: the last answer's headers."""

    def __init__(self, headers: dict[str, str] | None) -> None:
        self.last_response_headers = headers


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),  # a date in the past: nothing to wait
        ({"Retry-After": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_a_rate_limit_carries_the_retry_after_of_the_answer(headers, expected):
    with pytest.raises(errors.RateLimited) as caught, ccxt_boundary("binance create_order", (), HeadersKept(headers)):
        raise ccxt.RateLimitExceeded("binance 429 Too Many Requests")
    assert caught.value.retry_after_s == expected


def test_retry_after_is_read_only_for_a_rate_limit():
    client = HeadersKept({"Retry-After": "9"})
    with pytest.raises(errors.ExchangeUnavailable) as caught, ccxt_boundary("op", (), client):
        raise ccxt.ExchangeNotAvailable("503")
    assert not hasattr(caught.value, "retry_after_s")
