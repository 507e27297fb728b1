"""Events for a standing problem: reported once per spec (generation), not on every pass of the local supervisor,
which reconciles every object twice a second. A problem that goes away and comes back is a new occurrence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from slsbot.adapters.store import create_store_engine, list_events, sync_desired_objects
from slsbot.adapters.supervisor_store import SqlSupervisorStore
from slsbot.api import parse_resource
from slsbot.domain.plan import ObservedRuntime
from slsbot.domain.runtime_spec import build_runtime_config
from slsbot.services.reconcile import Catalog, reconcile_account, reconcile_experiment
from slsbot.services.supervisor import SupervisorOptions, supervise_once

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OPTIONS = SupervisorOptions(catalog=Catalog(known_exchanges={"binance"}, known_components={"sma_cross"}))


class IdleBackend:
    """No strategy here ever gets as far as the backend; any call would be a failure of the test."""

    def render_config(self, resolved: Any) -> Any:
        return build_runtime_config(resolved, state_path="/state/x.db", port=9000)

    def observe(self, namespace: str, name: str) -> ObservedRuntime:
        return ObservedRuntime()

    def execute(self, namespace: str, name: str, action: Any) -> None:
        raise AssertionError(f"nothing should run: {action}")


def doc(kind: str, name: str, spec: dict[str, Any], generation: int = 1) -> Any:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "generation": generation},
            "spec": spec,
        }
    )


def strategy(name: str, *, component: str = "sma_cross", account: str = "paper") -> Any:
    return doc(
        "Strategy",
        name,
        {
            "accountRef": {"name": account},
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": component}]},
        },
    )


ACCOUNT = doc("TradingAccount", "paper", {"exchange": "binance"})


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_store_engine(tmp_path / "supervisor.db")
    yield engine
    engine.dispose()


def load(engine, resources) -> None:
    with Session(engine) as session:
        sync_desired_objects(session, resources=resources, now=T0)


def events(engine, name: str) -> list[tuple[str, int]]:
    with Session(engine) as session:
        return [(e.reason, e.count) for e in list_events(session, name=name)]


def passes(engine, count: int, start: int = 0) -> None:
    store = SqlSupervisorStore(engine)
    for n in range(start, start + count):
        supervise_once(store=store, backend=IdleBackend(), now=T0 + timedelta(seconds=n / 2), options=OPTIONS)


def test_an_unknown_component_is_one_event_however_many_passes_see_it(engine) -> None:
    load(engine, [ACCOUNT, strategy("btc", component="sma_crosss"), strategy("eth", account="paper-binanc")])
    passes(engine, 10)
    assert events(engine, "btc") == [("InvalidSpec", 1)]
    assert events(engine, "eth") == [("WaitingForDependency", 1)]


def test_a_new_spec_with_the_same_problem_is_reported_again(engine) -> None:
    load(engine, [ACCOUNT, strategy("btc", component="sma_crosss")])
    passes(engine, 3)
    bad_again = strategy("btc", component="sma_crosss")
    bad_again.spec.symbols = ["ETH/USDT"]  # another spec: generation 2, still the unknown component
    load(engine, [ACCOUNT, bad_again])
    passes(engine, 3, start=3)
    assert events(engine, "btc") == [("InvalidSpec", 2)]


def test_a_problem_that_goes_and_comes_back_counts_twice(engine) -> None:
    load(engine, [doc("TradingAccount", "paper", {"exchange": "nowhere"})])
    passes(engine, 3)
    load(engine, [doc("TradingAccount", "paper", {"exchange": "binance"})])
    passes(engine, 3, start=3)
    load(engine, [doc("TradingAccount", "paper", {"exchange": "nowhere"})])
    passes(engine, 3, start=6)
    assert events(engine, "paper") == [("InvalidSpec", 2)]


def test_several_problems_of_one_object_do_not_alternate_into_new_rows(engine) -> None:
    """An A/B Experiment whose three Strategies are missing has three problems: three rows, each seen once."""
    ab = doc(
        "Experiment",
        "btc-ab",
        {
            "type": "ab",
            "strategyRef": {"name": "btc-base"},
            "variants": [
                {"name": "baseline", "strategyRef": {"name": "btc-base"}},
                {"name": "candidate", "strategyRef": {"name": "btc-candidate"}},
            ],
        },
    )
    load(engine, [ab])
    passes(engine, 6)
    assert sorted(events(engine, "btc-ab")) == [("WaitingForDependency", 1)] * 3


def test_validation_events_are_emitted_when_the_problem_is_new() -> None:
    account = doc("TradingAccount", "paper", {"exchange": "nowhere"})
    catalog = Catalog(known_exchanges={"binance"})
    first = reconcile_account(account, now=T0, catalog=catalog)
    assert [e.reason for e in first.events] == ["InvalidSpec"]
    account.status = first.status
    assert reconcile_account(account, now=T0, catalog=catalog).events == []
    experiment = doc(
        "Experiment",
        "tune",
        {
            "type": "tuning",
            "strategyRef": {"name": "missing"},
            "searchSpace": [{"name": "sma.fast", "type": "int", "low": 5, "high": 20}],
        },
    )
    first = reconcile_experiment(experiment, strategies={}, now=T0)
    assert [e.reason for e in first.events] == ["WaitingForDependency"]
    experiment.status = first.status
    assert reconcile_experiment(experiment, strategies={}, now=T0).events == []
