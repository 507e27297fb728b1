"""``GET /api/v1/accounts/overview`` through FastAPI's TestClient against a real store on a temporary SQLite file:
per account and in total, equity, exposure, PnL today and open incidents; viewer role."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from slsbot.adapters.store import RuntimeRecord, create_store_engine, save_runtime_record, sync_desired_objects
from slsbot.api import parse_resource
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry

VIEWER_TOKEN = "vw-3Hj8Kl2Mn5Pq7Rs9Tu1Vw4Xy6Za0Bc"
OPERATOR_TOKEN = "op-7Qx2v9LkT3mN8pR5sW1yZ4bC6dF0gH"
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def resource(kind: str, name: str, spec: dict[str, Any]) -> Any:
    return parse_resource(
        {"apiVersion": "slsbot.io/v1alpha1", "kind": kind, "metadata": {"name": name, "namespace": "t"}, "spec": spec}
    )


def strategy(name: str, account: str, percent: float) -> Any:
    spec = {
        "accountRef": {"name": account},
        "allocationPercent": percent,
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
    }
    return resource("Strategy", name, spec)


def status(equity: float, pnl: float, **exposure: float) -> dict[str, Any]:
    symbols = {k.replace("_", "/"): v for k, v in exposure.items()}
    return {
        "equity": equity,
        "exposure": symbols,
        "total_exposure": sum(symbols.values()),
        "pnl_today": pnl,
        "equity_day_start": equity - pnl,
        "allocation": {"percent": 50.0, "source": "spec", "specPercent": 50.0},
    }


@pytest.fixture
def client(tmp_path: Path):
    engine = create_store_engine(tmp_path / "supervisor.db")
    objects = [
        resource("RiskPolicy", "acct-risk", {"scope": "account"}),
        resource("TradingAccount", "binance", {"exchange": "binance", "riskPolicyRef": {"name": "acct-risk"}}),
        resource("TradingAccount", "kraken", {"exchange": "kraken"}),
        strategy("a", "binance", 50),
        strategy("b", "binance", 50),
        strategy("c", "kraken", 50),
    ]
    with Session(engine) as session:
        sync_desired_objects(session, resources=objects, now=NOW)
        for name, figures in (
            ("a", status(10_000.0, 120.0, BTC_USDT=2_000.0)),
            ("b", status(9_000.0, -20.0, BTC_USDT=500.0, ETH_USDT=1_000.0)),
        ):
            record = RuntimeRecord(namespace="t", name=name, pid=1, port=1, last_status=figures)
            save_runtime_record(session, record=record, now=NOW)
    tokens = TokenRegistry.from_tokens(operator=SecretStr(OPERATOR_TOKEN), viewer=SecretStr(VIEWER_TOKEN))
    app = create_app(engine=engine, tokens=tokens, runtime_client=None)  # type: ignore[arg-type]
    yield TestClient(app)
    engine.dispose()


def test_overview_per_account_and_in_total(client: TestClient) -> None:
    assert client.get("/api/v1/accounts/overview").status_code == 401
    answer = client.get("/api/v1/accounts/overview", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"})
    assert answer.status_code == 200
    body = answer.json()
    binance, kraken = body["accounts"]
    assert (binance["account"], binance["risk_policy"], kraken["account"]) == ("binance", "acct-risk", "kraken")
    assert binance["equity"] == 9_500.0  # 10,000 x 50 % + 9,000 x 50 %
    assert binance["exposure"] == {"BTC/USDT": 2_500.0, "ETH/USDT": 1_000.0}
    assert (binance["total_exposure"], binance["pnl_today"]) == (3_500.0, 100.0)
    assert (binance["strategies"], binance["runtimes_reporting"], binance["open_incidents"]) == (2, 2, 0)
    assert (kraken["strategies"], kraken["runtimes_reporting"], kraken["equity"]) == (1, 0, 0.0)  # c reports nothing
    assert body["total"]["total_exposure"] == 3_500.0 and body["total"]["strategies"] == 3
    assert body["total"]["open_incidents"] == 0


def incident(rule: str, *objects: str) -> IncidentSignal:
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


def test_open_incidents_count_per_account_through_its_strategies_and_once_in_total(client: TestClient) -> None:
    service = client.app.state.incidents  # type: ignore[attr-defined]
    signals = [
        incident("Slippage", "Strategy/a"),  # binance, through its Strategy
        incident("Drawdown", "Strategy/b", "TradingAccount/binance"),  # binance, counted once
        incident("Correlation", "TradingAccount/kraken"),
    ]
    service.record_signals(signals, NOW, evaluated=("rules",))
    body = client.get("/api/v1/accounts/overview", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).json()
    assert [a["open_incidents"] for a in body["accounts"]] == [2, 1] and body["total"]["open_incidents"] == 3
