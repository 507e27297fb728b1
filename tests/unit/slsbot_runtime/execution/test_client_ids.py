"""Client order ids: deterministic, unique per decision, valid for Binance and Bybit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from slsbot_runtime.domain.types import CLIENT_ORDER_ID_PATTERN
from slsbot_runtime.execution.client_ids import client_order_id


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


@given(st.text(max_size=80), st.text(max_size=20), st.integers(min_value=0, max_value=2**62), st.integers(0, 1000))
def test_always_valid_for_binance(strategy: str, symbol: str, ts: int, seq: int) -> None:
    cid = client_order_id(strategy, symbol, ts, seq)
    assert len(cid) == 36 and cid.startswith("sls-")
    assert CLIENT_ORDER_ID_PATTERN.fullmatch(cid)
