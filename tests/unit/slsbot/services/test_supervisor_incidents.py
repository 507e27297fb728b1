"""The supervisor's pass runs the incident rules over every runtime's last /status (as the process backend stores it)
and records incidents in the real SQLite store; the RiskPolicy's rules and recoverAfter apply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlmodel import Session

from slsbot.adapters.store import RuntimeRecord, create_store_engine, save_runtime_record, sync_desired_objects
from slsbot.adapters.supervisor_store import SqlIncidentStore, SqlRuntimeStatuses, SqlSupervisorStore
from slsbot.api import parse_resource
from slsbot.domain.plan import ObservedRuntime
from slsbot.domain.runtime_performance import PerformancePeriod, RuntimePerformance
from slsbot.domain.runtime_spec import build_runtime_config
from slsbot.services.incidents import DailyEquity, IncidentService, NotificationDirectory, PassIncidents
from slsbot.services.supervisor import SupervisorOptions, supervise_once

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class IdleBackend:
    """Runtimes that are never there: the pass's incidents step is under test, not the runtimes."""

    def render_config(self, resolved):
        return build_runtime_config(resolved, state_path=f"/state/{resolved.strategy.name}.db", port=9000)

    def observe(self, namespace, name):
        return ObservedRuntime()

    def execute(self, namespace, name, action):
        pass


class Performance:
    """Each bot's equity points, as its runtime's GET /performance would serve them."""

    def __init__(self, curves: dict[str, list[tuple[int, float]]]) -> None:
        self.curves = curves
        self.calls: list[tuple[str, int]] = []

    def performance(self, namespace: str, name: str, *, since: int) -> RuntimePerformance:
        self.calls.append((name, since))
        periods = tuple(
            PerformancePeriod(ts=ts, equity=eq, allocated_capital=eq, return_on_allocated=None)
            for ts, eq in self.curves.get(name, [])
            if ts > since
        )
        return RuntimePerformance(
            allocation_percent=50,
            last_candle_ts=None,
            periods=periods,
            closed_trades=0,
            drawdown_percent=0,
            breaker_level=0,
        )


def doc(kind: str, name: str, spec: dict[str, Any]) -> Any:
    return parse_resource({"apiVersion": "slsbot.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec})


def strategy(name: str) -> Any:
    return doc(
        "Strategy",
        name,
        {
            "accountRef": {"name": "paper"},
            "allocationPercent": 50,
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
        },
    )


POLICY = doc(
    "RiskPolicy",
    "risk",
    {"incidents": {"executionFailures": 2, "correlationThreshold": 0.9}, "healing": {"recoverAfter": "30s"}},
)
ACCOUNT = doc("TradingAccount", "paper", {"exchange": "binance", "riskPolicyRef": {"name": "risk"}})


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_store_engine(tmp_path / "supervisor.db")
    with Session(engine) as session:
        sync_desired_objects(session, resources=[POLICY, ACCOUNT, strategy("btc"), strategy("eth")], now=T0)
    yield engine
    engine.dispose()


def report_status(engine, name: str, status: dict[str, Any]) -> None:
    with Session(engine) as session:
        save_runtime_record(session, record=RuntimeRecord(namespace="default", name=name, last_status=status), now=T0)


def health(consecutive_failures: int) -> dict[str, Any]:
    return {"health": {"orders": {"consecutive_failures": consecutive_failures}, "reconcile": {"ok": True}}}


def test_the_pass_opens_an_incident_under_the_policys_rules_and_resolves_it_after_recover_after(engine) -> None:
    store = SqlIncidentStore(engine)
    incidents = PassIncidents(IncidentService(store, None), SqlRuntimeStatuses(engine), NotificationDirectory())
    supervisor_store, backend = SqlSupervisorStore(engine), IdleBackend()

    def run(at: datetime) -> None:
        report = supervise_once(
            store=supervisor_store, backend=backend, now=at, options=SupervisorOptions(), incidents=incidents
        )
        assert report.errors == []

    report_status(engine, "btc", health(1))
    report_status(engine, "eth", health(0))
    run(T0)
    assert store.active_incidents() == []
    report_status(engine, "btc", health(2))  # the policy's executionFailures is 2 (default 5)
    run(T0 + timedelta(seconds=1))
    (incident,) = store.active_incidents()
    assert (incident.spec.rule, incident.spec.severity, incident.spec.cause) == (
        "ExecutionFailure",
        1,
        "ExecutionFailure:default/btc",
    )
    assert incident.spec.objects == ["Strategy/btc", "TradingAccount/paper"]
    assert incident.status.recover_after_seconds == 30
    report_status(engine, "btc", health(0))
    run(T0 + timedelta(seconds=2))
    run(T0 + timedelta(seconds=31))
    assert store.active_incidents() != []
    run(T0 + timedelta(seconds=32))
    assert store.active_incidents() == []
    assert store.get_incident(incident.id).status.timeline[-1].actor == "slsbot"


def test_correlated_bots_of_one_account_from_their_performance_curves(engine) -> None:
    rng = np.random.default_rng(3)
    day = 86_400_000
    start = int(T0.timestamp() * 1000) - 30 * day
    moves = rng.normal(0, 0.01, 30)
    btc = [(start + i * day, 1000 * float(np.prod(1 + moves[: i + 1]))) for i in range(30)]
    eth = [(start + i * day, 1000 * float(np.prod(1 + 0.95 * moves[: i + 1]))) for i in range(30)]
    source = Performance({"btc": btc, "eth": eth})
    store = SqlIncidentStore(engine)
    incidents = PassIncidents(
        IncidentService(store, None), SqlRuntimeStatuses(engine), NotificationDirectory(), equity=DailyEquity(source)
    )
    supervise_once(
        store=SqlSupervisorStore(engine),
        backend=IdleBackend(),
        now=T0,
        options=SupervisorOptions(),
        incidents=incidents,
    )
    (incident,) = store.active_incidents()
    assert incident.spec.rule == "Correlation" and incident.spec.severity == 2
    assert incident.spec.cause == "Correlation:default/paper"
    # The curves are read once per 5 minutes, from where the last read ended.
    supervise_once(
        store=SqlSupervisorStore(engine),
        backend=IdleBackend(),
        now=T0 + timedelta(seconds=1),
        options=SupervisorOptions(),
        incidents=incidents,
    )
    assert sorted(source.calls) == [("btc", 0), ("eth", 0)]
    # Between two computations the last result stands: the incident does not clear.
    (still,) = store.active_incidents()
    assert still.id == incident.id and still.status.clear_since is None
