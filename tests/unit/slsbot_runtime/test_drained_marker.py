"""The drain marker in a state file: written once, read back as the drained runtime's /status, and refused when
it belongs to another strategy or cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.drained import drained_from_store, load_drained, save_drained
from slsbot_runtime.persistence.store import StateStore


@pytest.fixture
def store(tmp_path: Path):
    store = StateStore.open(tmp_path / "state.db")
    store.stage_meta("strategy_key", "trading/btc")
    store.stage_meta("cash", 9_500.0)
    store.stage_meta("trade_count", 4)
    store.commit()
    yield store
    store.close()


def test_a_state_file_without_the_marker_is_not_drained(store: StateStore) -> None:
    assert load_drained(store, strategy_key="trading/btc") is None


def test_the_marker_round_trips_and_becomes_the_drained_status(store: StateStore) -> None:
    marker = drained_from_store(store, cancel_orders=True, flatten=False, now=1_767_225_600.0)
    save_drained(store, marker)
    loaded = load_drained(store, strategy_key="trading/btc")
    assert loaded == marker and loaded.trade_count == 4 and loaded.cash == 9_500.0 and loaded.open_orders == 0
    body = loaded.status_json("btc", heartbeat=1_767_225_660.0)
    assert body["phase"] == "drained" and body["ready"] is True and body["drained_at"] == "2026-01-01T00:00:00Z"
    assert body["heartbeat"] == "2026-01-01T00:01:00Z" and body["drain"] == {"cancelOrders": True, "flatten": False}
    assert {"open_orders", "open_positions", "trade_count", "orders_total", "equity", "cash"} <= set(body)


def test_the_state_of_another_strategy_is_refused(store: StateStore) -> None:
    with pytest.raises(StateError, match="belongs to strategy trading/btc, not trading/eth"):
        load_drained(store, strategy_key="trading/eth")


def test_an_unreadable_marker_is_a_state_error_not_a_crash(store: StateStore) -> None:
    store.stage_meta("drained", {"when": "yesterday"})
    store.commit()
    with pytest.raises(StateError, match="drain marker this runtime cannot read"):
        load_drained(store, strategy_key="trading/btc")
    store.stage_meta("drained", "yes")
    store.commit()
    with pytest.raises(StateError, match="not an object"):
        load_drained(store, strategy_key="trading/btc")
