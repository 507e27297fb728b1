"""reconcile_experiment for type tuning over an in-memory TuningRunner and an in-memory OwnedObjects: the service is
under test (resolution, refusals, execution of the plan's actions, promotion through the port), not the backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from slsbot.api import Experiment, RiskPolicy, Strategy, TradingAccount
from slsbot.api.resources import Resource
from slsbot.domain.admission import ImageAllowList
from slsbot.domain.conditions import READY, get_condition
from slsbot.domain.errors import BackendUnavailable, ConflictError
from slsbot.domain.tuning_plan import (
    PROMOTED,
    FinalizeState,
    ObservedFinalize,
    ObservedTuning,
    ObservedWorkers,
    StudySummary,
    TuningRun,
)
from slsbot.services.reconcile import ExperimentPorts, reconcile_experiment

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
RESULT = {"proposal": {"params": {"sma.fast": 14}}, "dsr": 0.99, "pbo": 0.1, "trialsCounted": 6}


@dataclass
class MemoryRunner:
    """Workers and finalize steps as counters; a run's study finishes when the test says so."""

    storage: str | None = None
    data_dir: str | None = "/data/default"
    refuse: list[str] = field(default_factory=list)
    workers: dict[str, int] = field(default_factory=dict)
    finished: dict[str, int] = field(default_factory=dict)
    finalized: set[str] = field(default_factory=set)
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    unavailable: bool = False

    def storage_problem(self) -> str | None:
        return self.storage

    def default_data_dir(self) -> str | None:
        return self.data_dir

    def plan_problems(self, plan: dict[str, Any]) -> list[str]:
        self.plans.append(plan)
        return list(self.refuse)

    def start_workers(self, run: TuningRun, count: int) -> None:
        self.calls.append(("start", run.study, count))
        self.workers[run.study] = self.workers.get(run.study, 0) + count

    def stop_workers(self, run: TuningRun) -> None:
        self.calls.append(("stop", run.study, 0))
        self.workers[run.study] = 0

    def start_finalize(self, run: TuningRun) -> None:
        self.calls.append(("finalize", run.study, 0))
        self.finalized.add(run.study)

    def observe(self, run: TuningRun) -> ObservedTuning:
        if self.unavailable:
            raise BackendUnavailable("the study storage does not answer")
        done = self.finished.get(run.study, 0)
        final = ObservedFinalize()
        if run.study in self.finalized:
            final = ObservedFinalize(FinalizeState.SUCCEEDED, result=RESULT, report="/api/v1/experiments/x/report")
        running = 0 if done >= 6 else self.workers.get(run.study, 0)
        return ObservedTuning(StudySummary(complete=done), ObservedWorkers(running=running), final)


@dataclass
class MemoryOwned:
    """The OwnedObjects port in memory: objects by (kind, name) with their owner."""

    objects: dict[tuple[str, str], tuple[Resource[Any, Any], str]] = field(default_factory=dict)
    conflict: bool = False

    def apply_owned(self, resource: Resource[Any, Any], *, owner: Experiment) -> None:
        key = (resource.kind, resource.name)
        if self.conflict or (key in self.objects and self.objects[key][1] != owner.name):
            raise ConflictError(f"{resource.kind} {resource.name} exists and is not owned by {owner.name}")
        self.objects[key] = (resource, owner.name)

    def replace_spec(self, resource: Resource[Any, Any]) -> None:
        raise AssertionError("a tuning run never rewrites a spec")

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.objects.pop((kind, name), None)


def tuned(data_dir: str | None = "/data/btc") -> Strategy:
    spec: dict[str, Any] = {
        "accountRef": {"name": "paper"},
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]},
    }
    if data_dir is not None:
        spec["marketData"] = {"dataDir": data_dir}
    return Strategy.model_validate({"metadata": {"name": "btc-trend"}, "spec": spec})


ACCOUNTS = {"paper": TradingAccount.model_validate({"metadata": {"name": "paper"}, "spec": {"exchange": "binance"}})}


def experiment(status: Any = None, **spec: Any) -> Experiment:
    return Experiment.model_validate(
        {
            "metadata": {"name": "btc-tuning", "uid": "uid-1"},
            "spec": {
                "type": "tuning",
                "strategyRef": {"name": "btc-trend"},
                "searchSpace": [{"name": "sma.fast", "type": "int", "low": 5, "high": 20}],
                "budget": {"maxTrials": 6, "parallelism": 2},
                **spec,
            },
            "status": status,
        }
    )


def reconcile(exp: Experiment, runner: MemoryRunner, owned: MemoryOwned | None = None, *, now=T0, strategy=None, **kw):
    return reconcile_experiment(
        exp,
        strategies={"btc-trend": strategy or tuned()},
        accounts=kw.get("accounts", ACCOUNTS),
        policies={},
        now=now,
        ports=ExperimentPorts(tuning=runner, owned=owned),
    )


def again(exp: Experiment, result) -> Experiment:
    return exp.model_copy(update={"status": result.status})


def test_without_a_tuning_runner_it_still_says_no_controller_runs_it():
    result = reconcile_experiment(experiment(), strategies={"btc-trend": tuned()}, now=T0)
    assert get_condition(result.status.conditions, READY).reason == "ControllerNotAvailable"


def test_a_run_from_start_to_its_proposal():
    runner, exp = MemoryRunner(), experiment()
    first = reconcile(exp, runner)
    assert runner.calls == [("start", first.status.tuning.study, 2)]
    assert [e.reason for e in first.events] == ["TuningStarted"]
    assert runner.plans[0]["dataDir"] == "/data/btc"  # the tuned Strategy's candles
    exp = again(exp, first)
    runner.finished[exp.status.tuning.study] = 6
    second = reconcile(exp, runner, now=T0 + timedelta(minutes=3))
    assert runner.calls[-1][0] == "finalize" and second.status.phase == "Finalizing"
    exp = again(exp, second)
    third = reconcile(exp, runner, now=T0 + timedelta(minutes=4))
    assert third.status.phase == "Completed"
    assert third.status.tuning.proposal.params == {"sma.fast": 14} and third.status.tuning.proposal.accepted
    assert third.status.tuning.trials.complete == 6
    assert [e.reason for e in third.events] == ["TuningCompleted", "ProposalAccepted"]


def test_the_backends_default_candles_serve_a_strategy_without_its_own():
    runner = MemoryRunner()
    reconcile(experiment(), runner, strategy=tuned(data_dir=None))
    assert runner.plans[0]["dataDir"] == "/data/default"


def test_no_candles_at_all_is_invalid_naming_history_data_dir():
    runner = MemoryRunner(data_dir=None)
    result = reconcile(experiment(), runner, strategy=tuned(data_dir=None))
    ready = get_condition(result.status.conditions, READY)
    assert (ready.reason, result.status.phase) == ("InvalidSpec", "Invalid")
    assert ready.message.startswith("spec.history.dataDir:") and runner.calls == []


def test_a_bad_cron_is_invalid_naming_the_field():
    result = reconcile(experiment(schedule={"cron": "every sunday"}), MemoryRunner())
    assert get_condition(result.status.conditions, READY).message.startswith("spec.schedule.cron: 'every sunday'")


def test_the_engines_refusal_of_the_plan_names_the_experiments_field():
    runner = MemoryRunner(refuse=["searchSpace[0].name: sma.fats: member sma (sma_cross) has no parameter 'fats'"])
    result = reconcile(experiment(), runner)
    ready = get_condition(result.status.conditions, READY)
    assert ready.reason == "InvalidSpec" and runner.calls == []
    assert ready.message == "spec.searchSpace[0].name: sma.fats: member sma (sma_cross) has no parameter 'fats'"
    assert result.requeue_after is None
    assert reconcile(again(experiment(), result), runner).events == []  # said once per spec


def test_a_strategy_that_cannot_run_makes_the_experiment_wait():
    result = reconcile(experiment(), MemoryRunner(), accounts={})
    ready = get_condition(result.status.conditions, READY)
    assert ready.reason == "WaitingForDependency" and "TradingAccount 'paper' does not exist" in ready.message
    assert result.requeue_after is not None


def test_without_a_study_storage_it_names_the_setting_and_starts_nothing():
    runner = MemoryRunner(storage="SLSBOT_OPERATOR_STUDY_STORAGE is not set: ...")
    result = reconcile(experiment(), runner)
    ready = get_condition(result.status.conditions, READY)
    assert (ready.status, ready.reason) == ("False", "StorageNotConfigured")
    assert "SLSBOT_OPERATOR_STUDY_STORAGE" in ready.message and runner.calls == []
    assert reconcile(again(experiment(), result), runner).events == []


def test_a_storage_that_does_not_answer_is_retried_with_the_status_kept():
    runner, exp = MemoryRunner(), experiment()
    exp = again(exp, reconcile(exp, runner))
    runner.unavailable = True
    result = reconcile(exp, runner, now=T0 + timedelta(minutes=1))
    assert result.status.tuning == exp.status.tuning and result.requeue_after == timedelta(seconds=5)
    assert [e.reason for e in result.events] == ["BackendUnavailable"]


def run_to_completion(exp: Experiment, runner: MemoryRunner, owned: MemoryOwned | None):
    exp = again(exp, reconcile(exp, runner, owned))
    runner.finished[exp.status.tuning.study] = 6
    exp = again(exp, reconcile(exp, runner, owned, now=T0 + timedelta(minutes=2)))
    return reconcile(exp, runner, owned, now=T0 + timedelta(minutes=3))


def test_promotion_ab_creates_the_candidate_and_its_rollout_owned_by_the_experiment():
    runner, owned = MemoryRunner(), MemoryOwned()
    result = run_to_completion(experiment(promotion="ab"), runner, owned)
    assert set(owned.objects) == {("Strategy", "btc-trend-btc-tuning-r1"), ("Experiment", "btc-tuning-r1-ab")}
    assert {owner for _, owner in owned.objects.values()} == {"btc-tuning"}
    candidate = owned.objects[("Strategy", "btc-trend-btc-tuning-r1")][0]
    assert candidate.spec.ensemble.members[0].params == {"fast": 14, "slow": 30}
    assert result.status.tuning.candidate == "btc-trend-btc-tuning-r1"
    assert get_condition(result.status.conditions, PROMOTED).status == "True"
    assert "Promoted" in [e.reason for e in result.events]


def test_a_promotion_that_conflicts_is_reported_and_not_recorded_as_done():
    runner, owned = MemoryRunner(), MemoryOwned(conflict=True)
    result = run_to_completion(experiment(promotion="ab"), runner, owned)
    promoted = get_condition(result.status.conditions, PROMOTED)
    assert promoted.reason == "PromotionFailed" and "is not owned by btc-tuning" in promoted.message
    assert result.status.tuning.candidate is None and result.status.tuning.rollout is None
    assert "PromotionFailed" in [e.reason for e in result.events] and "Promoted" not in [
        e.reason for e in result.events
    ]
    assert result.requeue_after == timedelta(seconds=30)
    owned.conflict = False
    retried = reconcile(again(experiment(promotion="ab"), result), runner, owned, now=T0 + timedelta(minutes=4))
    assert get_condition(retried.status.conditions, PROMOTED).status == "True" and len(owned.objects) == 2


def test_without_owned_objects_a_promotion_says_it_cannot_happen():
    result = run_to_completion(experiment(promotion="ab"), MemoryRunner(), None)
    assert get_condition(result.status.conditions, PROMOTED).reason == "PromotionFailed"


def test_an_unusable_policy_is_a_dependency_problem():
    policies = {"p": RiskPolicy.model_validate({"metadata": {"name": "p"}, "spec": {"maxSymbolExposurePercent": 200}})}
    accounts = {
        "paper": TradingAccount.model_validate(
            {"metadata": {"name": "paper"}, "spec": {"exchange": "binance", "riskPolicyRef": {"name": "p"}}}
        )
    }
    result = reconcile_experiment(
        experiment(),
        strategies={"btc-trend": tuned()},
        accounts=accounts,
        policies=policies,
        now=T0,
        ports=ExperimentPorts(tuning=MemoryRunner()),
    )
    assert get_condition(result.status.conditions, READY).reason == "WaitingForDependency"


def test_workers_run_only_an_allowed_image():
    runner = MemoryRunner()
    result = reconcile_experiment(
        experiment(),
        strategies={"btc-trend": tuned()},
        accounts=ACCOUNTS,
        policies={},
        now=T0,
        ports=ExperimentPorts(tuning=runner, allowed_images=ImageAllowList(("registry.example/other",))),
    )
    ready = get_condition(result.status.conditions, READY)
    assert ready.reason == "InvalidSpec" and ready.message.startswith("spec.strategyRef.name: the workers run")
    assert "is not an allowed runtime image" in ready.message and runner.calls == []


@dataclass
class FailingRunner(MemoryRunner):
    """Every worker fails: the run fails once three have (TuningPolicy.worker_failures)."""

    def observe(self, run: TuningRun) -> ObservedTuning:
        workers = ObservedWorkers(failed=self.workers.get(run.study, 0), last_error="exit 1")
        return ObservedTuning(StudySummary(complete=0), workers, ObservedFinalize())


@dataclass
class CountedFailures:
    """The TuningMetrics port, as adapters.control_metrics.TuningMetrics counts it."""

    reasons: list[str] = field(default_factory=list)

    def run_failed(self, reason: str) -> None:
        self.reasons.append(reason)


def test_a_run_that_fails_is_counted_once_by_its_reason() -> None:
    runner, counted = FailingRunner(), CountedFailures()
    exp = experiment()
    phases = []
    for minute in range(6):
        result = reconcile_experiment(
            exp,
            strategies={"btc-trend": tuned()},
            accounts=ACCOUNTS,
            policies={},
            now=T0 + timedelta(minutes=minute),
            ports=ExperimentPorts(tuning=runner, tuning_metrics=counted),
        )
        phases.append(result.status.phase)
        exp = again(exp, result)
    assert phases.count("Failed") >= 2  # it stays Failed (no cron): the passes after the first count nothing
    assert counted.reasons == ["WorkerFailed"]
