"""The admin API through FastAPI's TestClient against a real store on a temporary SQLite file.
The runtime's HTTP client is replaced by a stand-in that serves fixed orders (the runtime is not under test)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from slsbot.adapters.store import (
    RuntimeRecord,
    create_store_engine,
    get_stored_object,
    list_audit,
    record_event,
    save_object_status,
    save_runtime_record,
    sync_desired_objects,
)
from slsbot.api import parse_resource
from slsbot.domain.errors import RuntimeUnreachable
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import Role, TokenRegistry, token_id

OPERATOR_TOKEN = "op-7Qx2v9LkT3mN8pR5sW1yZ4bC6dF0gH"
VIEWER_TOKEN = "vw-3Hj8Kl2Mn5Pq7Rs9Tu1Vw4Xy6Za0Bc"
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


class StubRuntimeClient:
    def __init__(self) -> None:
        self.orders_served: list[dict[str, Any]] = []
        self.unreachable = False
        self.calls: list[tuple[str, int]] = []

    def orders(self, base_url: str, *, limit: int) -> list[dict[str, Any]]:
        self.calls.append((base_url, limit))
        if self.unreachable:
            raise RuntimeUnreachable(f"GET {base_url}/orders failed: ConnectError: connection refused")
        return self.orders_served[:limit]


def strategy(name: str, namespace: str = "default") -> Any:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            },
        }
    )


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_store_engine(tmp_path / "supervisor.db")
    with Session(engine) as session:
        sync_desired_objects(session, resources=[strategy("btc"), strategy("eth")], now=NOW)
        save_object_status(
            session,
            kind="Strategy",
            namespace="default",
            name="btc",
            now=NOW,
            status={
                "phase": "Running",
                "observedGeneration": 1,
                "restarts": 2,
                "pid": 4242,
                "equity": 10_250.5,
                "openPositions": 1,
                "tradeCount": 17,
                "lastHeartbeat": "2026-05-01T07:59:59Z",
                "configHash": "abc",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "RuntimeReady",
                        "message": "trading",
                        "lastTransitionTime": "2026-05-01T07:00:00Z",
                        "observedGeneration": 1,
                    }
                ],
            },
        )
        save_runtime_record(
            session, record=RuntimeRecord(namespace="default", name="btc", pid=4242, port=45678, restarts=2), now=NOW
        )
        record_event(
            session,
            kind="Strategy",
            namespace="default",
            name="btc",
            type="Normal",
            reason="Creating",
            message="creating runtime btc",
            now=NOW,
        )
    yield engine
    engine.dispose()


@pytest.fixture
def runtime_client() -> StubRuntimeClient:
    return StubRuntimeClient()


@pytest.fixture
def client(engine, runtime_client) -> TestClient:
    tokens = TokenRegistry.from_tokens(operator=SecretStr(OPERATOR_TOKEN), viewer=SecretStr(VIEWER_TOKEN))
    return TestClient(create_app(engine=engine, tokens=tokens, runtime_client=runtime_client))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_healthz_and_docs_need_no_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/strategies", "/api/v1/strategies/{name}/pause", "/api/v1/audit"} <= set(paths)


@pytest.mark.parametrize("headers", [{}, auth("not-a-known-token"), {"Authorization": "Basic abc"}])
def test_a_missing_or_unknown_token_is_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/strategies", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "AuthenticationRequired"


@pytest.mark.parametrize(("token", "read", "act"), [(VIEWER_TOKEN, 200, 403), (OPERATOR_TOKEN, 200, 200)])
def test_roles(client: TestClient, token: str, read: int, act: int) -> None:
    assert client.get("/api/v1/strategies", headers=auth(token)).status_code == read
    assert client.get("/api/v1/events", headers=auth(token)).status_code == read
    assert client.get("/api/v1/audit", headers=auth(token)).status_code == read
    response = client.post("/api/v1/strategies/btc/pause", headers=auth(token))
    assert response.status_code == act
    if act == 403:
        assert (
            response.json()["detail"] == f"viewer:{token_id(VIEWER_TOKEN)} may not do this: it needs the operator role"
        )


def test_roles_are_ordered() -> None:
    assert Role.ADMIN > Role.OPERATOR > Role.VIEWER


def test_strategy_detail_carries_status_and_runtime(client: TestClient) -> None:
    body = client.get("/api/v1/strategies/btc", headers=auth(VIEWER_TOKEN)).json()
    assert body["name"] == "btc" and body["namespace"] == "default"
    assert (body["phase"], body["restarts"], body["pid"]) == ("Running", 2, 4242)
    assert (body["equity"], body["open_positions"], body["trade_count"]) == (10_250.5, 1, 17)
    assert body["last_heartbeat"] == "2026-05-01T07:59:59Z"
    assert body["conditions"][0]["reason"] == "RuntimeReady"
    assert body["paused"] is False and body["paused_override"] is None
    listed = client.get("/api/v1/strategies", headers=auth(VIEWER_TOKEN)).json()
    assert [s["name"] for s in listed] == ["btc", "eth"]
    assert listed[1]["phase"] == "Pending" and listed[1]["pid"] is None


def test_unknown_and_ambiguous_names(client: TestClient, engine) -> None:
    response = client.get("/api/v1/strategies/nope", headers=auth(VIEWER_TOKEN))
    assert response.status_code == 404
    assert "'nope' does not exist" in response.json()["detail"]
    with Session(engine) as session:
        sync_desired_objects(session, resources=[strategy("btc"), strategy("eth"), strategy("btc", "prod")], now=NOW)
    response = client.get("/api/v1/strategies/btc", headers=auth(VIEWER_TOKEN))
    assert response.status_code == 400
    assert "?namespace=" in response.json()["detail"]
    assert client.get("/api/v1/strategies/btc?namespace=prod", headers=auth(VIEWER_TOKEN)).json()["namespace"] == "prod"


def test_pause_and_resume_set_the_override_in_the_store(client: TestClient, engine) -> None:
    body = client.post("/api/v1/strategies/btc/pause", headers=auth(OPERATOR_TOKEN)).json()
    assert body["paused"] is True and body["paused_override"] is True
    with Session(engine) as session:
        assert get_stored_object(session, kind="Strategy", namespace="default", name="btc").paused_override is True
    body = client.post("/api/v1/strategies/btc/resume", headers=auth(OPERATOR_TOKEN)).json()
    assert body["paused"] is False and body["paused_override"] is False


def test_a_denied_pause_changes_nothing(client: TestClient, engine) -> None:
    assert client.post("/api/v1/strategies/btc/pause", headers=auth(VIEWER_TOKEN)).status_code == 403
    with Session(engine) as session:
        assert get_stored_object(session, kind="Strategy", namespace="default", name="btc").paused_override is None


def test_every_mutating_request_is_audited_whatever_its_outcome(client: TestClient, engine) -> None:
    client.post("/api/v1/strategies/btc/pause", headers=auth(OPERATOR_TOKEN))
    client.post("/api/v1/strategies/btc/resume", headers=auth(VIEWER_TOKEN))
    client.post("/api/v1/strategies/btc/resume")
    client.post("/api/v1/strategies/ghost/pause", headers=auth(OPERATOR_TOKEN))
    client.get("/api/v1/strategies", headers=auth(OPERATOR_TOKEN))  # reads are not audited
    with Session(engine) as session:
        entries = list(reversed(list_audit(session)))
    assert [(e.actor, e.action, e.result.split()[0]) for e in entries] == [
        (f"operator:{token_id(OPERATOR_TOKEN)}", "POST /api/v1/strategies/btc/pause", "200"),
        (f"viewer:{token_id(VIEWER_TOKEN)}", "POST /api/v1/strategies/btc/resume", "403"),
        ("anonymous", "POST /api/v1/strategies/btc/resume", "401"),
        (f"operator:{token_id(OPERATOR_TOKEN)}", "POST /api/v1/strategies/ghost/pause", "404"),
    ]
    assert entries[0].target == "Strategy default/btc"
    assert all(e.at.tzinfo is not None for e in entries)
    listed = client.get("/api/v1/audit", headers=auth(VIEWER_TOKEN)).json()
    assert listed[0]["action"] == "POST /api/v1/strategies/ghost/pause"


def test_tokens_never_appear_in_responses_logs_or_audit(client: TestClient, engine, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = [
        client.get("/api/v1/strategies", headers=auth(OPERATOR_TOKEN)).text,
        client.post("/api/v1/strategies/btc/pause", headers=auth(OPERATOR_TOKEN)).text,
        client.post("/api/v1/strategies/btc/pause", headers=auth(VIEWER_TOKEN)).text,
        client.get("/api/v1/strategies", headers=auth(OPERATOR_TOKEN + "x")).text,
        client.get("/api/v1/audit", headers=auth(OPERATOR_TOKEN)).text,
        client.get("/api/v1/events", headers=auth(OPERATOR_TOKEN)).text,
    ]
    with Session(engine) as session:
        audit = " ".join(f"{e.actor} {e.action} {e.target} {e.result}" for e in list_audit(session))
    for secret in (OPERATOR_TOKEN, VIEWER_TOKEN):
        assert all(secret not in body for body in bodies)
        assert secret not in caplog.text
        assert secret not in audit


def test_orders_come_from_the_runtime(client: TestClient, runtime_client: StubRuntimeClient) -> None:
    runtime_client.orders_served = [
        {
            "client_order_id": "sls-2",
            "symbol": "BTC/USDT",
            "side": "sell",
            "quantity": 0.1,
            "filled_quantity": 0.1,
            "status": "filled",
            "created_at": "2026-05-01T07:00:00Z",
            "updated_at": "2026-05-01T07:00:01Z",
            "exchange_order_id": "x-9",
        },
        {
            "client_order_id": "sls-1",
            "symbol": "BTC/USDT",
            "side": "buy",
            "quantity": 0.1,
            "filled_quantity": 0.0,
            "status": "open",
            "created_at": "2026-05-01T06:00:00Z",
            "updated_at": "2026-05-01T06:00:00Z",
        },
    ]
    response = client.get("/api/v1/strategies/btc/orders?limit=5", headers=auth(VIEWER_TOKEN))
    assert response.status_code == 200
    orders = response.json()
    assert [o["client_order_id"] for o in orders] == ["sls-2", "sls-1"]
    assert orders[0]["side"] == "sell" and orders[0]["quantity"] == 0.1 and orders[1]["status"] == "open"
    assert "exchange_order_id" not in orders[0]
    assert runtime_client.calls == [("http://127.0.0.1:45678", 5)]


def test_orders_of_a_stopped_or_unreachable_runtime_are_503(client: TestClient, runtime_client) -> None:
    response = client.get("/api/v1/strategies/eth/orders", headers=auth(VIEWER_TOKEN))
    assert response.status_code == 503
    assert "the runtime of Strategy default/eth is not running" in response.json()["detail"]
    runtime_client.unreachable = True
    response = client.get("/api/v1/strategies/btc/orders", headers=auth(VIEWER_TOKEN))
    assert response.status_code == 503
    assert response.json()["error"] == "RuntimeUnreachable"


def test_events_can_be_filtered(client: TestClient) -> None:
    events = client.get("/api/v1/events?name=btc", headers=auth(VIEWER_TOKEN)).json()
    assert [(e["name"], e["reason"], e["count"]) for e in events] == [("btc", "Creating", 1)]
    assert client.get("/api/v1/events?name=eth", headers=auth(VIEWER_TOKEN)).json() == []


def test_orders_of_a_down_runtime_are_read_from_its_state_file(engine, runtime_client, tmp_path) -> None:
    from slsbot_runtime.domain.types import Order, OrderStatus, Side
    from slsbot_runtime.persistence.store import StateStore

    state = StateStore.open(tmp_path / "default" / "btc" / "state.db")
    for i, ts in enumerate((1_700_000_000_000, 1_700_003_600_000)):
        state.stage_order(
            Order(f"sls-{i}", "BTC/USDT", Side.BUY, 0.1, status=OrderStatus.FILLED, created_ts=ts, updated_ts=ts)
        )
    state.commit()
    state.close()
    runtime_client.unreachable = True
    tokens = TokenRegistry.from_tokens(operator=SecretStr(OPERATOR_TOKEN), viewer=SecretStr(VIEWER_TOKEN))
    app = create_app(engine=engine, tokens=tokens, runtime_client=runtime_client, state_dir=tmp_path)
    with TestClient(app) as client:
        response = client.get("/api/v1/strategies/btc/orders", headers=auth(VIEWER_TOKEN))
        assert response.status_code == 200
        assert response.headers["X-Slsbot-Orders-Source"] == "state-file"
        assert [o["client_order_id"] for o in response.json()] == ["sls-1", "sls-0"]
        never_started = client.get("/api/v1/strategies/eth/orders", headers=auth(VIEWER_TOKEN))
        assert never_started.status_code == 404
        assert "has not started yet" in never_started.json()["detail"]
