"""Client order ids: deterministic, unique per decision, tagged with their strategy, valid for Binance and Bybit."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from slsbot_runtime.domain.types import CLIENT_ORDER_ID_PATTERN
from slsbot_runtime.execution.client_ids import client_order_id, is_own, legacy_client_order_id, strategy_tag

# Binance's newClientOrderId (^[\.A-Z\:/a-z0-9_-]{1,36}$) and Bybit's orderLinkId (at most 36 letters, digits, - and _)
BINANCE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
BYBIT = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


def test_same_decision_same_id_and_each_part_matters() -> None:
    base = client_order_id("default/btc", "BTC/USDT", 1_700_000_000_000, 0)
    assert base == client_order_id("default/btc", "BTC/USDT", 1_700_000_000_000, 0)
    variants = {
        client_order_id("default/eth", "BTC/USDT", 1_700_000_000_000, 0),
        client_order_id("default/btc", "ETH/USDT", 1_700_000_000_000, 0),
        client_order_id("default/btc", "BTC/USDT", 1_700_003_600_000, 0),
        client_order_id("default/btc", "BTC/USDT", 1_700_000_000_000, 1),
    }
    assert base not in variants and len(variants) == 4


def test_an_id_says_its_strategy_and_no_other() -> None:
    mine, theirs = strategy_tag("default/btc"), strategy_tag("default/eth")
    assert re.fullmatch(r"sls[0-9a-f]{8}-", mine) and mine != theirs
    cid = client_order_id("default/btc", "BTC/USDT", 1_700_000_000_000, 0)
    assert cid.startswith(mine) and is_own(cid, mine)
    assert not is_own(cid, theirs)
    assert not is_own(client_order_id("default/eth", "BTC/USDT", 1_700_000_000_000, 0), mine)
    # an id of the old format does not say its strategy: never taken for this one's
    assert not is_own(legacy_client_order_id("default/btc", "BTC/USDT", 1_700_000_000_000, 0), mine)
    assert not is_own(mine + "short", mine)


def test_the_old_format_is_still_made_for_lookups() -> None:
    old = legacy_client_order_id("default/btc", "BTC/USDT", 1_700_000_000_000, 0)
    assert re.fullmatch(r"sls-[0-9a-f]{32}", old)
    assert old != client_order_id("default/btc", "BTC/USDT", 1_700_000_000_000, 0)


@given(st.text(max_size=80), st.text(max_size=20), st.integers(min_value=0, max_value=2**62), st.integers(0, 1000))
def test_always_valid_for_binance_and_bybit(strategy: str, symbol: str, ts: int, seq: int) -> None:
    cid = client_order_id(strategy, symbol, ts, seq)
    assert len(cid) == 36 and cid.startswith(strategy_tag(strategy))
    assert CLIENT_ORDER_ID_PATTERN.fullmatch(cid) and BINANCE.fullmatch(cid) and BYBIT.fullmatch(cid)
