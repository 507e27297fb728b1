"""The tuning controller's decision: from an Experiment of type tuning, the Strategy it tunes and what the backend
observed of the current run, choose what to do next and when to look again.

Pure: no clock (``now`` is passed in), no I/O. The local supervisor (worker processes) and the operator (a
Kubernetes Job) observe into ``ObservedTuning`` and carry out the ``TuningAction``s; this module is why they behave
the same.

A run is one Optuna study, named after the Experiment, the run number and a fingerprint of its plan
(``study_name``). Its life:

1. **Start** (run 1, a cron firing, or an edit of what the study measures): render the plan, start
   ``budget.parallelism`` workers; ``status.tuning.runStartedAt`` is now, and ``budget.maxDuration`` counts from it.
2. **Tuning**: workers that are gone are started again while the study is not done (the study lives in its
   storage, so a restart of the controller or of a worker resumes it); a worker that keeps failing fails the run
   with its last error. The study is done when it holds ``maxTrials`` finished trials, when ``maxDuration`` has
   passed, or when a worker exits 0 (a worker exits 0 only once the study is done in its own view).
3. **Finalizing**: once no worker runs, the finalize step computes the walk-forward result, the deflated Sharpe
   ratio and the PBO, and writes the report.
4. **Completed**: the proposal is recorded with whether it passes ``spec.acceptance``; with ``promotion: ab`` an
   accepted proposal becomes a candidate Strategy and an A/B Experiment, both owned by this one (a rejected one is
   never promoted, and no controller rewrites the tuned Strategy's spec). With ``schedule.cron`` the next run is
   scheduled; it starts with a new study.

The plan of a run is a function of the Experiment, the tuned Strategy, the run number and its start time
(``render_plan``): the same inputs give the same plan, so a worker restarted later reads exactly what the first
ones did, and a plan whose fingerprint no longer matches the run's study means the spec changed under it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from croniter import croniter

from slsbot.api import Experiment, ExperimentStatus, RuntimeConfig, Strategy
from slsbot.api.base import Condition, ObjectRef, parse_duration
from slsbot.api.experiment import (
    Acceptance,
    ExperimentType,
    Promotion,
    TrialCounts,
    TuningProposal,
    TuningStatus,
    Variant,
)
from slsbot.api.resources import ObjectMeta
from slsbot.api.strategy import RuntimeSettings
from slsbot.domain.conditions import READY, get_condition, set_condition

# Phases of a tuning Experiment.
PENDING = "Pending"
TUNING = "Tuning"
FINALIZING = "Finalizing"
COMPLETED = "Completed"
FAILED = "Failed"
ACTIVE_PHASES = frozenset({TUNING, FINALIZING})

# Conditions besides Ready.
PROPOSAL_ACCEPTED = "ProposalAccepted"  # the last run's proposal passes spec.acceptance (False: why not)
PROMOTED = "Promoted"  # promotion: ab only: the candidate Strategy and its A/B Experiment exist

LABEL_EXPERIMENT = "slsbot.io/experiment"
LABEL_RUN = "slsbot.io/tuning-run"
_MAX_NAME = 63


@dataclass(frozen=True, slots=True)
class TuningPolicy:
    """How patient the controller is with a run's processes."""

    worker_failures: int = 3  # failed workers in one run before the run fails
    finalize_failures: int = 2  # failed finalize steps in one run before the run fails
    poll: timedelta = timedelta(seconds=5)  # how often a running study is looked at
    finalize_poll: timedelta = timedelta(seconds=2)
    stop_grace: timedelta = timedelta(minutes=2)  # how long workers may finish their trial once the study is done


# --- what the backend observes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StudySummary:
    """The study as its storage holds it (the engine's ``study_summary``)."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    best_value: float | None = None
    best_params: dict[str, Any] | None = None

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed


@dataclass(frozen=True, slots=True)
class ObservedWorkers:
    """A run's workers. ``restarts_itself``: the backend replaces a failed worker itself (a Kubernetes Job does,
    up to its backoff limit; local processes need the controller), and ``present`` says whether it exists at all."""

    running: int = 0
    succeeded: int = 0
    failed: int = 0
    last_error: str = ""
    restarts_itself: bool = False
    present: bool = False


class FinalizeState(StrEnum):
    ABSENT = "absent"  # never started in this run, or gone without a trace (a restart of the controller)
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # its result is there
    FAILED = "failed"  # it exited without a result; ``failures`` counts how often


@dataclass(frozen=True, slots=True)
class ObservedFinalize:
    state: FinalizeState = FinalizeState.ABSENT
    failures: int = 0
    last_error: str = ""
    result: dict[str, Any] | None = None  # the engine's TuningResult, as JSON
    report: str | None = None  # where a person finds the report (an admin API path, or a folder)


@dataclass(frozen=True, slots=True)
class ObservedTuning:
    study: StudySummary | None = None  # None: the study does not exist yet (no worker has created it)
    workers: ObservedWorkers = field(default_factory=ObservedWorkers)
    finalize: ObservedFinalize = field(default_factory=ObservedFinalize)


# --- what should run ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TuningDesired:
    """A valid tuning Experiment, the Strategy it tunes, that Strategy as a RuntimeConfig (the plan's base) and the
    folder of recorded candles the trials backtest on."""

    experiment: Experiment
    strategy: Strategy
    base: RuntimeConfig
    data_dir: str


@dataclass(frozen=True, slots=True)
class TuningRun:
    """One run: its study and the plan every worker and the finalize step read."""

    namespace: str
    experiment: str
    experiment_uid: str | None
    run: int
    study: str
    plan: dict[str, Any]
    parallelism: int
    runtime: RuntimeSettings  # the tuned Strategy's image and resources: the workers run its code


class TuningActionKind(StrEnum):
    START_WORKERS = "StartWorkers"
    STOP_WORKERS = "StopWorkers"
    START_FINALIZE = "StartFinalize"
    PROMOTE = "Promote"


@dataclass(frozen=True, slots=True)
class TuningAction:
    kind: TuningActionKind
    run: TuningRun
    count: int = 0  # START_WORKERS: how many
    candidate: Strategy | None = None  # PROMOTE
    rollout: Experiment | None = None  # PROMOTE


@dataclass(frozen=True, slots=True)
class TuningEvent:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(slots=True)
class TuningDecision:
    status: ExperimentStatus
    actions: list[TuningAction] = field(default_factory=list)
    events: list[TuningEvent] = field(default_factory=list)
    requeue_after: timedelta | None = None
    current: TuningRun | None = None  # the run the status describes after the actions


# --- the plan -------------------------------------------------------------------------------------------------

# What a plan holds that does not change what the study measures: two plans that differ only in these belong to
# the same study.
_RUN_FIELDS = ("deadline", "seed")


def render_plan(desired: TuningDesired, *, run: int, started_at: datetime) -> dict[str, Any]:
    """The engine's TuningPlan (``slsbot_runtime.tuning.plan``) for run ``run`` started at ``started_at``, as JSON:
    the same inputs always give the same plan."""
    spec = desired.experiment.spec
    objectives = [spec.objective] + ([spec.second_objective] if spec.second_objective is not None else [])
    base = desired.base.model_copy(update={"paused": False})
    deadline = _utc(started_at) + parse_duration(spec.budget.max_duration)
    plan: dict[str, Any] = {
        "base": base.to_wire(),
        "searchSpace": [p.to_wire() for p in spec.search_space],
        "objectives": [o.to_wire() for o in objectives],
        "sampler": str(spec.sampler),
        "pruning": bool(spec.pruning and len(objectives) == 1),
        "walkForward": spec.schedule.walk_forward.to_wire(),
        "dataDir": desired.data_dir,
        "maxTrials": spec.budget.max_trials,
        "deadline": _iso(deadline),
        "acceptance": spec.acceptance.to_wire(),
    }
    if spec.history.end is not None:
        plan["windowEnd"] = _iso(spec.history.end)
    plan["seed"] = _seed(desired.experiment, run, plan)
    return plan


def plan_fingerprint(plan: dict[str, Any]) -> str:
    """What the study measures, as 8 hex digits: the plan without its run's deadline and seed, and without the
    acceptance thresholds (they judge the result; they do not change the trials)."""
    measured = {key: value for key, value in plan.items() if key not in (*_RUN_FIELDS, "acceptance")}
    return hashlib.sha256(json.dumps(measured, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:8]


def study_name(namespace: str, experiment: str, run: int, fingerprint: str) -> str:
    """``<namespace>.<experiment>.r<run>-<fingerprint>``: unique across the namespaces that share a storage; a
    plan that measures something else is another study, even under the same run number."""
    return f"{namespace}.{experiment}.r{run}-{fingerprint}"


def _seed(experiment: Experiment, run: int, plan: dict[str, Any]) -> int:
    text = f"{experiment.namespace}/{experiment.name}/{run}/{plan_fingerprint(plan)}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def tuning_run(desired: TuningDesired, *, run: int, started_at: datetime) -> TuningRun:
    experiment = desired.experiment
    plan = render_plan(desired, run=run, started_at=started_at)
    return TuningRun(
        namespace=experiment.namespace,
        experiment=experiment.name,
        experiment_uid=experiment.metadata.uid,
        run=run,
        study=study_name(experiment.namespace, experiment.name, run, plan_fingerprint(plan)),
        plan=plan,
        parallelism=experiment.spec.budget.parallelism,
        runtime=desired.strategy.spec.runtime,
    )


# --- cron -----------------------------------------------------------------------------------------------------


def cron_problem(cron: str | None) -> str | None:
    """Why ``schedule.cron`` cannot be used (a message for the field), or None. Five fields, as crontab(5) reads
    them (day of week 0 or 7 is Sunday), in UTC."""
    if cron is None:
        return None
    hint = "write five fields, e.g. '0 3 * * 0' (Sundays, 03:00 UTC)"
    if len(cron.split()) != 5:
        return f"{cron!r} has {len(cron.split())} fields; {hint}"
    try:
        croniter(cron, datetime(2000, 1, 1, tzinfo=UTC))
    except (ValueError, KeyError) as exc:
        return f"{cron!r} is not a cron schedule ({exc}); {hint}"
    return None


def next_run_time(cron: str, after: datetime) -> datetime:
    """The first firing of ``cron`` (UTC) strictly after ``after``."""
    moment: datetime = croniter(cron, _utc(after)).get_next(datetime)
    return _utc(moment)


# --- the proposal ---------------------------------------------------------------------------------------------


def judge_proposal(result: dict[str, Any], acceptance: Acceptance) -> TuningProposal:
    """The finalize step's result (the engine's ``TuningResult`` as JSON: ``proposal.params``,
    ``proposal.inSampleValues``, ``outOfSample``, ``buyAndHold``, ``dsr``, ``pbo``, ``trialsCounted``) as the
    status's proposal, accepted when its deflated Sharpe ratio reaches
    ``acceptance.minDeflatedSharpe`` and its PBO does not exceed ``acceptance.maxPbo``, with the reason in words."""
    proposal = result.get("proposal") if isinstance(result.get("proposal"), dict) else {}
    params = proposal.get("params") or {}
    dsr = _number(result.get("dsr"))
    pbo = _number(result.get("pbo"))
    trials = result.get("trialsCounted")
    in_sample = proposal.get("inSampleValues")
    in_sample_value = _number(in_sample[0]) if isinstance(in_sample, list) and in_sample else None
    failures = []
    if not params:
        failures.append("the result proposes no parameters")
    if dsr is None:
        failures.append("the result carries no deflated Sharpe ratio")
    elif dsr < acceptance.min_deflated_sharpe:
        failures.append(
            f"deflated Sharpe {dsr:.3f} is below acceptance.minDeflatedSharpe {acceptance.min_deflated_sharpe:g}"
        )
    if pbo is None:
        failures.append("the result carries no probability of backtest overfitting")
    elif pbo > acceptance.max_pbo:
        failures.append(f"PBO {pbo:.3f} is above acceptance.maxPbo {acceptance.max_pbo:g}")
    if failures:
        reason = "rejected: " + "; ".join(failures)
    else:
        reason = (
            f"accepted: deflated Sharpe {dsr:.3f} >= {acceptance.min_deflated_sharpe:g} and PBO {pbo:.3f} <= "
            f"{acceptance.max_pbo:g}"
        )
    return TuningProposal(
        params=dict(params),
        in_sample_value=in_sample_value,
        out_of_sample=_mapping(result.get("outOfSample")),
        buy_and_hold=_mapping(result.get("buyAndHold")),
        deflated_sharpe=dsr,
        pbo=pbo,
        trials_counted=int(trials) if isinstance(trials, int | float) and not isinstance(trials, bool) else 0,
        accepted=not failures,
        reason=reason,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None  # NaN is no figure


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


# --- promotion ------------------------------------------------------------------------------------------------


def object_name(*parts: str) -> str:
    """``-``-joined ``parts``, shortened with a hash when longer than a DNS label's 63 characters."""
    name = "-".join(parts)
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def candidate_name(strategy: str, experiment: str, run: int) -> str:
    return object_name(strategy, experiment, f"r{run}")


def rollout_name(experiment: str, run: int) -> str:
    return object_name(experiment, f"r{run}", "ab")


def promotion_objects(
    experiment: Experiment, strategy: Strategy, proposal: TuningProposal, run: int
) -> tuple[Strategy, Experiment]:
    """The candidate Strategy (the tuned one's spec with the proposal's parameters) and the A/B Experiment that
    rolls it out against the tuned Strategy, with this Experiment's steps, step interval, trade count and
    significance. Neither touches the tuned Strategy itself."""
    changes: dict[str, dict[str, Any]] = {}
    for key, value in proposal.params.items():
        member, _, param = key.partition(".")
        changes.setdefault(member, {})[param] = value
    members = [
        m.model_copy(update={"params": {**m.params, **changes[m.name]}}) if m.name in changes else m
        for m in strategy.spec.ensemble.members
    ]
    spec = strategy.spec.model_copy(deep=True)
    spec.ensemble = spec.ensemble.model_copy(update={"members": members})
    spec.paused = False
    spec.allocation_percent = 0.0  # the rollout moves capital to it step by step; the account's sum stays whole
    labels = {LABEL_EXPERIMENT: experiment.name, LABEL_RUN: str(run)}
    name = candidate_name(strategy.name, experiment.name, run)
    candidate = Strategy(
        metadata=ObjectMeta(name=name, namespace=strategy.namespace, labels=labels),
        spec=type(spec).model_validate(spec.model_dump()),
    )
    schedule = experiment.spec.schedule
    rollout_spec = {
        "type": ExperimentType.AB,
        "strategyRef": ObjectRef(name=strategy.name),
        "variants": [
            Variant(name="baseline", strategy_ref=ObjectRef(name=strategy.name)),
            Variant(name="candidate", strategy_ref=ObjectRef(name=name)),
        ],
        "schedule": {
            "steps": list(schedule.steps),
            "stepInterval": schedule.step_interval,
            "minTrades": schedule.min_trades,
            "significance": schedule.significance,
        },
    }
    rollout = Experiment.model_validate(
        {
            "metadata": {
                "name": rollout_name(experiment.name, run),
                "namespace": experiment.namespace,
                "labels": labels,
            },
            "spec": _wire(rollout_spec),
        }
    )
    return candidate, rollout


def _wire(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    if hasattr(value, "to_wire"):
        return value.to_wire()
    return str(value) if isinstance(value, StrEnum) else value


# --- the decision ---------------------------------------------------------------------------------------------


def current_run(desired: TuningDesired, status: TuningStatus) -> TuningRun | None:
    """The run ``status`` describes, with the plan it started with; None before the first."""
    if status.run < 1 or status.run_started_at is None:
        return None
    run = tuning_run(desired, run=status.run, started_at=status.run_started_at)
    if status.study is not None and status.study != run.study:
        run = replace(run, study=status.study)  # the spec changed under it: the run keeps its own study
    return run


def run_phase(tuning: TuningStatus, previous_phase: str) -> str:
    """The phase ``tuning`` describes: Pending before the first run, Tuning or Finalizing while a run is on (the
    latter once the previous pass said so), then Completed (with a proposal) or Failed (without one). Derived from
    the run's own fields, so a pass that reported something else (an invalid edit) does not lose the run."""
    if tuning.run < 1 or tuning.run_started_at is None:
        return PENDING
    if tuning.run_finished_at is None:
        return FINALIZING if previous_phase == FINALIZING else TUNING
    return COMPLETED if tuning.proposal is not None else FAILED


def plan_tuning(
    desired: TuningDesired,
    observed: ObservedTuning,
    *,
    status: ExperimentStatus,
    now: datetime,
    policy: TuningPolicy | None = None,
) -> TuningDecision:
    """The next step of a valid tuning Experiment. ``status`` is the status so far (validated for this pass);
    ``observed`` describes the run it names (``status.tuning.study``)."""
    policy = policy or TuningPolicy()
    experiment = desired.experiment
    previous = experiment.status or ExperimentStatus()
    decision = TuningDecision(status=status.model_copy(deep=True))
    decision.status.tuning = (previous.tuning or TuningStatus()).model_copy(deep=True)
    tuning = decision.status.tuning
    decision.status.phase = run_phase(tuning, previous.phase)
    run = current_run(desired, tuning)
    if run is None:
        return _start_run(decision, desired, 1, now, "TuningStarted", "starting the first run")
    edited = experiment.metadata.generation != previous.observed_generation
    fresh = tuning_run(desired, run=run.run, started_at=tuning.run_started_at or now)
    measures_else = fresh.study != run.study
    if decision.status.phase in ACTIVE_PHASES:
        if measures_else:
            decision.actions.append(TuningAction(TuningActionKind.STOP_WORKERS, run))
            return _start_run(
                decision,
                desired,
                run.run + 1,
                now,
                "SpecChanged",
                f"what run {run.run} measures changed (the Experiment or Strategy {desired.strategy.name} was "
                f"edited): its study {run.study} is left as it is and run {run.run + 1} starts a new one",
            )
        decision.current = run
        if decision.status.phase == TUNING:
            return _tuning(decision, desired, run, observed, now, policy)
        return _finalizing(decision, desired, run, observed, now, policy)
    decision.current = run
    _finished_ready(decision, desired, run, previous, now)
    if edited and (measures_else or decision.status.phase == FAILED):
        return _start_run(
            decision,
            desired,
            run.run + 1,
            now,
            "SpecChanged",
            f"the Experiment was edited after run {run.run} "
            + ("failed" if decision.status.phase == FAILED else "and measures something else")
            + f": starting run {run.run + 1}",
        )
    if decision.status.phase == COMPLETED:
        _promote(decision, desired, run, now)
    due = tuning.next_run_at
    if due is not None and now >= due:
        return _start_run(
            decision, desired, run.run + 1, now, "TuningStarted", f"schedule.cron fired: starting run {run.run + 1}"
        )
    if due is not None:
        decision.requeue_after = min(due - now, timedelta(hours=1))
    return decision


def _start_run(
    decision: TuningDecision, desired: TuningDesired, number: int, now: datetime, reason: str, message: str
) -> TuningDecision:
    run = tuning_run(desired, run=number, started_at=now)
    decision.status.tuning = TuningStatus(study=run.study, run=number, run_started_at=now)
    decision.status.phase = TUNING
    decision.current = run
    decision.actions.append(TuningAction(TuningActionKind.START_WORKERS, run, count=run.parallelism))
    decision.events.append(
        TuningEvent(
            "Normal",
            reason,
            f"{message}: study {run.study}, {run.parallelism} worker(s), "
            f"at most {desired.experiment.spec.budget.max_trials} trials or "
            f"{desired.experiment.spec.budget.max_duration}",
        )
    )
    _ready(decision, desired, True, "Tuning", f"run {number}: study {run.study} is running", now)
    decision.status.conditions = [c for c in decision.status.conditions if c.type not in (PROPOSAL_ACCEPTED, PROMOTED)]
    decision.requeue_after = timedelta(seconds=1)
    return decision


def _tuning(
    decision: TuningDecision,
    desired: TuningDesired,
    run: TuningRun,
    observed: ObservedTuning,
    now: datetime,
    policy: TuningPolicy,
) -> TuningDecision:
    spec = desired.experiment.spec
    tuning = decision.status.tuning
    assert tuning is not None and tuning.run_started_at is not None
    _record_study(tuning, observed.study)
    workers = observed.workers
    finished = observed.study.finished if observed.study is not None else 0
    deadline = tuning.run_started_at + parse_duration(spec.budget.max_duration)
    done = finished >= spec.budget.max_trials or now >= deadline or workers.succeeded > 0
    if workers.failed >= policy.worker_failures and not done:
        decision.actions.append(TuningAction(TuningActionKind.STOP_WORKERS, run))
        why = f": {workers.last_error}" if workers.last_error else ""
        return _fail(
            decision,
            desired,
            "WorkerFailed",
            f"run {run.run}: tuning workers failed {workers.failed} times{why}",
            now,
        )
    progress = f"run {run.run}: {finished} of {spec.budget.max_trials} trials finished"
    if workers.running > 0:
        if done:
            if now >= deadline + policy.stop_grace:  # a trial that outlives maxDuration by this much is cut short
                decision.actions.append(TuningAction(TuningActionKind.STOP_WORKERS, run))
                _ready(decision, desired, True, "Tuning", f"{progress}; maxDuration passed: stopping the workers", now)
                decision.requeue_after = timedelta(seconds=1)
                return decision
            _ready(
                decision, desired, True, "Tuning", f"{progress}; waiting for the workers to finish their trials", now
            )
            decision.requeue_after = policy.finalize_poll
            return decision
        missing = 0 if workers.restarts_itself else run.parallelism - workers.running
        if missing > 0:
            decision.actions.append(TuningAction(TuningActionKind.START_WORKERS, run, count=missing))
        _ready(decision, desired, True, "Tuning", f"{progress}, {workers.running} worker(s) running", now)
        decision.requeue_after = min(policy.poll, max(deadline - now, timedelta(seconds=1)))
        return decision
    if not done:
        if workers.restarts_itself and workers.present:
            _ready(decision, desired, True, "Tuning", f"{progress}; waiting for the workers to start", now)
            decision.requeue_after = policy.poll
            return decision
        count = run.parallelism
        decision.actions.append(TuningAction(TuningActionKind.START_WORKERS, run, count=count))
        if workers.failed:
            decision.events.append(
                TuningEvent("Warning", "WorkerFailed", f"run {run.run}: a tuning worker failed: {workers.last_error}")
            )
        _ready(decision, desired, True, "Tuning", f"{progress}; starting {count} worker(s)", now)
        decision.requeue_after = policy.finalize_poll
        return decision
    decision.status.phase = FINALIZING
    why = (
        f"it holds {finished} finished trials"
        if finished >= spec.budget.max_trials
        else "budget.maxDuration passed"
        if now >= deadline
        else "its workers finished"
    )
    decision.events.append(TuningEvent("Normal", "Finalizing", f"run {run.run}: the study is done ({why}); finalizing"))
    return _finalizing(decision, desired, run, observed, now, policy)


def _finalizing(
    decision: TuningDecision,
    desired: TuningDesired,
    run: TuningRun,
    observed: ObservedTuning,
    now: datetime,
    policy: TuningPolicy,
) -> TuningDecision:
    tuning = decision.status.tuning
    assert tuning is not None
    _record_study(tuning, observed.study)
    final = observed.finalize
    if observed.workers.running > 0:  # a worker of a backend that restarts them, or one stopped late
        decision.actions.append(TuningAction(TuningActionKind.STOP_WORKERS, run))
    if final.state is FinalizeState.SUCCEEDED and final.result is not None:
        return _completed(decision, desired, run, final, now)
    if final.state is FinalizeState.RUNNING:
        _ready(decision, desired, True, "Finalizing", f"run {run.run}: computing the walk-forward result", now)
        decision.requeue_after = policy.finalize_poll
        return decision
    if final.failures >= policy.finalize_failures:
        why = f": {final.last_error}" if final.last_error else ""
        return _fail(
            decision,
            desired,
            "FinalizeFailed",
            f"run {run.run}: the finalize step failed {final.failures} times{why}",
            now,
        )
    decision.actions.append(TuningAction(TuningActionKind.START_FINALIZE, run))
    _ready(decision, desired, True, "Finalizing", f"run {run.run}: computing the walk-forward result", now)
    decision.requeue_after = policy.finalize_poll
    return decision


def _completed(
    decision: TuningDecision, desired: TuningDesired, run: TuningRun, final: ObservedFinalize, now: datetime
) -> TuningDecision:
    spec = desired.experiment.spec
    tuning = decision.status.tuning
    assert tuning is not None and final.result is not None
    proposal = judge_proposal(final.result, spec.acceptance)
    tuning.proposal = proposal
    tuning.report = final.report
    tuning.run_finished_at = now
    tuning.next_run_at = next_run_time(spec.schedule.cron, now) if spec.schedule.cron else None
    decision.status.phase = COMPLETED
    dsr = "n/a" if proposal.deflated_sharpe is None else f"{proposal.deflated_sharpe:.3f}"
    pbo = "n/a" if proposal.pbo is None else f"{proposal.pbo:.3f}"
    decision.events.append(
        TuningEvent(
            "Normal",
            "TuningCompleted",
            f"run {run.run}: proposal {_params(proposal.params)}, deflated Sharpe {dsr}, PBO {pbo}"
            + (f"; report {final.report}" if final.report else ""),
        )
    )
    if proposal.accepted:
        decision.events.append(TuningEvent("Normal", "ProposalAccepted", f"run {run.run}: {proposal.reason}"))
    else:
        decision.events.append(TuningEvent("Warning", "ProposalRejected", f"run {run.run}: {proposal.reason}"))
    decision.status.conditions = set_condition(
        decision.status.conditions,
        type=PROPOSAL_ACCEPTED,
        status=proposal.accepted,
        reason="Accepted" if proposal.accepted else "Rejected",
        message=proposal.reason,
        generation=desired.experiment.metadata.generation,
        now=now,
    )
    _ready(decision, desired, True, "Completed", _completed_message(run, proposal, tuning), now)
    _promote(decision, desired, run, now)
    if tuning.next_run_at is not None:
        decision.requeue_after = min(tuning.next_run_at - now, timedelta(hours=1))
    return decision


def _promote(decision: TuningDecision, desired: TuningDesired, run: TuningRun, now: datetime) -> None:
    """promotion: ab and an accepted proposal that is not promoted yet: create the candidate and its rollout. A
    manual promotion, or a rejected proposal, says so in the Promoted condition and does nothing."""
    spec = desired.experiment.spec
    tuning = decision.status.tuning
    assert tuning is not None
    proposal = tuning.proposal
    if proposal is None:
        return
    generation = desired.experiment.metadata.generation
    if spec.promotion != Promotion.AB:
        message = (
            "promotion is manual: apply the proposal yourself, or set spec.promotion to ab to roll it out as an A/B"
            " test"
        )
        decision.status.conditions = set_condition(
            decision.status.conditions,
            type=PROMOTED,
            status=False,
            reason="Manual",
            message=message,
            generation=generation,
            now=now,
        )
        return
    if not proposal.accepted:
        if _condition_reason(decision.status, PROMOTED) != "Rejected":
            decision.events.append(
                TuningEvent("Warning", "NotPromoted", f"run {run.run}: the proposal is not promoted: {proposal.reason}")
            )
        decision.status.conditions = set_condition(
            decision.status.conditions,
            type=PROMOTED,
            status=False,
            reason="Rejected",
            message=f"a rejected proposal is never promoted: {proposal.reason}",
            generation=generation,
            now=now,
        )
        return
    if tuning.candidate is not None and tuning.rollout is not None:
        return
    candidate, rollout = promotion_objects(desired.experiment, desired.strategy, proposal, run.run)
    decision.actions.append(TuningAction(TuningActionKind.PROMOTE, run, candidate=candidate, rollout=rollout))
    tuning.candidate = candidate.name
    tuning.rollout = rollout.name
    decision.events.append(
        TuningEvent(
            "Normal",
            "Promoted",
            f"run {run.run}: candidate Strategy {candidate.name} ({_params(proposal.params)}) and A/B Experiment "
            f"{rollout.name} against {desired.strategy.name} created",
        )
    )
    decision.status.conditions = set_condition(
        decision.status.conditions,
        type=PROMOTED,
        status=True,
        reason="Promoted",
        message=f"candidate Strategy {candidate.name} rolls out against {desired.strategy.name} in A/B Experiment "
        f"{rollout.name}",
        generation=generation,
        now=now,
    )


def _fail(decision: TuningDecision, desired: TuningDesired, reason: str, message: str, now: datetime) -> TuningDecision:
    spec = desired.experiment.spec
    tuning = decision.status.tuning
    assert tuning is not None
    decision.status.phase = FAILED
    tuning.run_finished_at = now
    tuning.next_run_at = next_run_time(spec.schedule.cron, now) if spec.schedule.cron else None
    decision.events.append(TuningEvent("Warning", reason, message))
    then = f"; the next run starts at {_iso(tuning.next_run_at)}" if tuning.next_run_at else "; edit the spec to retry"
    _ready(decision, desired, False, reason, message + then, now)
    decision.requeue_after = min(tuning.next_run_at - now, timedelta(hours=1)) if tuning.next_run_at else None
    return decision


def _record_study(tuning: TuningStatus, study: StudySummary | None) -> None:
    if study is None:
        return
    tuning.trials = TrialCounts(
        complete=study.complete, pruned=study.pruned, failed=study.failed, running=study.running
    )
    tuning.best_value = study.best_value
    tuning.best_params = dict(study.best_params) if study.best_params is not None else None


def _ready(
    decision: TuningDecision,
    desired: TuningDesired,
    ok: bool,
    reason: str,
    message: str,
    now: datetime,
    *,
    since: Sequence[Condition] | None = None,
) -> None:
    """Set Ready; ``since``: the stored conditions its transition time is measured against, in place of the status's
    own (which every pass's validation has set to ``Valid``)."""
    updated = set_condition(
        decision.status.conditions if since is None else since,
        type=READY,
        status=ok,
        reason=reason,
        message=message,
        generation=desired.experiment.metadata.generation,
        now=now,
    )
    if since is None:
        decision.status.conditions = updated
        return
    ready = get_condition(updated, READY)
    decision.status.conditions = [ready if c.type == READY else c for c in decision.status.conditions]


def _finished_ready(
    decision: TuningDecision, desired: TuningDesired, run: TuningRun, previous: ExperimentStatus, now: datetime
) -> None:
    """A finished run's Ready over the validation's ``Valid`` that every pass starts from, its transition time
    measured against the stored Ready: Completed with its proposal's verdict, rebuilt from the run's own fields; a
    failed run's as the pass that failed it wrote it, while the stored phase still says Failed (a pass that refused
    the spec in between wrote its own reason: that is not brought back)."""
    tuning = decision.status.tuning
    assert tuning is not None
    before = get_condition(previous.conditions, READY)
    if decision.status.phase == COMPLETED and tuning.proposal is not None:
        message = _completed_message(run, tuning.proposal, tuning)
        _ready(decision, desired, True, "Completed", message, now, since=previous.conditions)
    elif decision.status.phase == FAILED and previous.phase == FAILED and before is not None:
        ok = before.status == "True"
        _ready(decision, desired, ok, before.reason, before.message, now, since=previous.conditions)


def _condition_reason(status: ExperimentStatus, type: str) -> str | None:
    return next((c.reason for c in status.conditions if c.type == type), None)


def _completed_message(run: TuningRun, proposal: TuningProposal, tuning: TuningStatus) -> str:
    verdict = "accepted" if proposal.accepted else "rejected"
    then = f"; next run at {_iso(tuning.next_run_at)}" if tuning.next_run_at else ""
    return f"run {run.run} completed: proposal {_params(proposal.params)} {verdict}{then}"


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(params.items())) or "(none)"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else _utc(moment).isoformat().replace("+00:00", "Z")
