"""The supervisor's status writes: at once when something a person acts on changes, figures at most every 2 s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from slsbot.adapters.store import create_store_engine, get_stored_object, sync_desired_objects
from slsbot.adapters.supervisor_store import FIGURES_EVERY, SqlSupervisorStore
from slsbot.api import StrategyStatus, parse_resource

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STRATEGY = {
    "apiVersion": "slsbot.io/v1alpha1",
    "kind": "Strategy",
    "metadata": {"name": "btc"},
    "spec": {
        "accountRef": {"name": "paper"},
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
    },
}


def test_figures_are_written_at_most_every_two_seconds_and_a_phase_change_at_once(tmp_path: Path) -> None:
    engine = create_store_engine(tmp_path / "supervisor.db")
    now = [T0]
    store = SqlSupervisorStore(engine, clock=lambda: now[0])
    with Session(engine) as session:
        sync_desired_objects(session, resources=[parse_resource(STRATEGY)], now=T0)

    def stored() -> dict:
        with Session(engine) as session:
            return get_stored_object(session, kind="Strategy", namespace="default", name="btc").status

    def record(**fields) -> bool:
        return store.record_status(kind="Strategy", namespace="default", name="btc", status=StrategyStatus(**fields))

    assert record(phase="Running", equity=10_000.0) is True
    now[0] += timedelta(seconds=0.5)
    assert record(phase="Running", equity=10_050.0) is False  # only a figure moved, 0.5 s later
    assert stored()["equity"] == 10_000.0
    now[0] += timedelta(seconds=0.5)
    assert record(phase="Degraded", equity=10_060.0) is True  # the phase: written at once, with the figures
    assert stored() == {
        "phase": "Degraded",
        "equity": 10_060.0,
        "observedGeneration": 0,
        "conditions": [],
        "restarts": 0,
    }
    now[0] += FIGURES_EVERY
    assert record(phase="Degraded", equity=10_070.0) is True
    assert stored()["equity"] == 10_070.0
    assert record(phase="Degraded", equity=10_070.0) is False  # nothing changed
    engine.dispose()
