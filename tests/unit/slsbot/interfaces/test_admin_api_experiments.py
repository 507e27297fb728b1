"""The admin API's Experiment routes (interfaces/admin_api/experiments.py) through FastAPI's TestClient against a
real store on a temporary SQLite file: reads by a viewer, A/B controls by an operator, each audited."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from slsbot.adapters.store import (
    create_store_engine,
    get_stored_object,
    list_audit,
    save_object_status,
    sync_desired_objects,
)
from slsbot.api import parse_resource
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry, token_id

OPERATOR_TOKEN = "op-7Qx2v9LkT3mN8pR5sW1yZ4bC6dF0gH"
VIEWER_TOKEN = "vw-3Hj8Kl2Mn5Pq7Rs9Tu1Vw4Xy6Za0Bc"
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
ROLLOUT_STATUS = {
    "phase": "Progressing",
    "observedGeneration": 1,
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Progressing",
            "message": "the A/B rollout is Progressing",
            "lastTransitionTime": "2026-05-01T07:00:00Z",
            "observedGeneration": 1,
        },
        {
            "type": "Progressing",
            "status": "True",
            "reason": "WaitingForTime",
            "message": "step 2 of 4 (25 %): held 3h of 24h (market time, stepInterval)",
            "lastTransitionTime": "2026-05-01T07:00:00Z",
            "observedGeneration": 1,
        },
    ],
    "rollout": {
        "currentStepIndex": 1,
        "stepStartedAt": "2025-01-02T00:00:00Z",
        "variants": [
            {"name": "baseline", "strategy": "btc", "allocationPercent": 75, "trades": 4, "sharpe": 1.5},
            {"name": "candidate", "strategy": "btc-v2", "allocationPercent": 25, "trades": 3, "returnPercent": 0.4},
        ],
        "statistic": 2.5,
        "threshold": 20,
        "verdict": "continue",
        "decisions": [
            {"time": "2026-05-01T07:00:00Z", "step": 1, "action": "Step", "reason": "the step before held"},
        ],
    },
}


TUNING_STATUS = {
    "phase": "Completed",
    "observedGeneration": 1,
    "tuning": {
        "study": "default.btc-tuning.r1-0123abcd",
        "run": 1,
        "trials": {"complete": 28, "pruned": 2, "failed": 0},
        "bestValue": 1.42,
        "bestParams": {"sma.fast": 12, "sma.slow": 60},
        "proposal": {
            "params": {"sma.fast": 12, "sma.slow": 60},
            "outOfSample": {"sharpe": 0.61},
            "deflatedSharpe": 0.19,
            "pbo": 0.42,
            "trialsCounted": 30,
            "accepted": False,
            "reason": "rejected: the deflated Sharpe ratio 0.190 is below 0.95",
        },
        "report": "/api/v1/experiments/btc-tuning/report",
    },
}


def experiment(name: str = "btc-ab", namespace: str = "default", kind: str = "ab") -> Any:
    spec: dict[str, Any] = {"type": kind, "strategyRef": {"name": "btc"}}
    if kind == "ab":
        spec["variants"] = [
            {"name": "baseline", "strategyRef": {"name": "btc"}},
            {"name": "candidate", "strategyRef": {"name": "btc-v2"}},
        ]
    else:
        spec["searchSpace"] = [{"name": "sma.fast", "type": "int", "low": 5, "high": 20}]
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_store_engine(tmp_path / "supervisor.db")
    with Session(engine) as session:
        sync_desired_objects(session, resources=[experiment(), experiment("btc-tuning", kind="tuning")], now=NOW)
        save_object_status(
            session, kind="Experiment", namespace="default", name="btc-ab", status=ROLLOUT_STATUS, now=NOW
        )
        save_object_status(
            session, kind="Experiment", namespace="default", name="btc-tuning", status=TUNING_STATUS, now=NOW
        )
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine) -> TestClient:
    tokens = TokenRegistry.from_tokens(operator=SecretStr(OPERATOR_TOKEN), viewer=SecretStr(VIEWER_TOKEN))
    return TestClient(create_app(engine=engine, tokens=tokens, runtime_client=None))  # type: ignore[arg-type]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def controls(engine, name: str = "btc-ab") -> dict | None:
    with Session(engine) as session:
        return get_stored_object(session, kind="Experiment", namespace="default", name=name).controls_override


def test_a_viewer_reads_the_experiments_with_their_rollout(client: TestClient) -> None:
    listed = client.get("/api/v1/experiments", headers=auth(VIEWER_TOKEN)).json()
    assert [(e["name"], e["type"], e["phase"]) for e in listed] == [
        ("btc-ab", "ab", "Progressing"),
        ("btc-tuning", "tuning", "Completed"),
    ]
    assert listed[0]["tuning"] is None
    body = client.get("/api/v1/experiments/btc-ab", headers=auth(VIEWER_TOKEN)).json()
    assert (body["baseline"], body["candidate"], body["steps"]) == ("btc", "btc-v2", [10, 25, 50, 100])
    assert (body["current_step_index"], body["statistic"], body["threshold"], body["verdict"]) == (
        1,
        2.5,
        20,
        "continue",
    )
    assert [(v["strategy"], v["allocation_percent"], v["trades"]) for v in body["variants"]] == [
        ("btc", 75, 4),
        ("btc-v2", 25, 3),
    ]
    assert body["message"].startswith("step 2 of 4") and body["decisions"][0]["action"] == "Step"
    assert (body["paused"], body["abort"], body["promote"]) == (False, False, False)


def test_a_tuning_run_shows_its_trials_and_its_proposal_with_dsr_and_pbo(client: TestClient) -> None:
    body = client.get("/api/v1/experiments/btc-tuning", headers=auth(VIEWER_TOKEN)).json()
    tuning = body["tuning"]
    assert (tuning["run"], tuning["trials"], tuning["best_value"]) == (
        1,
        {"complete": 28, "pruned": 2, "failed": 0, "running": 0},
        1.42,
    )
    proposal = tuning["proposal"]
    assert (proposal["deflated_sharpe"], proposal["pbo"], proposal["accepted"]) == (0.19, 0.42, False)
    assert proposal["reason"].startswith("rejected") and tuning["report"].endswith("/btc-tuning/report")
    assert (body["variants"], body["current_step_index"], body["verdict"]) == ([], None, None)


@pytest.mark.parametrize(
    ("action", "control", "value"),
    [("promote", "promote", True), ("abort", "abort", True), ("pause", "paused", True), ("resume", "paused", False)],
)
def test_an_operator_steers_the_rollout_through_the_store_and_is_audited(client, engine, action, control, value):
    response = client.post(f"/api/v1/experiments/btc-ab/{action}", headers=auth(OPERATOR_TOKEN))
    assert response.status_code == 200, response.json()
    assert response.json()[control] is value
    assert controls(engine) == {control: value}
    with Session(engine) as session:
        (entry,) = list_audit(session)
    assert (entry.actor, entry.action, entry.target, entry.result) == (
        f"operator:{token_id(OPERATOR_TOKEN)}",
        f"POST /api/v1/experiments/{{name}}/{action}",
        "Experiment default/btc-ab",
        "200",
    )


def test_a_viewer_may_not_steer_and_nothing_changes_but_the_audit(client, engine) -> None:
    response = client.post("/api/v1/experiments/btc-ab/abort", headers=auth(VIEWER_TOKEN))
    assert response.status_code == 403
    assert "needs the operator role" in response.json()["detail"]
    assert controls(engine) is None
    with Session(engine) as session:
        (entry,) = list_audit(session)
    assert (entry.target, entry.result.split()[0]) == ("Experiment */btc-ab", "403")


def test_an_unknown_name_is_404_naming_it_and_audited(client, engine) -> None:
    response = client.post("/api/v1/experiments/nope/promote?namespace=prod", headers=auth(OPERATOR_TOKEN))
    assert response.status_code == 404
    assert response.json() == {
        "detail": "Experiment 'nope' does not exist in namespace 'prod'",
        "error": "NotFoundError",
    }
    assert client.get("/api/v1/experiments/nope", headers=auth(VIEWER_TOKEN)).status_code == 404
    with Session(engine) as session:
        (entry,) = list_audit(session)
    assert (entry.target, entry.result) == (
        "Experiment prod/nope",
        "404 Experiment 'nope' does not exist in namespace 'prod'",
    )


def test_the_controls_steer_ab_rollouts_only_and_not_finished_ones(client, engine) -> None:
    response = client.post("/api/v1/experiments/btc-tuning/promote", headers=auth(OPERATOR_TOKEN))
    assert response.status_code == 400 and "type tuning" in response.json()["detail"]
    with Session(engine) as session:
        save_object_status(
            session,
            kind="Experiment",
            namespace="default",
            name="btc-ab",
            status={**ROLLOUT_STATUS, "phase": "RolledBack"},
            now=NOW,
        )
    response = client.post("/api/v1/experiments/btc-ab/promote", headers=auth(OPERATOR_TOKEN))
    assert response.status_code == 409 and "has finished (RolledBack)" in response.json()["detail"]
    assert controls(engine) is None and controls(engine, "btc-tuning") is None
