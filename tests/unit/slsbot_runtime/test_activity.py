"""``GET /activity``'s body (``slsbot_runtime.activity``) from a real state file: one equity point per candle (the
candle's last row), thinned evenly with the ends kept; round trips and risk decisions newest first, at most
``limit``; the breaker's tripped level from the stored risk snapshot. And the route itself on the runtime's server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from tests.fakes.state_files import CANDLES, EQUITY, HOUR_MS, START_MS, write_state_file

from slsbot_runtime.activity import activity_json, thin
from slsbot_runtime.control_access import ControlAccess
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.server import RuntimeServer


@pytest.fixture
def store(tmp_path: Path):
    opened = StateStore.open(write_state_file(tmp_path / "state.db"), readonly=True)
    yield opened
    opened.close()


def test_equity_is_one_point_per_candle_after_its_last_symbol(store: StateStore) -> None:
    body = activity_json(store, limit=50)
    assert len(body["equity"]) == CANDLES
    assert body["equity"][0] == [START_MS, EQUITY[0]]  # the ETH row (written last), not the BTC row before it
    assert body["equity"][-1] == [START_MS + (CANDLES - 1) * HOUR_MS, EQUITY[-1]]


def test_a_long_curve_is_thinned_evenly_with_both_ends_kept(store: StateStore) -> None:
    body = activity_json(store, limit=50, max_points=10)
    times = [ts for ts, _ in body["equity"]]
    assert len(times) == 10 and times == sorted(times)
    assert times[0] == START_MS and times[-1] == START_MS + (CANDLES - 1) * HOUR_MS
    points = [(i, float(i)) for i in range(1001)]
    assert thin(points, 11) == [(i * 100, float(i * 100)) for i in range(11)]
    assert thin(points[:5], 11) == points[:5]


def test_trades_and_risk_decisions_newest_first_and_limited(store: StateStore) -> None:
    body = activity_json(store, limit=50)
    newest, oldest = body["trades"]
    assert (newest["side"], newest["entry_price"], newest["exit_price"]) == ("long", 42_000.0, 41_500.0)
    assert newest["pnl"] == pytest.approx(-52.0) and oldest["pnl"] == pytest.approx(98.0)
    assert newest["exit_ts"] == START_MS + 31 * HOUR_MS
    rules = [decision["rule"] for decision in body["risk_decisions"]]
    assert rules == ["breaker_level_1", "per_trade_max"]
    assert body["risk_decisions"][0]["events"][1] == {"rule": "daily_loss", "message": "daily loss near its limit"}
    one = activity_json(store, limit=1)
    assert [t["pnl"] for t in one["trades"]] == [pytest.approx(-52.0)]
    assert [d["action"] for d in one["risk_decisions"]] == ["rejected"]


def test_breaker_from_the_stored_risk_snapshot(store: StateStore, tmp_path: Path) -> None:
    assert activity_json(store, limit=5)["breaker"]["level"] == 1
    assert activity_json(store, limit=5)["breaker"]["action"] == "reduceSize"
    empty = StateStore.open(tmp_path / "empty.db")
    try:
        body = activity_json(empty, limit=5)
    finally:
        empty.close()
    assert body == {
        "equity": [],
        "trades": [],
        "risk_decisions": [],
        "breaker": {"level": 0, "action": None, "tripped": []},
    }


class StateFileControl:
    """The part of ``RuntimeControl`` the route calls, over a real state file (``RuntimeProcess.activity`` does the
    same: open read-only, build, close)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def activity(self, limit: int) -> dict:
        store = StateStore.open(self.path, readonly=True)
        try:
            return activity_json(store, limit=limit)
        finally:
            store.close()


def test_the_runtime_serves_it_behind_its_token(tmp_path: Path) -> None:
    token = "activity-test-token-5Tq8Wm2Xv7"
    control = StateFileControl(write_state_file(tmp_path / "state.db"))
    server = RuntimeServer(control, CollectorRegistry(), host="127.0.0.1", port=0, access=ControlAccess(token))
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/activity?limit=1"
        assert httpx.get(url, timeout=10).status_code == 401
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200
        body = answer.json()
        assert len(body["trades"]) == 1 and body["breaker"]["level"] == 1 and len(body["equity"]) == CANDLES
    finally:
        server.stop()
