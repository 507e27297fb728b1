"""GET /api/v1/experiments/{name}/report and its pictures, through FastAPI's TestClient against a real store on a
temporary SQLite file and a report folder laid out as the local tuning runner writes it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from slsbot.adapters.store import create_store_engine, save_object_status, sync_desired_objects
from slsbot.adapters.tuning_processes import run_paths
from slsbot.api import parse_resource
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry

VIEWER_TOKEN = "vw-3Hj8Kl2Mn5Pq7Rs9Tu1Vw4Xy6Za0Bc"
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
PAGE = '<!doctype html><html><head><title>btc-tuning</title></head><body><img src="history.png"></body></html>'


def experiment(name: str, namespace: str = "default", type: str = "tuning") -> object:
    spec = {"type": type, "strategyRef": {"name": "btc-trend"}}
    if type == "tuning":
        spec["searchSpace"] = [{"name": "sma.fast", "type": "int", "low": 5, "high": 20}]
    else:
        spec["variants"] = [
            {"name": "a", "strategyRef": {"name": "btc-trend"}},
            {"name": "b", "strategyRef": {"name": "other"}},
        ]
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


@pytest.fixture
def client(tmp_path: Path):
    engine = create_store_engine(tmp_path / "supervisor.db")
    resources = [experiment("btc-tuning"), experiment("running"), experiment("btc-ab", type="ab")]
    with Session(engine) as session:
        sync_desired_objects(session, resources=resources, now=NOW)
        save_object_status(
            session,
            kind="Experiment",
            namespace="default",
            name="btc-tuning",
            now=NOW,
            status={"phase": "Completed", "tuning": {"run": 2, "report": "/api/v1/experiments/btc-tuning/report"}},
        )
        save_object_status(
            session,
            kind="Experiment",
            namespace="default",
            name="running",
            now=NOW,
            status={"phase": "Tuning", "tuning": {"run": 1}},
        )
    result = run_paths(tmp_path / "state" / "tuning", "default", "btc-tuning", 2).result_dir
    result.mkdir(parents=True)
    (result / "report.html").write_text(PAGE)
    (result / "history.png").write_bytes(PNG)
    (tmp_path / "state" / "secret.txt").write_text("not for you")
    tokens = TokenRegistry.from_tokens(viewer=SecretStr(VIEWER_TOKEN))
    app = create_app(engine=engine, tokens=tokens, runtime_client=None, state_dir=tmp_path / "state")  # type: ignore[arg-type]
    with TestClient(app, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}) as test_client:
        yield test_client
    engine.dispose()


def test_the_report_of_the_latest_run_is_served_with_its_pictures(client: TestClient) -> None:
    page = client.get("/api/v1/experiments/btc-tuning/report")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<head><base href="/api/v1/experiments/btc-tuning/report/"><title>' in page.text
    picture = client.get("/api/v1/experiments/btc-tuning/report/history.png")
    assert picture.status_code == 200 and picture.content == PNG and picture.headers["content-type"] == "image/png"


def test_the_report_needs_a_token(client: TestClient) -> None:
    assert client.get("/api/v1/experiments/btc-tuning/report", headers={"Authorization": ""}).status_code == 401


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/api/v1/experiments/running/report", "has no report yet (phase Tuning)"),
        ("/api/v1/experiments/btc-ab/report", "is not a tuning Experiment"),
        ("/api/v1/experiments/nope/report", "Experiment 'nope' does not exist"),
        ("/api/v1/experiments/btc-tuning/report/equity.png", "has no equity.png"),
        ("/api/v1/experiments/btc-tuning/report/secret.txt", "is not a file of a report"),
        ("/api/v1/experiments/btc-tuning/report/report.html", "is not a file of a report"),
    ],
)
def test_what_is_not_there_is_404_saying_why(client: TestClient, path: str, says: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404 and says in answer.json()["detail"]


def test_no_path_leads_out_of_the_report_folder(client: TestClient) -> None:
    for path in ("..%2F..%2F..%2Fsecret.txt", "..%2Fr1%2Fplan.json", "%2E%2E%2Fsecret.json"):
        answer = client.get(f"/api/v1/experiments/btc-tuning/report/{path}")
        assert answer.status_code == 404 and "not for you" not in answer.text
