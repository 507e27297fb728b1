"""The admin API through FastAPI's TestClient against a real store on a temporary SQLite file.
The runtime's HTTP client is replaced by a stand-in that serves fixed orders (the runtime is not under test)."""

from __future__ import annotations

import logging
import re
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
from slsbot.settings import AdminApiSettings

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
                "closedTrades": 8,
                "returnPercent": 2.505,
                "realizedPnl": 180.25,
                "unrealizedPnl": 70.25,
                "winRatePercent": 62.5,
                "drawdownPercent": 1.5,
                "maxDrawdownPercent": 4.25,
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


def test_docs_load_only_assets_the_api_serves_itself(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(assets) == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
    ]
    assert "http://" not in page.text and "https://" not in page.text and "'/openapi.json'" in page.text
    types = {asset: client.get(asset) for asset in assets}
    assert all(response.status_code == 200 for response in types.values())
    assert (
        types["/docs/assets/swagger-ui-bundle.js"]
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert "SwaggerUIBundle" in types["/docs/assets/swagger-ui-bundle.js"].text
    assert types["/docs/assets/swagger-ui.css"].headers["content-type"].startswith("text/css")
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN: not served


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
    assert (body["ready"], body["reason"]) == ("True", "RuntimeReady")
    assert (body["return_percent"], body["realized_pnl"], body["unrealized_pnl"]) == (2.505, 180.25, 70.25)
    assert (body["win_rate_percent"], body["drawdown_percent"], body["max_drawdown_percent"]) == (62.5, 1.5, 4.25)
    assert body["closed_trades"] == 8 and body["idle_reason"] is None
    assert body["created_at"] == "2026-05-01T08:00:00Z"
    assert body["paused"] is False and body["paused_override"] is None
    listed = client.get("/api/v1/strategies", headers=auth(VIEWER_TOKEN)).json()
    assert [s["name"] for s in listed] == ["btc", "eth"]
    assert listed[1]["phase"] == "Pending" and listed[1]["pid"] is None
    assert (listed[1]["ready"], listed[1]["reason"], listed[1]["return_percent"]) == ("Unknown", None, None)


def test_an_empty_namespace_parameter_means_any_namespace(client: TestClient) -> None:
    headers = auth(OPERATOR_TOKEN)
    assert client.get("/api/v1/strategies/btc?namespace=", headers=headers).json()["namespace"] == "default"
    assert [s["name"] for s in client.get("/api/v1/strategies?namespace=", headers=headers).json()] == ["btc", "eth"]
    assert client.post("/api/v1/strategies/btc/pause?namespace=", headers=headers).json()["paused"] is True
    assert [e["name"] for e in client.get("/api/v1/events?namespace=&name=", headers=headers).json()] == ["btc"]
    assert client.get("/api/v1/strategies/btc?namespace=prod", headers=headers).status_code == 404


def test_an_unknown_query_parameter_is_400_naming_it_after_the_token_check(client: TestClient, engine) -> None:
    response = client.post("/api/v1/strategies/btc/pause?namepsace=prod", headers=auth(OPERATOR_TOKEN))
    assert response.status_code == 400
    assert response.json() == {
        "detail": "unknown query parameter 'namepsace': POST /api/v1/strategies/{name}/pause takes namespace",
        "error": "InvalidQueryParameter",
    }
    with Session(engine) as session:
        assert get_stored_object(session, kind="Strategy", namespace="default", name="btc").paused_override is None
    assert client.get("/api/v1/strategies?namepsace=prod").status_code == 401  # anonymous: nothing more
    twice = client.get("/api/v1/strategies?namespace=default&namespace=prod", headers=auth(VIEWER_TOKEN))
    assert twice.status_code == 400
    assert twice.json()["detail"] == "query parameter 'namespace' is given more than once; give it once"


def test_an_unknown_route_answers_the_one_error_shape(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here", headers=auth(VIEWER_TOKEN))
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found", "error": "NotFound"}
    response = client.delete("/api/v1/strategies", headers=auth(OPERATOR_TOKEN))
    assert response.status_code == 405 and response.json()["error"] == "MethodNotAllowed"
    assert response.headers["allow"] == "GET"


def test_openapi_declares_every_answer_of_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    declared = {
        (method.upper(), path): set(operation["responses"])
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }
    protections = {"413", "429"}  # any route may get them from the protections (hardening.py), before it runs
    assert declared == {
        route: answers | protections
        for route, answers in {
            ("GET", "/healthz"): {"200"},
            ("GET", "/api/v1/strategies"): {"200", "400", "401", "422"},
            ("GET", "/api/v1/strategies/{name}"): {"200", "400", "401", "404", "422"},
            ("GET", "/api/v1/strategies/{name}/orders"): {"200", "400", "401", "404", "422", "503"},
            ("GET", "/api/v1/strategies/{name}/activity"): {"200", "400", "401", "404", "422", "503"},
            ("GET", "/api/v1/fleet"): {"200", "400", "401"},
            ("GET", "/api/v1/riskpolicies"): {"200", "400", "401", "422"},
            ("POST", "/api/v1/riskpolicies/{name}/kill-switch"): {"200", "400", "401", "403", "404", "422"},
            ("POST", "/api/v1/strategies/{name}/pause"): {"200", "400", "401", "403", "404", "422"},
            ("POST", "/api/v1/strategies/{name}/resume"): {"200", "400", "401", "403", "404", "422"},
            ("GET", "/api/v1/events"): {"200", "400", "401", "422"},
            ("GET", "/api/v1/audit"): {"200", "400", "401", "422"},
            ("GET", "/api/v1/audit/refused"): {"200", "400", "401"},
            ("GET", "/api/v1/experiments/{name}/report"): {"200", "400", "401", "404", "422"},
            ("GET", "/api/v1/experiments/{name}/report/{file}"): {"200", "400", "401", "404", "422"},
            ("GET", "/api/v1/experiments"): {"200", "400", "401", "422"},
            ("GET", "/api/v1/experiments/{name}"): {"200", "400", "401", "404", "422"},
            ("POST", "/api/v1/experiments/{name}/promote"): {"200", "400", "401", "403", "404", "409", "422"},
            ("POST", "/api/v1/experiments/{name}/abort"): {"200", "400", "401", "403", "404", "409", "422"},
            ("POST", "/api/v1/experiments/{name}/pause"): {"200", "400", "401", "403", "404", "409", "422"},
            ("POST", "/api/v1/experiments/{name}/resume"): {"200", "400", "401", "403", "404", "409", "422"},
            ("GET", "/api/v1/incidents"): {"200", "400", "401", "422"},
            ("GET", "/api/v1/incidents/{incident_id}"): {"200", "400", "401", "404", "422"},
            ("POST", "/api/v1/incidents/{incident_id}/acknowledge"): {"200", "400", "401", "403", "404", "409", "422"},
            ("POST", "/api/v1/incidents/{incident_id}/resolve"): {"200", "400", "401", "403", "404", "422"},
            ("GET", "/api/v1/incidents/{incident_id}/postmortem"): {"200", "400", "401", "404", "422"},
            ("GET", "/api/v1/accounts/overview"): {"200", "400", "401"},
        }.items()
    }
    error = spec["paths"]["/api/v1/strategies/{name}/pause"]["post"]["responses"]["403"]
    assert error["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorView"}
    assert set(spec["components"]["schemas"]["ErrorView"]["required"]) == {"detail", "error"}
    orders = spec["paths"]["/api/v1/strategies/{name}/orders"]["get"]["responses"]["200"]
    assert "X-Slsbot-Orders-Source" in orders["headers"]


def test_the_admin_token_has_the_admin_role_and_may_do_what_an_operator_may(engine, runtime_client) -> None:
    admin_token = "ad-9Lq3Zx8Wc2Vb7Nm4Kj6Hg1Fd5Sa0Pt"
    tokens = TokenRegistry.from_tokens(admin=SecretStr(admin_token), viewer=SecretStr(VIEWER_TOKEN))
    client = TestClient(create_app(engine=engine, tokens=tokens, runtime_client=runtime_client))
    assert client.post("/api/v1/strategies/btc/pause", headers=auth(admin_token)).status_code == 200
    assert client.post("/api/v1/strategies/btc/pause", headers=auth(OPERATOR_TOKEN)).status_code == 401
    assert (
        client.get("/api/v1/audit", headers=auth(VIEWER_TOKEN)).json()[0]["actor"] == f"admin:{token_id(admin_token)}"
    )


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


def test_authenticated_mutations_of_real_routes_are_audited_whatever_their_outcome(client: TestClient, engine) -> None:
    client.post("/api/v1/strategies/btc/pause", headers=auth(OPERATOR_TOKEN))
    client.post("/api/v1/strategies/btc/resume", headers=auth(VIEWER_TOKEN))
    client.post("/api/v1/strategies/btc/resume")  # anonymous: counted, not audited
    client.post("/api/v1/strategies/ghost/pause?namespace=prod", headers=auth(OPERATOR_TOKEN))
    client.post("/api/v1/no-such-route", headers=auth(OPERATOR_TOKEN))  # no route: counted, not audited
    client.get("/api/v1/strategies", headers=auth(OPERATOR_TOKEN))  # reads are not audited
    with Session(engine) as session:
        entries = list(reversed(list_audit(session)))
    operator, viewer = f"operator:{token_id(OPERATOR_TOKEN)}", f"viewer:{token_id(VIEWER_TOKEN)}"
    assert [(e.actor, e.action, e.target, e.result.split()[0]) for e in entries] == [
        (operator, "POST /api/v1/strategies/{name}/pause", "Strategy default/btc", "200"),
        (viewer, "POST /api/v1/strategies/{name}/resume", "Strategy */btc", "403"),  # as asked: any namespace
        (operator, "POST /api/v1/strategies/{name}/pause", "Strategy prod/ghost", "404"),
    ]
    assert entries[2].result == "404 Strategy 'ghost' does not exist in namespace 'prod'"
    assert all(e.at.tzinfo is not None for e in entries)
    listed = client.get("/api/v1/audit", headers=auth(VIEWER_TOKEN)).json()
    assert (
        listed[0]["action"] == "POST /api/v1/strategies/{name}/pause" and listed[0]["target"] == "Strategy prod/ghost"
    )
    refused = client.get("/api/v1/audit/refused", headers=auth(VIEWER_TOKEN)).json()
    assert [(r["method"], r["route"], r["status"], r["count"]) for r in refused] == [
        ("POST", "(no route)", 404, 1),
        ("POST", "/api/v1/strategies/{name}/resume", 401, 1),
    ]


def _database_bytes(engine) -> int:
    """The database file's size with everything written into it (the write-ahead log checkpointed)."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return Path(engine.url.database).stat().st_size


def test_a_flood_of_huge_anonymous_posts_stores_only_counts(engine, runtime_client) -> None:
    # The rate limit and the lockout off, as for a flood from many addresses: every request reaches the routes.
    tokens = TokenRegistry.from_tokens(operator=SecretStr(OPERATOR_TOKEN), viewer=SecretStr(VIEWER_TOKEN))
    unlimited = AdminApiSettings(rate_limit_per_second=0, lockout_after_failures=0)
    client = TestClient(create_app(engine=engine, tokens=tokens, runtime_client=runtime_client, hardening=unlimited))
    huge = "x" * 60_000
    before = _database_bytes(engine)
    for i in range(200):
        path = f"/{huge}{i}" if i % 2 else f"/api/v1/strategies/{huge}{i}/pause"
        assert client.post(path, content=huge).status_code in (401, 404)
    # A valid token on a real route is audited, with every field bounded however long the name it sends.
    assert client.post(f"/api/v1/strategies/{huge}/pause", headers=auth(OPERATOR_TOKEN)).status_code == 404
    grown = _database_bytes(engine) - before
    with Session(engine) as session:
        entries = list_audit(session)
    assert [(e.actor, e.action) for e in entries] == [
        (f"operator:{token_id(OPERATOR_TOKEN)}", "POST /api/v1/strategies/{name}/pause")
    ]
    assert len(entries[0].target) <= 300 and len(entries[0].result) <= 500
    refused = client.get("/api/v1/audit/refused", headers=auth(VIEWER_TOKEN)).json()
    assert {(r["route"], r["status"], r["count"]) for r in refused} == {
        ("(no route)", 404, 100),
        ("/api/v1/strategies/{name}/pause", 401, 100),
    }
    assert huge not in client.get("/api/v1/audit", headers=auth(VIEWER_TOKEN)).text
    assert grown <= 16 * 1024, f"the database grew by {grown} bytes"


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
