"""The supervisor loop (supervise_once / run_supervisor) over the real SQLite store and an in-memory backend:
the loop is under test, the backend is a stand-in that records what it was asked to do."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from slsbot.adapters.store import create_store_engine, list_events, set_paused_override, sync_desired_objects
from slsbot.adapters.supervisor_store import SqlSupervisorStore
from slsbot.api import parse_resource
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.plan import ActionKind, BackoffPolicy, ObservedRuntime, RuntimeState
from slsbot.domain.runtime_spec import build_runtime_config
from slsbot.services.supervisor import SupervisorOptions, run_supervisor, supervise_once

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class MemoryBackend:
    """'Runtimes' are dict entries that are ready as soon as they are created."""

    runtimes: dict[str, ObservedRuntime] = field(default_factory=dict)
    executed: list[tuple[str, ActionKind]] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # names whose observe raises
    stopped: bool = False

    def render_config(self, resolved):
        return build_runtime_config(resolved, state_path=f"/state/{resolved.strategy.name}.db", port=9000)

    def observe(self, namespace, name):
        if name in self.broken:
            raise RuntimeError(f"process table of {name} is unreadable")
        return self.runtimes.get(name, ObservedRuntime())

    def execute(self, namespace, name, action):
        self.executed.append((name, action.kind))
        previous = self.runtimes.get(name, ObservedRuntime())
        if action.kind in (ActionKind.CREATE, ActionKind.UPDATE, ActionKind.RESTART):
            self.runtimes[name] = ObservedRuntime(
                state=RuntimeState.READY,
                config_hash=action.desired.config_hash,
                paused=action.desired.paused,
                restarts=previous.restarts + (action.kind is ActionKind.RESTART),
                consecutive_failures=previous.consecutive_failures,
                pid=1000 + len(self.executed),
                runtime_status={"equity": 10_000.0, "trade_count": 3, "open_positions": 1},
            )
        elif action.kind is ActionKind.SET_PAUSED:
            self.runtimes[name] = replace(previous, paused=action.desired.paused)
        elif action.kind is ActionKind.DRAIN:  # as the runtime reports itself once its drain completed
            drained = {"phase": "drained", "open_orders": 0, "open_positions": 0}
            self.runtimes[name] = replace(previous, runtime_status=drained)
        elif action.kind is ActionKind.DELETE:
            self.runtimes.pop(name, None)

    def crash(self, name: str, at: datetime) -> None:
        previous = self.runtimes[name]
        self.runtimes[name] = replace(
            previous,
            state=RuntimeState.EXITED,
            exited_at=at,
            pid=None,
            consecutive_failures=previous.consecutive_failures + 1,
        )

    def stop_all(self) -> None:
        self.stopped = True


def doc(kind: str, name: str, spec: dict[str, Any]) -> Any:
    return parse_resource({"apiVersion": "slsbot.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec})


def strategy(name: str, account: str = "paper") -> Any:
    return doc(
        "Strategy",
        name,
        {
            "accountRef": {"name": account},
            "allocationPercent": 50,  # two share an account in most tests here
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
        },
    )


ACCOUNT = doc("TradingAccount", "paper", {"exchange": "binance", "riskPolicyRef": {"name": "risk"}})
POLICY = doc("RiskPolicy", "risk", {})


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_store_engine(tmp_path / "supervisor.db")
    yield engine
    engine.dispose()


def load(engine, resources) -> None:
    with Session(engine) as session:
        sync_desired_objects(session, resources=resources, now=T0)


def status_of(store: SqlSupervisorStore, name: str) -> Any:
    return next(o.resource.status for o in store.desired_objects() if o.resource.name == name)


OPTIONS = SupervisorOptions(backoff=BackoffPolicy(base=timedelta(seconds=10), cap=timedelta(minutes=1)))


def test_every_strategy_is_created_then_reported_running(engine) -> None:
    load(engine, [POLICY, ACCOUNT, strategy("btc"), strategy("eth")])
    store, backend = SqlSupervisorStore(engine), MemoryBackend()
    report = supervise_once(store=store, backend=backend, now=T0, options=OPTIONS)
    assert sorted(report.actions) == ["Strategy default/btc: Create", "Strategy default/eth: Create"]
    assert status_of(store, "btc").phase == "Progressing"
    supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=1), options=OPTIONS)
    status = status_of(store, "btc")
    assert status.phase == "Running"
    assert (status.trade_count, status.equity, status.restarts) == (3, 10_000.0, 0)
    assert status_of(store, "paper").phase == "Ready"
    assert status_of(store, "paper").strategies == 2
    assert status_of(store, "risk").strategies == 2
    with Session(engine) as session:
        assert {(e.name, e.reason) for e in list_events(session)} == {("btc", "Creating"), ("eth", "Creating")}
    assert len(backend.executed) == 2  # nothing more to do on the second pass


def test_a_dead_runtime_is_restarted_in_the_pass_that_sees_it(engine) -> None:
    load(engine, [POLICY, ACCOUNT, strategy("btc")])
    store, backend = SqlSupervisorStore(engine), MemoryBackend()
    supervise_once(store=store, backend=backend, now=T0, options=OPTIONS)
    backend.crash("btc", at=T0 + timedelta(seconds=1))
    report = supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=1.5), options=OPTIONS)
    assert report.actions == ["Strategy default/btc: Restart"]
    supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=2), options=OPTIONS)
    status = status_of(store, "btc")
    assert (status.phase, status.restarts) == ("Running", 1)


def test_a_crash_loop_waits_out_the_backoff(engine) -> None:
    load(engine, [POLICY, ACCOUNT, strategy("btc")])
    store, backend = SqlSupervisorStore(engine), MemoryBackend()
    supervise_once(store=store, backend=backend, now=T0, options=OPTIONS)
    backend.crash("btc", at=T0)
    backend.crash("btc", at=T0)  # second failure in a row: 10 s backoff
    report = supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=9), options=OPTIONS)
    assert report.actions == []
    status = status_of(store, "btc")
    assert status.phase == "Degraded"
    assert any(c.reason == "BackOff" for c in status.conditions)
    report = supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=10), options=OPTIONS)
    assert report.actions == ["Strategy default/btc: Restart"]


def test_the_paused_override_reaches_the_runtime(engine) -> None:
    load(engine, [POLICY, ACCOUNT, strategy("btc")])
    store, backend = SqlSupervisorStore(engine), MemoryBackend()
    supervise_once(store=store, backend=backend, now=T0, options=OPTIONS)
    with Session(engine) as session:
        set_paused_override(session, namespace="default", name="btc", paused=True, now=T0)
    report = supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=1), options=OPTIONS)
    assert report.actions == ["Strategy default/btc: SetPaused"]
    supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=2), options=OPTIONS)
    assert status_of(store, "btc").phase == "Paused"
    assert backend.runtimes["btc"].paused is True


def test_a_strategy_removed_from_the_yaml_is_drained_deleted_and_forgotten(engine) -> None:
    load(engine, [POLICY, ACCOUNT, strategy("btc"), strategy("eth")])
    store, backend = SqlSupervisorStore(engine), MemoryBackend()
    supervise_once(store=store, backend=backend, now=T0, options=OPTIONS)
    load(engine, [POLICY, ACCOUNT, strategy("btc")])
    for second in range(1, 5):
        supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=second), options=OPTIONS)
    assert [kind for name, kind in backend.executed if name == "eth"] == [
        ActionKind.CREATE,
        ActionKind.DRAIN,
        ActionKind.DELETE,
    ]
    assert "eth" not in backend.runtimes
    assert [o.resource.name for o in store.desired_objects() if o.resource.kind == "Strategy"] == ["btc"]


def test_a_strategy_waiting_for_its_account_does_not_stop_the_others(engine) -> None:
    load(engine, [POLICY, ACCOUNT, strategy("btc"), strategy("orphan", account="missing")])
    store, backend = SqlSupervisorStore(engine), MemoryBackend(broken={"eth"})
    supervise_once(store=store, backend=backend, now=T0, options=OPTIONS)
    status = status_of(store, "orphan")
    assert status.phase == "Pending"
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert ready.reason == "WaitingForDependency" and "spec.accountRef.name" in ready.message
    assert ("btc", ActionKind.CREATE) in backend.executed


def test_an_unexpected_error_on_one_object_is_an_event_not_a_stop(engine) -> None:
    load(engine, [POLICY, ACCOUNT, strategy("btc"), strategy("eth")])
    store, backend = SqlSupervisorStore(engine), MemoryBackend(broken={"btc"})
    report = supervise_once(store=store, backend=backend, now=T0, options=OPTIONS)
    assert report.errors == ["Strategy default/btc: process table of btc is unreadable"]
    assert report.actions == ["Strategy default/eth: Create"]
    with Session(engine) as session:
        warning = list_events(session, name="btc")[0]
    assert (warning.type, warning.reason) == ("Warning", "ReconcileError")


def test_run_supervisor_passes_until_stopped_then_stops_every_runtime(engine) -> None:
    load(engine, [POLICY, ACCOUNT, strategy("btc")])
    store, backend = SqlSupervisorStore(engine), MemoryBackend()
    stop = threading.Event()
    ticks: list[datetime] = []

    def clock() -> datetime:
        ticks.append(T0 + timedelta(seconds=len(ticks)))
        if len(ticks) >= 3:
            stop.set()
        return ticks[-1]

    worker = threading.Thread(
        target=run_supervisor,
        kwargs={
            "store": store,
            "backend": backend,
            "options": SupervisorOptions(tick_interval=0.01),
            "stop": stop,
            "clock": clock,
        },
    )
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert len(ticks) == 3
    assert backend.executed == [("btc", ActionKind.CREATE)]
    assert backend.stopped is True


def test_experiments_are_validated_against_the_strategies_present(engine) -> None:
    store = SqlSupervisorStore(engine)
    tuning = {"type": "tuning", "strategyRef": {"name": "btc"}}
    load(
        engine,
        [
            ACCOUNT,
            POLICY,
            strategy("btc"),
            doc(
                "Experiment",
                "good",
                {**tuning, "searchSpace": [{"name": "sma.fast", "type": "int", "low": 5, "high": 9}]},
            ),
            doc(
                "Experiment",
                "typo",
                {**tuning, "searchSpace": [{"name": "ema.fast", "type": "int", "low": 5, "high": 9}]},
            ),
        ],
    )
    supervise_once(store=store, backend=MemoryBackend(), now=T0, options=OPTIONS)
    good, typo = status_of(store, "good"), status_of(store, "typo")
    assert good.conditions[0].reason == "ControllerNotAvailable" and good.phase == "Pending"
    assert typo.conditions[0].reason == "InvalidSpec"
    assert "spec.searchSpace[0].name" in typo.conditions[0].message


def test_a_runtime_that_never_gets_ready_cannot_hold_its_deletion_forever(engine) -> None:
    store, backend = SqlSupervisorStore(engine), MemoryBackend()
    load(engine, [ACCOUNT, POLICY, strategy("btc")])
    supervise_once(store=store, backend=backend, now=T0, options=OPTIONS)
    backend.runtimes["btc"] = replace(backend.runtimes["btc"], state=RuntimeState.STARTING)
    load(engine, [ACCOUNT, POLICY])  # btc removed from the YAML at T0
    supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=30), options=OPTIONS)
    assert ("btc", ActionKind.DELETE) not in backend.executed  # still waiting to drain
    supervise_once(store=store, backend=backend, now=T0 + timedelta(minutes=3), options=OPTIONS)
    assert ("btc", ActionKind.DELETE) in backend.executed


def test_strategies_that_claim_more_than_their_account_refuse_the_later_created_until_there_is_room(engine) -> None:
    def shared(name: str, percent: float) -> Any:
        resource = strategy(name)
        resource.spec.allocation_percent = percent
        return resource

    with Session(engine) as session:  # "zz-early" first: the earlier one wins although its name sorts last
        sync_desired_objects(session, resources=[POLICY, ACCOUNT, shared("zz-early", 70)], now=T0)
    with Session(engine) as session:
        later = [POLICY, ACCOUNT, shared("zz-early", 70), shared("aa-later", 50)]
        sync_desired_objects(session, resources=later, now=T0 + timedelta(seconds=1))
    store, backend = SqlSupervisorStore(engine), MemoryBackend()
    supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=2), options=OPTIONS)

    assert [name for name, _ in backend.executed] == ["zz-early"]
    refused = status_of(store, "aa-later")
    ready = next(c for c in refused.conditions if c.type == "Ready")
    assert ready.reason == "InvalidSpec"
    assert "spec.allocationPercent" in ready.message and "zz-early 70%" in ready.message
    assert "at most 30" in ready.message
    assert status_of(store, "paper").allocated_percent == 120

    with Session(engine) as session:  # the earlier one makes room: the later one starts on the next pass
        room = [POLICY, ACCOUNT, shared("zz-early", 50), shared("aa-later", 50)]
        sync_desired_objects(session, resources=room, now=T0 + timedelta(seconds=3))
    supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=4), options=OPTIONS)
    assert ("aa-later", ActionKind.CREATE) in backend.executed
    assert status_of(store, "paper").allocated_percent == 100


@dataclass
class CountingRunner:
    """A TuningRunner that counts looks at its run; workers never finish."""

    looks: int = 0
    started: list[int] = field(default_factory=list)
    stopped_all: bool = False
    retained: list[list[tuple[str, str]]] = field(default_factory=list)

    def storage_problem(self):
        return None

    def default_data_dir(self):
        return "/data"

    def plan_problems(self, plan):
        return []

    def start_workers(self, run, count):
        self.started.append(count)

    def stop_workers(self, run):
        pass

    def start_finalize(self, run):
        pass

    def observe(self, run):
        from slsbot.domain.tuning_plan import ObservedTuning, ObservedWorkers

        self.looks += 1
        return ObservedTuning(workers=ObservedWorkers(running=sum(self.started), present=True))

    def stop_all(self):
        self.stopped_all = True

    def retain(self, experiments):
        self.retained.append(list(experiments))


def test_a_tuning_experiment_is_looked_at_when_due_or_edited_not_on_every_pass(engine) -> None:
    from slsbot.services.reconcile import ExperimentPorts
    from slsbot.services.supervisor import ExperimentLooks

    store, runner, looks = SqlSupervisorStore(engine), CountingRunner(), ExperimentLooks()
    spec = {
        "type": "tuning",
        "strategyRef": {"name": "btc"},
        "searchSpace": [{"name": "sma.fast", "type": "int", "low": 5, "high": 9}],
        "budget": {"parallelism": 2},
    }
    load(engine, [ACCOUNT, POLICY, strategy("btc"), doc("Experiment", "tune", spec)])
    ports = ExperimentPorts(tuning=runner)

    def tick(at: datetime) -> None:
        supervise_once(
            store=store, backend=MemoryBackend(), now=at, options=OPTIONS, experiment_ports=ports, looks=looks
        )

    tick(T0)
    assert runner.started == [2] and status_of(store, "tune").phase == "Tuning"
    for half_seconds in range(1, 9):  # four seconds of passes: not due yet (it asked for 1 s, then 5 s)
        tick(T0 + timedelta(seconds=0.5 * half_seconds))
    assert runner.looks == 1
    tick(T0 + timedelta(seconds=6.5))
    assert runner.looks == 2
    load(engine, [ACCOUNT, POLICY, strategy("btc"), doc("Experiment", "tune", {**spec, "budget": {"parallelism": 3}})])
    tick(T0 + timedelta(seconds=7))  # edited: looked at at once, and a third worker started
    assert runner.looks == 3 and runner.started == [2, 1]
    assert runner.retained[-1] == [("default", "tune")]
    load(engine, [ACCOUNT, POLICY, strategy("btc")])
    tick(T0 + timedelta(seconds=8))
    assert runner.retained[-1] == []  # its processes are stopped


def test_run_supervisor_stops_the_tuning_processes_when_it_stops(engine) -> None:
    from slsbot.services.reconcile import ExperimentPorts

    runner, stop = CountingRunner(), threading.Event()
    stop.set()
    run_supervisor(
        store=SqlSupervisorStore(engine),
        backend=MemoryBackend(),
        options=OPTIONS,
        stop=stop,
        experiment_ports=ExperimentPorts(tuning=runner),
    )
    assert runner.stopped_all


def test_the_healing_hooks_take_the_signals_naming_a_strategy_and_get_the_ladders_incident(engine) -> None:
    """``strategy_signals`` feeds the ladder (a severity-1 signal halts); the ladder's Incident rung, a rungTimeout
    (2 m) later, goes to ``record_signals``; the measurements go to ``healing_metrics``."""
    load(engine, [POLICY, ACCOUNT, strategy("btc"), strategy("eth")])
    store, backend = SqlSupervisorStore(engine), MemoryBackend()
    critical = IncidentSignal(
        cause="LiquidationRisk:default/btc",
        severity=1,
        rule="LiquidationRisk",
        namespace="default",
        objects=("Strategy/btc",),
        message="margin used 71% > 50%",
        runbook="runbooks/liquidation-risk.md",
        detected_at=T0,
    )
    recorded: list[tuple[list, datetime]] = []
    rungs: list[tuple[str, str]] = []

    class Metrics:
        def detected(self, cause, seconds):
            pass

        def recovered(self, cause, seconds):
            pass

        def rung_entered(self, cause, rung):
            rungs.append((cause, rung))

    options = replace(
        OPTIONS,
        strategy_signals=lambda s: [critical] if s.name == "btc" else [],
        record_signals=lambda signals, now: recorded.append((list(signals), now)),
        healing_metrics=Metrics(),
    )
    supervise_once(store=store, backend=backend, now=T0, options=options)  # created
    report = supervise_once(store=store, backend=backend, now=T0 + timedelta(seconds=1), options=options)
    assert report.actions == ["Strategy default/btc: SetTradingMode"]  # eth is left alone
    assert status_of(store, "btc").healing.rung == "Halt"
    # called once per pass, with every Strategy's Incident-rung signals (none yet): what is absent may clear
    assert [(signals, at) for signals, at in recorded] == [([], T0), ([], T0 + timedelta(seconds=1))]
    assert rungs == [("LiquidationRisk", "Halt")]
    later = T0 + timedelta(minutes=2, seconds=1)
    supervise_once(store=store, backend=backend, now=later, options=options)
    assert status_of(store, "btc").healing.rung == "Incident"
    signals, at = recorded[-1]
    assert at == later and [s.rule for s in signals] == ["HealingLiquidationRisk"] and signals[0].severity == 1
