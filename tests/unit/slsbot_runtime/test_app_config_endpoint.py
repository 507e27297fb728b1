"""``SLSBOT_EXCHANGE_ENDPOINT`` as ``slsbot runtime`` reads it: a base URL the exchange's paths go under, or
a ConfigError naming the variable and the fix."""

from __future__ import annotations

import pytest

from slsbot_runtime.config_loading import parse_exchange_endpoint
from slsbot_runtime.domain.errors import ConfigError


@pytest.mark.parametrize("unset", [None, "", "   "])
def test_unset_or_blank_means_the_exchanges_own_hosts(unset: str | None) -> None:
    assert parse_exchange_endpoint(unset) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        (" https://mirror.example.com/binance/ ", "https://mirror.example.com/binance"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_a_base_url_is_kept_without_its_trailing_slash(value: str, expected: str) -> None:
    assert parse_exchange_endpoint(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("127.0.0.1:8080", "the scheme must be http or https"),
        ("ftp://mirror.example.com", "the scheme must be http or https, got 'ftp'"),
        ("http://", "no host in the URL"),
        ("http://host:99999", "not a URL"),
        ("http://host:0", "port 0"),
        ("https://user:hunter2@mirror.example.com", "a user name or password in the URL"),
        ("http://host/api?x=1", "a query or fragment cannot be kept"),
    ],
)
def test_a_bad_endpoint_is_refused_naming_the_variable(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"^SLSBOT_EXCHANGE_ENDPOINT: ") as refused:
        parse_exchange_endpoint(value)
    assert problem in str(refused.value)
    assert "hunter2" not in str(refused.value)
