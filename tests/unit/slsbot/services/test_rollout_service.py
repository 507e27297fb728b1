"""reconcile_experiment for type ab (services.rollout) over in-memory implementations of its two ports: the service
is under test (observe, decide, act in order, report), not the ports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from slsbot.api import Experiment, RiskPolicy, Strategy, TradingAccount
from slsbot.api.base import Condition
from slsbot.api.resources import Resource
from slsbot.domain.conditions import get_condition
from slsbot.domain.errors import RuntimeUnreachable
from slsbot.domain.runtime_performance import PerformancePeriod as Period
from slsbot.domain.runtime_performance import RuntimePerformance as PerformanceReport
from slsbot.services.reconcile import ExperimentPorts, reconcile_experiment

NOW = datetime(2026, 3, 1, tzinfo=UTC)
T0 = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000
ACCOUNTS = {
    "paper": TradingAccount.model_validate(
        {"metadata": {"name": "paper"}, "spec": {"exchange": "binance", "riskPolicyRef": {"name": "tight"}}}
    ),
    "live": TradingAccount.model_validate({"metadata": {"name": "live"}, "spec": {"exchange": "binance"}}),
}
POLICIES = {"tight": RiskPolicy.model_validate({"metadata": {"name": "tight"}, "spec": {"maxDrawdownPercent": 20}})}


def _strategy(name: str, *, fast: int = 10, account: str = "paper", owner: str | None = None, **spec: Any):
    metadata: dict[str, Any] = {"name": name, "generation": 1}
    if owner is not None:
        metadata["ownerReferences"] = [{"apiVersion": "slsbot.io/v1alpha1", "kind": "Experiment", "name": owner}]
    ready = Condition(type="Ready", status="True", reason="RuntimeReady", last_transition_time=NOW)
    return Strategy.model_validate(
        {
            "metadata": metadata,
            "spec": {
                "accountRef": {"name": account},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": fast}}]},
                **spec,
            },
            "status": {"phase": "Running", "observedGeneration": 1, "conditions": [ready.to_wire()]},
        }
    )


def _experiment(**controls: Any) -> Experiment:
    return Experiment.model_validate(
        {
            "metadata": {"name": "btc-ab", "generation": 1},
            "spec": {
                "type": "ab",
                "strategyRef": {"name": "btc"},
                "variants": [
                    {"name": "baseline", "strategyRef": {"name": "btc"}},
                    {"name": "candidate", "strategyRef": {"name": "btc-v2"}},
                ],
                "schedule": {"steps": [10, 50, 100], "stepInterval": "2h", "minTrades": 1},
                **controls,
            },
        }
    )


@dataclass
class MemoryRuntimes:
    """``RolloutRuntimes`` in memory: each runtime's allocation, clock and one period per candle hour."""

    allocation: dict[str, float] = field(default_factory=lambda: {"btc": 100.0, "btc-v2": 0.0})
    clock: int = T0
    drawdown: dict[str, float] = field(default_factory=dict)
    unreachable: set[str] = field(default_factory=set)
    refuse_allocation: set[str] = field(default_factory=set)
    calls: list[tuple[str, float | None]] = field(default_factory=list)

    def performance(self, namespace: str, name: str, *, since: int) -> PerformanceReport:
        if name in self.unreachable:
            raise RuntimeUnreachable(f"GET http://127.0.0.1:1/performance failed: ConnectError ({name})")
        periods = tuple(
            Period(ts, 10_000.0, self.allocation[name] * 100, 0.001 if self.allocation[name] else None)
            for ts in range(T0 + HOUR, self.clock + 1, HOUR)
            if ts > since
        )
        return PerformanceReport(
            allocation_percent=self.allocation[name],
            last_candle_ts=self.clock,
            periods=periods,
            closed_trades=len(periods),
            drawdown_percent=self.drawdown.get(name, 0.0),
            breaker_level=0,
        )

    def set_allocation(self, namespace: str, name: str, percent: float | None) -> None:
        if name in self.refuse_allocation:
            raise RuntimeUnreachable(f"POST /allocation of {name} failed")
        self.calls.append((name, percent))
        self.allocation[name] = 100.0 if percent is None else percent


@dataclass
class MemoryOwnedObjects:
    """``OwnedObjects`` over a dict of Strategies (replace_spec moves the generation on, as both backends do)."""

    strategies: dict[str, Strategy]
    deleted: list[str] = field(default_factory=list)

    def apply_owned(self, resource: Resource[Any, Any], *, owner: Experiment) -> None:
        raise AssertionError("an A/B rollout creates nothing")

    def replace_spec(self, resource: Resource[Any, Any]) -> None:
        stored = self.strategies[resource.name]
        metadata = stored.metadata.model_copy(update={"generation": stored.metadata.generation + 1})
        self.strategies[resource.name] = stored.model_copy(update={"spec": resource.spec, "metadata": metadata})

    def delete(self, kind: str, namespace: str, name: str) -> None:
        assert kind == "Strategy"
        self.deleted.append(name)
        self.strategies.pop(name, None)


@dataclass
class World:
    experiment: Experiment
    strategies: dict[str, Strategy]
    runtimes: MemoryRuntimes = field(default_factory=MemoryRuntimes)

    def __post_init__(self) -> None:
        self.owned = MemoryOwnedObjects(self.strategies)

    def look(self):
        result = reconcile_experiment(
            self.experiment,
            strategies=dict(self.strategies),
            now=NOW,
            accounts=ACCOUNTS,
            policies=POLICIES,
            ports=ExperimentPorts(rollout=self.runtimes, owned=self.owned),
        )
        self.experiment = self.experiment.model_copy(update={"status": result.status})
        return result

    def ready(self, name: str) -> Condition:
        condition = get_condition(self.experiment.status.conditions, "Ready")
        assert condition is not None
        return condition


def _world(**controls: Any) -> World:
    return World(_experiment(**controls), {"btc": _strategy("btc"), "btc-v2": _strategy("btc-v2", fast=20)})


def test_an_ab_experiment_runs_its_rollout_through_the_ports():
    world = _world()
    result = world.look()
    assert world.runtimes.calls == [("btc", 90.0), ("btc-v2", 10.0)]
    assert result.status.phase == "Progressing"
    assert [e.reason for e in result.events] == ["StepStarted"]
    assert result.requeue_after == timedelta(seconds=2)
    world.runtimes.clock += 2 * HOUR
    world.look()
    assert world.runtimes.calls[-2:] == [("btc", 50.0), ("btc-v2", 50.0)]


def test_without_the_rollout_ports_an_ab_experiment_waits_saying_no_controller_runs_it():
    result = reconcile_experiment(
        _experiment(), strategies={"btc": _strategy("btc"), "btc-v2": _strategy("btc-v2")}, now=NOW
    )
    assert get_condition(result.status.conditions, "Ready").reason == "ControllerNotAvailable"


def test_variants_on_different_accounts_are_refused_and_nothing_moves():
    world = World(_experiment(), {"btc": _strategy("btc"), "btc-v2": _strategy("btc-v2", account="live")})
    result = world.look()
    assert result.status.phase == "Invalid"
    assert world.ready("Ready").reason == "InvalidSpec"
    assert "spec.variants[1].strategyRef.name" in world.ready("Ready").message
    assert world.runtimes.calls == [] and result.requeue_after is None
    assert [e.reason for e in result.events] == ["InvalidSpec"]


def test_a_strategy_gone_during_the_rollout_holds_the_capital_where_it_is():
    world = _world()
    world.look()
    del world.strategies["btc-v2"]
    calls = list(world.runtimes.calls)
    result = world.look()
    assert result.status.phase == "Progressing"  # not reset: step and test state are kept
    assert result.status.rollout.current_step_index == 0
    assert world.ready("Ready").reason == "WaitingForDependency"
    assert "holds where it is" in world.ready("Ready").message
    assert world.runtimes.calls == calls


def test_an_unreachable_runtime_is_waited_for_naming_it_and_nothing_moves():
    world = _world()
    world.runtimes.unreachable.add("btc-v2")
    result = world.look()
    assert world.runtimes.calls == []
    assert result.status.phase == "Pending" and result.requeue_after == timedelta(seconds=5)
    assert world.ready("Ready").reason == "WaitingForRuntime"
    assert "btc-v2" in world.ready("Ready").message and "Running" in world.ready("Ready").message
    assert len(world.look().events) == 0  # the same wait is an event once


def test_an_allocation_that_fails_stops_the_look_after_the_lowering_and_the_next_look_completes_it():
    world = _world()
    world.runtimes.refuse_allocation.add("btc-v2")
    result = world.look()
    assert world.runtimes.calls == [("btc", 90.0)]  # lowered first: the sum stays within the share
    assert sum(world.runtimes.allocation.values()) <= 100.0
    assert world.ready("Ready").reason == "RuntimeUnreachable"
    assert [e.reason for e in result.events] == ["StepStarted", "ActionFailed"]
    world.runtimes.refuse_allocation.clear()
    world.look()
    assert world.runtimes.allocation == {"btc": 90.0, "btc-v2": 10.0}
    assert world.ready("Ready").status == "True"


def test_the_drawdown_guard_is_the_candidates_effective_risk_policy():
    world = World(
        _experiment(),
        {"btc": _strategy("btc"), "btc-v2": _strategy("btc-v2", fast=20, risk={"maxDrawdownPercent": 16})},
    )
    world.look()
    world.runtimes.drawdown["btc-v2"] = 15.5  # within the override (the policy says 20)
    world.runtimes.clock += HOUR
    assert world.look().status.phase == "Progressing"
    world.runtimes.drawdown["btc-v2"] = 16.5
    result = world.look()
    assert result.status.phase == "RolledBack"
    assert "maxDrawdownPercent 16 %" in result.status.rollout.decisions[-1].reason
    assert world.runtimes.allocation == {"btc": 100.0, "btc-v2": 0.0}


def test_a_promotion_replaces_the_baselines_spec_and_deletes_the_candidate_the_experiment_owns():
    world = World(
        _experiment(promote=True), {"btc": _strategy("btc"), "btc-v2": _strategy("btc-v2", fast=20, owner="btc-ab")}
    )
    world.look()
    assert world.experiment.status.phase == "Promoting"
    assert world.strategies["btc"].spec.ensemble.members[0].params == {"fast": 20}
    assert world.strategies["btc"].metadata.generation == 2
    world.look()  # its reconciler has not rolled the new generation out yet
    assert world.experiment.status.phase == "Promoting" and world.owned.deleted == []
    status = world.strategies["btc"].status.model_copy(update={"observed_generation": 2})
    status.conditions = [c.model_copy(update={"observed_generation": 2}) for c in status.conditions]
    world.strategies["btc"] = world.strategies["btc"].model_copy(update={"status": status})
    result = world.look()
    assert result.status.phase == "Promoted"
    assert world.owned.deleted == ["btc-v2"]
    assert [e.reason for e in result.events] == ["Promoted"]
    result = world.look()  # finished: the candidate gone, nothing left to do
    assert result.status.phase == "Promoted" and result.events == []
    assert result.requeue_after == timedelta(minutes=5)


def test_a_candidate_someone_else_owns_is_left_without_capital_when_promoted():
    world = World(
        _experiment(promote=True), {"btc": _strategy("btc"), "btc-v2": _strategy("btc-v2", fast=20, owner="other")}
    )
    world.look()
    status = world.strategies["btc"].status.model_copy(update={"observed_generation": 2})
    status.conditions = [c.model_copy(update={"observed_generation": 2}) for c in status.conditions]
    world.strategies["btc"] = world.strategies["btc"].model_copy(update={"status": status})
    world.look()
    assert world.experiment.status.phase == "Promoted"
    assert world.owned.deleted == [] and world.runtimes.allocation["btc-v2"] == 0.0
    assert "stays, with no capital" in get_condition(world.experiment.status.conditions, "Progressing").message
