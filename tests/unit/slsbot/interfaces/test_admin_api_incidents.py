"""The incident routes through FastAPI's TestClient against a real store on a temporary SQLite file, with the state
folder a real one (post-mortem bundles are written there)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from slsbot.adapters.postmortems import LocalPostmortems
from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import RuntimeRecord, create_store_engine, list_audit, record_event, save_runtime_record
from slsbot.adapters.supervisor_store import SqlIncidentStore
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry
from slsbot.services.incidents import IncidentService

OPERATOR = "op-7Qx2v9LkT3mN8pR5sW1yZ4bC6dF0gH"
VIEWER = "vw-3Hj8Kl2Mn5Pq7Rs9Tu1Vw4Xy6Za0Bc"
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def signal(rule: str, name: str, severity: int, namespace: str = "trading") -> IncidentSignal:
    return IncidentSignal(
        cause=f"{rule}:{namespace}/{name}",
        severity=severity,
        rule=rule,
        namespace=namespace,
        objects=(f"Strategy/{name}",),
        message=f"{rule} on {name}",
        runbook="runbooks/state-mismatch.md",
        detected_at=NOW,
        actions=("CancelOrders", "Halt") if severity == 1 else (),
    )


@pytest.fixture
def setup(tmp_path: Path):
    engine = create_store_engine(tmp_path / "supervisor.db")
    with Session(engine) as session:
        save_runtime_record(
            session,
            record=RuntimeRecord(
                namespace="trading", name="btc", pid=1, port=1, last_status={"equity": 990.0, "trading_mode": "halted"}
            ),
            now=NOW,
        )
        record_event(
            session,
            kind="Strategy",
            namespace="trading",
            name="btc",
            type="Warning",
            reason="Halted",
            message="halted: state mismatch",
            now=NOW,
        )
    postmortems = LocalPostmortems(engine, tmp_path)
    service = IncidentService(SqlIncidentStore(engine), None, postmortems=postmortems)
    service.record_signals(
        [signal("StateMismatch", "btc", 1), signal("Slippage", "eth", 3), signal("Drawdown", "sol", 2, "other")], NOW
    )
    tokens = TokenRegistry.from_tokens(operator=SecretStr(OPERATOR), viewer=SecretStr(VIEWER))
    client = TestClient(
        create_app(
            engine=engine,
            tokens=tokens,
            runtime_client=RuntimeHttpClient(timeout=1),
            state_dir=tmp_path,
            incidents=service,
        )
    )
    yield client, engine, tmp_path
    engine.dispose()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_list_with_filters_and_get(setup) -> None:
    client, _, _ = setup
    listed = client.get("/api/v1/incidents", headers=auth(VIEWER))
    assert listed.status_code == 200 and len(listed.json()) == 3
    assert {i["spec"]["rule"] for i in listed.json()} == {"StateMismatch", "Slippage", "Drawdown"}
    one = client.get("/api/v1/incidents?severity=1", headers=auth(VIEWER)).json()
    assert [i["spec"]["rule"] for i in one] == ["StateMismatch"]
    assert one[0]["status"]["state"] == "open" and one[0]["status"]["timeline"][0]["kind"] == "Detected"
    assert [i["namespace"] for i in client.get("/api/v1/incidents?namespace=other", headers=auth(VIEWER)).json()] == [
        "other"
    ]
    assert client.get("/api/v1/incidents?state=resolved", headers=auth(VIEWER)).json() == []
    got = client.get(f"/api/v1/incidents/{one[0]['id']}", headers=auth(VIEWER))
    assert got.status_code == 200 and got.json() == one[0]
    missing = client.get("/api/v1/incidents/nope", headers=auth(VIEWER))
    assert missing.status_code == 404 and missing.json() == {
        "detail": "incident 'nope' does not exist",
        "error": "NotFoundError",
    }
    bad = client.get("/api/v1/incidents?severity=4", headers=auth(VIEWER))
    assert bad.status_code in (400, 422) and "severity" in bad.text
    typo = client.get("/api/v1/incidents?sevrity=1", headers=auth(VIEWER))
    assert typo.status_code == 400 and "sevrity" in typo.json()["detail"]
    assert client.get("/api/v1/incidents").status_code == 401


def test_acknowledge_and_resolve_need_the_operator_role_and_are_audited(setup) -> None:
    client, engine, tmp_path = setup
    (critical,) = client.get("/api/v1/incidents?severity=1", headers=auth(VIEWER)).json()
    url = f"/api/v1/incidents/{critical['id']}"
    denied = client.post(f"{url}/acknowledge", headers=auth(VIEWER))
    assert denied.status_code == 403
    assert client.get(url, headers=auth(VIEWER)).json() == critical  # unchanged
    acked = client.post(f"{url}/acknowledge?note=looking", headers=auth(OPERATOR))
    assert acked.status_code == 200 and acked.json()["status"]["state"] == "acknowledged"
    entry = acked.json()["status"]["timeline"][-1]
    assert entry["kind"] == "Acknowledged" and entry["message"] == "acknowledged: looking"
    assert entry["actor"].startswith("operator:")
    assert not (tmp_path / "postmortems" / f"{critical['id']}.json").exists()
    resolved = client.post(f"{url}/resolve?note=reconciled", headers=auth(OPERATOR))
    assert resolved.status_code == 200 and resolved.json()["status"]["state"] == "resolved"
    # Severity 1 resolved: its bundle is stored under the state folder.
    assert (tmp_path / "postmortems" / f"{critical['id']}.json").is_file()
    again = client.post(f"{url}/acknowledge", headers=auth(OPERATOR))
    assert again.status_code == 409 and again.json()["error"] == "ConflictError"
    with Session(engine) as session:
        audit = [(a.action, a.target, a.result[:3]) for a in reversed(list_audit(session))]
    assert audit == [
        ("POST /api/v1/incidents/{incident_id}/acknowledge", f"Incident {critical['id']}", "403"),
        ("POST /api/v1/incidents/{incident_id}/acknowledge", f"Incident {critical['id']}", "200"),
        ("POST /api/v1/incidents/{incident_id}/resolve", f"Incident {critical['id']}", "200"),
        ("POST /api/v1/incidents/{incident_id}/acknowledge", f"Incident {critical['id']}", "409"),
    ]


def test_postmortem_bundle_is_one_json_file_with_timeline_status_orders_and_events(setup) -> None:
    client, _, _ = setup
    (critical,) = client.get("/api/v1/incidents?severity=1", headers=auth(VIEWER)).json()
    client.post(f"/api/v1/incidents/{critical['id']}/resolve", headers=auth(OPERATOR))
    response = client.get(f"/api/v1/incidents/{critical['id']}/postmortem", headers=auth(VIEWER))
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="postmortem-{critical["id"]}.json"'
    bundle = json.loads(response.content)
    assert bundle["template"] == "runbooks/postmortem-template.md"
    assert [e["kind"] for e in bundle["incident"]["status"]["timeline"]] == ["Detected", "Action", "Resolved"]
    runtime = bundle["runtimes"]["Strategy/btc"]
    assert runtime["lastStatus"] == {"equity": 990.0, "trading_mode": "halted"}
    assert runtime["riskDecisions"] == {"trading_mode": "halted"}
    assert runtime["recentOrders"] == []  # no state file in this test
    assert [(e["reason"], e["message"]) for e in bundle["events"]] == [("Halted", "halted: state mismatch")]
    # An open incident's bundle is built on demand.
    (low,) = client.get("/api/v1/incidents?severity=3", headers=auth(VIEWER)).json()
    built = client.get(f"/api/v1/incidents/{low['id']}/postmortem", headers=auth(VIEWER))
    assert built.status_code == 200 and json.loads(built.content)["incident"]["id"] == low["id"]
