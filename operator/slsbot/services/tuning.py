"""Reconcile one Experiment of type tuning: resolve the Strategy it tunes, check the plan with the engine, observe the
current run through the ``TuningRunner`` port, decide (``domain.tuning_plan``), carry the actions out, report.

The same function runs under the local supervisor (worker processes) and the operator (Kubernetes Jobs); promotion
writes through the ``OwnedObjects`` port, never to the tuned Strategy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from slsbot.api import Experiment, ExperimentStatus, RiskPolicy, Strategy, TradingAccount
from slsbot.domain.admission import ImageAllowList, check_image
from slsbot.domain.conditions import set_condition
from slsbot.domain.errors import BackendUnavailable, ConflictError
from slsbot.domain.ports import OwnedObjects, TuningRunner
from slsbot.domain.resolve import INVALID_SPEC, WAITING, Problem, resolve_strategy
from slsbot.domain.runtime_spec import build_runtime_config
from slsbot.domain.status import validation_status
from slsbot.domain.tuning_plan import (
    ACTIVE_PHASES,
    PROMOTED,
    ObservedTuning,
    TuningAction,
    TuningActionKind,
    TuningDesired,
    TuningPolicy,
    cron_problem,
    current_run,
    plan_tuning,
    render_plan,
    run_phase,
)

log = logging.getLogger(__name__)

RETRY = timedelta(seconds=5)
STORAGE_NOT_CONFIGURED = "StorageNotConfigured"
# The plan's fields as the Experiment names them: a refusal of "searchSpace[0].name" is about spec.searchSpace[0].name.
_PLAN_FIELDS = {
    "searchSpace": "spec.searchSpace",
    "objectives[0]": "spec.objective",
    "objectives[1]": "spec.secondObjective",
    "objectives": "spec.objective",
    "sampler": "spec.sampler",
    "pruning": "spec.pruning",
    "walkForward": "spec.schedule.walkForward",
    "dataDir": "spec.history.dataDir",
    "windowEnd": "spec.history.end",
    "maxTrials": "spec.budget.maxTrials",
    "acceptance": "spec.acceptance",
    "base": "spec.strategyRef.name",
}
_PLAN_FIELD = re.compile(r"^(?P<head>[A-Za-z]+(\[\d+\])?)(?P<rest>[.\[][^:]*)?: (?P<message>.*)$", re.DOTALL)


def reconcile_tuning(
    experiment: Experiment,
    *,
    strategies: Mapping[str, Strategy],
    accounts: Mapping[str, TradingAccount],
    policies: Mapping[str, RiskPolicy],
    runner: TuningRunner,
    owned: OwnedObjects | None,
    status: ExperimentStatus,
    now: datetime,
    policy: TuningPolicy | None = None,
    allowed_images: ImageAllowList | None = None,
) -> tuple[ExperimentStatus, list[tuple[str, str, str]], timedelta | None]:
    """One step of a tuning Experiment whose references are valid (``status`` is its validated status). Returns the
    new status, the events (type, reason, message) and when to look again."""
    generation = experiment.metadata.generation
    strategy = strategies[experiment.spec.strategy_ref.name]
    resolved = resolve_strategy(strategy, accounts, policies)
    if isinstance(resolved, list):
        problem = Problem(
            WAITING,
            "spec.strategyRef.name",
            f"Strategy {strategy.name!r} cannot run yet: {'; '.join(str(p) for p in resolved)}",
        )
        return _refused(experiment, [problem], now)
    base = build_runtime_config(
        resolved, state_path="state.db", port=0, host="127.0.0.1", default_data_dir=runner.default_data_dir()
    )
    data_dir = experiment.spec.history.data_dir or base.market_data.data_dir
    problems: list[Problem] = []
    if data_dir is None:
        problems.append(
            Problem(
                INVALID_SPEC,
                "spec.history.dataDir",
                f"no recorded candles to tune on: Strategy {strategy.name!r} has no marketData.dataDir and this "
                "backend has no default; set spec.history.dataDir",
            )
        )
    if allowed_images is not None:
        for refused_image in check_image(strategy.spec.runtime.image, allowed_images):
            message = f"the workers run Strategy {strategy.name!r}'s image: {refused_image.message}"
            problems.append(Problem(INVALID_SPEC, "spec.strategyRef.name", message))
    cron = cron_problem(experiment.spec.schedule.cron)
    if cron is not None:
        problems.append(Problem(INVALID_SPEC, "spec.schedule.cron", cron))
    if problems:
        return _refused(experiment, problems, now)
    assert data_dir is not None
    desired = TuningDesired(experiment=experiment, strategy=strategy, base=base, data_dir=data_dir)
    refused = [_plan_problem(line) for line in runner.plan_problems(render_plan(desired, run=1, started_at=now))]
    if refused:
        return _refused(experiment, refused, now)
    storage = runner.storage_problem()
    if storage is not None:
        status = status.model_copy(deep=True)
        status.phase = "Pending"
        status.conditions = set_condition(
            status.conditions,
            type="Ready",
            status=False,
            reason=STORAGE_NOT_CONFIGURED,
            message=storage,
            generation=generation,
            now=now,
        )
        return status, [("Warning", STORAGE_NOT_CONFIGURED, storage)], None
    tuning = (experiment.status.tuning if experiment.status is not None else None) or None
    observed = ObservedTuning()
    run = current_run(desired, tuning) if tuning is not None else None
    if run is not None and tuning is not None and run_phase(tuning, status_phase(experiment)) in ACTIVE_PHASES:
        observed = runner.observe(run)  # a finished run is not looked at: its processes are gone
    decision = plan_tuning(desired, observed, status=status, now=now, policy=policy)
    events = [(e.type, e.reason, e.message) for e in decision.events]
    for action in decision.actions:
        if action.kind is TuningActionKind.PROMOTE:
            failure = _promote(action, owned, experiment)
            if failure is not None:
                _promotion_failed(decision.status, failure, generation, now)
                events = [e for e in events if e[1] != "Promoted"] + [("Warning", "PromotionFailed", failure)]
                decision.requeue_after = min(decision.requeue_after or timedelta(seconds=30), timedelta(seconds=30))
            continue
        _execute(runner, action)
        log.info(
            "experiment %s/%s: %s run %d (study %s)",
            experiment.namespace,
            experiment.name,
            action.kind,
            action.run.run,
            action.run.study,
        )
    for _type, reason, message in events:  # as the rollout controller does: `slsbot up` shows what the Events say
        log.info("experiment %s/%s: %s: %s", experiment.namespace, experiment.name, reason, message)
    decision.status.observed_generation = generation
    return decision.status, events, decision.requeue_after


def status_phase(experiment: Experiment) -> str:
    return experiment.status.phase if experiment.status is not None else "Pending"


def _execute(runner: TuningRunner, action: TuningAction) -> None:
    if action.kind is TuningActionKind.START_WORKERS:
        runner.start_workers(action.run, action.count)
    elif action.kind is TuningActionKind.STOP_WORKERS:
        runner.stop_workers(action.run)
    elif action.kind is TuningActionKind.START_FINALIZE:
        runner.start_finalize(action.run)


def _promote(action: TuningAction, owned: OwnedObjects | None, experiment: Experiment) -> str | None:
    """Create the candidate Strategy and its A/B Experiment, owned by ``experiment``; why not, or None."""
    assert action.candidate is not None and action.rollout is not None
    if owned is None:
        return (
            "this backend cannot create owned objects yet, so promotion: ab cannot create the candidate; apply the "
            "proposal by hand"
        )
    try:
        owned.apply_owned(action.candidate, owner=experiment)
        owned.apply_owned(action.rollout, owner=experiment)
    except ConflictError as exc:
        return f"cannot create the candidate Strategy {action.candidate.name} or its A/B Experiment: {exc}"
    except BackendUnavailable as exc:
        return f"cannot reach the backend to create the candidate: {exc}"
    return None


def _promotion_failed(status: ExperimentStatus, why: str, generation: int, now: datetime) -> None:
    tuning = status.tuning
    assert tuning is not None
    tuning.candidate = None
    tuning.rollout = None
    status.conditions = set_condition(
        status.conditions,
        type=PROMOTED,
        status=False,
        reason="PromotionFailed",
        message=why,
        generation=generation,
        now=now,
    )


def _plan_problem(line: str) -> Problem:
    """The engine's refusal of a plan field as a Problem on the Experiment's field."""
    match = _PLAN_FIELD.match(line)
    if match is None:
        return Problem(INVALID_SPEC, "spec", line)
    head, rest, message = match["head"], match["rest"] or "", match["message"]
    field = _PLAN_FIELDS.get(head)
    if field is None:
        bare = head.split("[")[0]
        field = _PLAN_FIELDS.get(bare)
        rest = head[len(bare) :] + rest
    if field is None:
        return Problem(INVALID_SPEC, "spec", line)
    if head.startswith("base"):
        return Problem(INVALID_SPEC, field, f"the tuned Strategy's {head}{rest}: {message}")
    return Problem(INVALID_SPEC, f"{field}{rest}", message)


def _refused(
    experiment: Experiment, problems: list[Problem], now: datetime
) -> tuple[ExperimentStatus, list[tuple[str, str, str]], timedelta | None]:
    previous = experiment.status or ExperimentStatus()
    status = validation_status(previous, problems, generation=experiment.metadata.generation, now=now)
    assert isinstance(status, ExperimentStatus)
    events = [("Warning", p.reason, str(p)) for p in problems]
    requeue = None if problems[0].reason == INVALID_SPEC else RETRY * 6
    return status, events, requeue
