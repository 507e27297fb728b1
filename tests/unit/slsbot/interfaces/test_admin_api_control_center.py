"""The routes the Control Center reads and acts through, and the page itself, through FastAPI's TestClient against a
real store on a temporary SQLite file (``SqlAdminData``):

* ``GET /api/v1/fleet``: every bot's figures, its account's kill switch, its open incidents and its breaker;
* ``GET /api/v1/strategies/{name}/activity``: the equity curve, trades and risk decisions, from the state file of a
  runtime that is down (a real one, written by the runtime's own ``StateStore``);
* ``GET /api/v1/riskpolicies`` and ``POST /api/v1/riskpolicies/{name}/kill-switch``: refused for a viewer, done for
  an operator (an override over the YAML spec that the supervisor reads and a re-sync of the file keeps), audited;
* ``GET /ui``: the page, under a policy that allows only its own scripts, with no inline script."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session
from tests.fakes.state_files import CANDLES, write_state_file

from slsbot.adapters.processes import RuntimePaths
from slsbot.adapters.store import (
    RuntimeRecord,
    create_store_engine,
    get_stored_object,
    list_audit,
    save_object_status,
    save_runtime_record,
    sync_desired_objects,
)
from slsbot.adapters.supervisor_store import SqlSupervisorStore
from slsbot.api import RiskPolicy, parse_resource
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry, token_id
from slsbot.interfaces.admin_api.control_center import ASSETS

OPERATOR_TOKEN = "op-7Qx2v9LkT3mN8pR5sW1yZ4bC6dF0gH"
VIEWER_TOKEN = "vw-3Hj8Kl2Mn5Pq7Rs9Tu1Vw4Xy6Za0Bc"
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def resource(kind: str, name: str, spec: dict[str, Any]) -> Any:
    return parse_resource(
        {"apiVersion": "slsbot.io/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": "t"}, "spec": spec}
    )


def strategy(name: str, account: str) -> Any:
    spec = {
        "accountRef": {"name": account},
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
    }
    return resource("Strategy", name, spec)


OBJECTS = [
    resource("RiskPolicy", "acct-risk", {"scope": "account"}),
    resource("TradingAccount", "binance", {"exchange": "binance", "riskPolicyRef": {"name": "acct-risk"}}),
    resource("TradingAccount", "kraken", {"exchange": "kraken"}),
    strategy("a", "binance"),
    strategy("b", "kraken"),
]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def engine(state_dir: Path):
    state_dir.mkdir()
    engine = create_store_engine(state_dir / "supervisor.db")
    with Session(engine) as session:
        sync_desired_objects(session, resources=OBJECTS, now=NOW)
        save_object_status(
            session,
            kind="Strategy",
            namespace="t",
            name="a",
            now=NOW,
            status={"phase": "Running", "equity": 10_250.5, "drawdownPercent": 1.5, "maxDrawdownPercent": 4.0},
        )
        figures = {"pnl_today": -12.5, "total_exposure": 2_000.0, "breaker_level": 1, "trading_mode": "normal"}
        save_runtime_record(session, record=RuntimeRecord(namespace="t", name="a", last_status=figures), now=NOW)
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine, state_dir: Path) -> TestClient:
    tokens = TokenRegistry.from_tokens(operator=SecretStr(OPERATOR_TOKEN), viewer=SecretStr(VIEWER_TOKEN))
    return TestClient(create_app(engine=engine, tokens=tokens, runtime_client=None, state_dir=state_dir))


def test_the_fleet_shows_every_bot_with_its_figures_kill_switch_incidents_and_breaker(client: TestClient) -> None:
    assert client.get("/api/v1/fleet").status_code == 401
    service = client.app.state.incidents  # type: ignore[attr-defined]

    def signal(rule: str, *objects: str) -> IncidentSignal:
        return IncidentSignal(
            cause=f"{rule}:t/{objects[0]}",
            severity=2,
            rule=rule,
            namespace="t",
            objects=objects,
            message="seen",
            runbook="runbooks/drawdown.md",
            detected_at=NOW,
        )

    signals = [
        signal("Drawdown", "TradingAccount/binance"),  # the whole account: a's
        signal("LowConfidence", "Strategy/b", "TradingAccount/kraken"),  # b's
        signal("Slippage", "Strategy/gone", "TradingAccount/binance"),  # another Strategy's, not a's
    ]
    service.record_signals(signals, NOW, evaluated=("rules",))
    bots = {bot["name"]: bot for bot in client.get("/api/v1/fleet", headers=auth(VIEWER_TOKEN)).json()["bots"]}
    a, b = bots["a"], bots["b"]
    assert (a["phase"], a["equity"], a["drawdown_percent"], a["pnl_today"]) == ("Running", 10_250.5, 1.5, -12.5)
    assert (a["exposure"], a["breaker_level"], a["trading_mode"]) == (2_000.0, 1, "normal")
    assert (a["account"], a["risk_policy"], a["kill_switch"], a["open_incidents"]) == ("binance", "acct-risk", False, 1)
    assert (b["risk_policy"], b["kill_switch"], b["open_incidents"], b["pnl_today"]) == (None, False, 1, None)
    assert b["breaker_level"] is None  # its runtime reported nothing yet


def test_a_bots_activity_is_read_from_its_state_file_while_it_is_down(client: TestClient, state_dir: Path) -> None:
    write_state_file(RuntimePaths(state_dir / "t" / "a").state)
    answer = client.get("/api/v1/strategies/a/activity?limit=1", headers=auth(VIEWER_TOKEN))
    assert answer.status_code == 200 and answer.headers["X-Slsbot-Orders-Source"] == "state-file"
    body = answer.json()
    assert len(body["equity"]) == CANDLES and body["equity"][0][1] == 10_000.0
    assert [t["pnl"] for t in body["trades"]] == [pytest.approx(-52.0)]
    assert [d["rule"] for d in body["risk_decisions"]] == ["breaker_level_1"]
    assert body["breaker"]["level"] == 1
    missing = client.get("/api/v1/strategies/b/activity", headers=auth(VIEWER_TOKEN))
    assert missing.status_code == 404 and "no state file" in missing.json()["detail"]
    assert client.get("/api/v1/strategies/nope/activity", headers=auth(VIEWER_TOKEN)).status_code == 404


def kill_switch_in_force(engine) -> bool:
    """What the supervisor's next pass sees: the RiskPolicy as its store hands it out."""
    store = SqlSupervisorStore(engine)
    (policy,) = [o.resource for o in store.desired_objects() if isinstance(o.resource, RiskPolicy)]
    return policy.spec.kill_switch


def test_the_kill_switch_is_refused_for_a_viewer_set_by_an_operator_and_audited(client: TestClient, engine) -> None:
    path = "/api/v1/riskpolicies/acct-risk/kill-switch"
    refused = client.post(path, json={"on": True}, headers=auth(VIEWER_TOKEN))
    assert refused.status_code == 403 and "needs the operator role" in refused.json()["detail"]
    assert not kill_switch_in_force(engine)

    done = client.post(path, json={"on": True}, headers=auth(OPERATOR_TOKEN))
    assert done.status_code == 200
    assert (done.json()["kill_switch"], done.json()["kill_switch_override"]) == (True, True)
    assert kill_switch_in_force(engine)
    listed = client.get("/api/v1/riskpolicies", headers=auth(VIEWER_TOKEN)).json()
    assert [(p["name"], p["scope"], p["kill_switch"]) for p in listed] == [("acct-risk", "account", True)]
    fleet = client.get("/api/v1/fleet", headers=auth(VIEWER_TOKEN)).json()["bots"]
    assert [bot["kill_switch"] for bot in fleet] == [True, False]  # a's account names the policy; b's none

    with Session(engine) as session:  # the file applied again (unchanged, or edited) keeps the override
        sync_desired_objects(session, resources=OBJECTS, now=NOW)
        generation = get_stored_object(session, kind="RiskPolicy", namespace="t", name="acct-risk").generation
    assert kill_switch_in_force(engine) and generation == 2

    assert client.post(path, json={"on": False}, headers=auth(OPERATOR_TOKEN)).json()["kill_switch"] is False
    assert not kill_switch_in_force(engine)
    with Session(engine) as session:
        entries = [(e.actor, e.action, e.target, e.result) for e in reversed(list_audit(session))]
    action = "POST /api/v1/riskpolicies/{name}/kill-switch"
    assert entries == [
        (f"viewer:{token_id(VIEWER_TOKEN)}", action, "RiskPolicy */acct-risk", entries[0][3]),
        (f"operator:{token_id(OPERATOR_TOKEN)}", action, "RiskPolicy t/acct-risk", "200"),
        (f"operator:{token_id(OPERATOR_TOKEN)}", action, "RiskPolicy t/acct-risk", "200"),
    ]
    assert entries[0][3].startswith("403 ")


def test_a_bad_kill_switch_request_changes_nothing(client: TestClient, engine) -> None:
    for body in ({}, {"on": "maybe"}, {"on": True, "scope": "all"}):
        answer = client.post("/api/v1/riskpolicies/acct-risk/kill-switch", json=body, headers=auth(OPERATOR_TOKEN))
        assert answer.status_code == 422, body
    missing = client.post("/api/v1/riskpolicies/nope/kill-switch", json={"on": True}, headers=auth(OPERATOR_TOKEN))
    assert missing.status_code == 404 and "RiskPolicy 'nope'" in missing.json()["detail"]
    assert not kill_switch_in_force(engine)


def test_the_page_is_served_under_a_policy_that_allows_only_its_own_scripts(client: TestClient) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui"
    page = client.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "connect-src 'self'" in policy
    html = page.text
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/ui/assets/control-center.js" defer>']
    assert "<style" not in html and not re.search(r"<[^>]*\s(style|on[a-z]+)=", html)  # no inline style, no handler
    for asset in re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', html):
        served = client.get(asset)
        assert served.status_code == 200 and served.content == (ASSETS / asset.rsplit("/", 1)[1]).read_bytes()
    script = (ASSETS / "control-center.js").read_text()
    assert "innerHTML" not in script and "localStorage" not in script  # text only; the token stays in the tab
