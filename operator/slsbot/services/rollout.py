"""Reconcile one A/B Experiment (``type: ab``): observe both variants' runtimes through the ports, decide with
``domain.rollout_plan.plan_rollout``, carry out its actions in order, report.

The same function runs under the kopf operator and the local supervisor; only the ports differ
(``RolloutRuntimes``: the runtimes' ``/performance`` and ``/allocation``; ``OwnedObjects``: the baseline's spec at a
promotion, and the candidate's deletion when the Experiment owns it); ``services.reconcile.reconcile_experiment``
hands type ab here when both are given (``ExperimentPorts``).

A failed action stops the look: the status still records the decision (the allocations are reconciled from what
the runtimes report on every look, so the next one completes what this one could not), and a Warning says what
failed. A spec or reference that goes bad during a rollout leaves the capital where it is (Ready=False names the
problem); a finished rollout no longer needs its Strategies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from slsbot.api import Experiment, ExperimentStatus, RiskPolicy, RiskPolicySpec, Strategy, TradingAccount
from slsbot.domain.conditions import READY, set_condition
from slsbot.domain.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidSpecError,
    NotFoundError,
    RuntimeUnreachable,
)
from slsbot.domain.ports import OwnedObjects, RolloutRuntimes
from slsbot.domain.promotion import owned_by
from slsbot.domain.resolve import INVALID_SPEC, Problem, resolve_strategy
from slsbot.domain.rollout_plan import (
    FINISHED,
    RolloutAction,
    RolloutActionKind,
    RolloutObserved,
    RolloutPhase,
    performance_since,
    plan_rollout,
)
from slsbot.domain.runtime_performance import RuntimePerformance
from slsbot.domain.status import validation_status
from slsbot.services.reconcile import Event, ReconcileResult
from slsbot.services.reconcile import _news as news

log = logging.getLogger(__name__)

RUNTIME_RETRY = timedelta(seconds=5)
WAITING_REQUEUE = timedelta(seconds=30)
# Phases in which capital has moved: a problem then holds the rollout where it is instead of resetting it.
MOVED = frozenset({RolloutPhase.PROGRESSING, RolloutPhase.PAUSED, RolloutPhase.PROMOTING})


def reconcile_rollout(
    experiment: Experiment,
    *,
    problems: list[Problem],
    strategies: Mapping[str, Strategy],
    accounts: Mapping[str, TradingAccount],
    policies: Mapping[str, RiskPolicy],
    runtimes: RolloutRuntimes,
    owned: OwnedObjects,
    now: datetime,
) -> ReconcileResult:
    """One look at an A/B rollout whose references were checked (``problems``)."""
    previous = experiment.status or ExperimentStatus()
    phase = _phase(previous.phase)
    finished = phase in FINISHED
    if problems and not finished:
        return _cannot_look(experiment, problems, moved=phase in MOVED, now=now)
    spec = experiment.spec
    assert spec.baseline is not None and spec.candidate is not None  # the API model makes sure
    baseline = strategies.get(spec.baseline.strategy_ref.name)
    candidate = strategies.get(spec.candidate.strategy_ref.name)
    if baseline is None:  # a finished rollout whose baseline was deleted since: nothing left to keep
        return ReconcileResult(status=previous.model_copy(deep=True), requeue_after=WAITING_REQUEUE)
    since = performance_since(experiment, now=now)
    reports: dict[str, RuntimePerformance | None] = {}
    for strategy in (baseline, candidate):
        if strategy is None:
            continue
        try:
            reports[strategy.name] = runtimes.performance(strategy.namespace, strategy.name, since=since)
        except (RuntimeUnreachable, BackendUnavailable) as exc:
            if not finished:
                return _unreachable(experiment, strategy, exc, now=now)
            reports[strategy.name] = None
    observed = RolloutObserved(
        baseline=baseline,
        candidate=candidate,
        baseline_report=reports.get(baseline.name),
        candidate_report=reports.get(candidate.name) if candidate is not None else None,
        drawdown_guard_percent=_drawdown_guard(candidate, accounts, policies),
        candidate_owned=candidate is not None and owned_by(candidate, experiment),
        candidate_incidents=(),  # incidents come in a later issue; a severity-1 one will roll back at once
    )
    plan = plan_rollout(experiment, observed, now=now)
    events = [Event(e.type, e.reason, e.message) for e in plan.events]
    for action in plan.actions:
        try:
            _execute(action, experiment, baseline, runtimes, owned)
        except (ConflictError, RuntimeUnreachable, BackendUnavailable, NotFoundError, InvalidSpecError) as exc:
            why = f"{action.kind} {action.strategy} failed: {exc}; the next look tries again"
            log.warning("experiment %s/%s: %s", experiment.namespace, experiment.name, why)
            status = plan.status
            status.conditions = set_condition(
                status.conditions,
                type=READY,
                status=False,
                reason=type(exc).__name__,
                message=why,
                generation=experiment.metadata.generation,
                now=now,
            )
            after = timedelta(0) if isinstance(exc, ConflictError) else RUNTIME_RETRY
            return ReconcileResult(
                status=status, events=[*events, Event("Warning", "ActionFailed", why)], requeue_after=after
            )
    for event in events:
        log.info("experiment %s/%s: %s: %s", experiment.namespace, experiment.name, event.reason, event.message)
    return ReconcileResult(status=plan.status, events=events, requeue_after=plan.requeue_after)


def _execute(
    action: RolloutAction, experiment: Experiment, baseline: Strategy, runtimes: RolloutRuntimes, owned: OwnedObjects
) -> None:
    namespace = experiment.namespace
    if action.kind is RolloutActionKind.SET_ALLOCATION:
        runtimes.set_allocation(namespace, action.strategy, action.percent)
    elif action.kind is RolloutActionKind.REPLACE_SPEC:
        assert action.spec is not None and action.strategy == baseline.name
        owned.replace_spec(baseline.model_copy(update={"spec": action.spec}))
    elif action.kind is RolloutActionKind.DELETE:
        owned.delete("Strategy", namespace, action.strategy)


def _phase(text: str) -> RolloutPhase | None:
    try:
        return RolloutPhase(text)
    except ValueError:
        return None


def _drawdown_guard(
    candidate: Strategy | None, accounts: Mapping[str, TradingAccount], policies: Mapping[str, RiskPolicy]
) -> float:
    """The candidate's effective maxDrawdownPercent (its account's RiskPolicy with its overrides)."""
    if candidate is not None:
        resolved = resolve_strategy(candidate, accounts, policies)
        if not isinstance(resolved, list):
            return resolved.policy.max_drawdown_percent
    return RiskPolicySpec().max_drawdown_percent


def _cannot_look(experiment: Experiment, problems: list[Problem], *, moved: bool, now: datetime) -> ReconcileResult:
    """The spec or a Strategy it names is wrong or missing. Before any capital moved: the validation's status, as
    for any Experiment. After: the rollout holds where it is (phase kept), Ready=False says why."""
    previous = experiment.status or ExperimentStatus()
    generation = experiment.metadata.generation
    message = "; ".join(str(p) for p in problems)
    if moved:
        status = previous.model_copy(deep=True)
        status.conditions = set_condition(
            status.conditions,
            type=READY,
            status=False,
            reason=problems[0].reason,
            message=f"{message}; the rollout holds where it is (no capital moves) until this is fixed",
            generation=generation,
            now=now,
        )
        status.observed_generation = generation
    else:
        status = validation_status(previous, problems, generation=generation, now=now)
    events = [Event("Warning", p.reason, str(p)) for p in problems]
    requeue = None if problems[0].reason == INVALID_SPEC else WAITING_REQUEUE
    return ReconcileResult(status=status, events=news(experiment.status, status, events), requeue_after=requeue)


def _unreachable(experiment: Experiment, strategy: Strategy, exc: Exception, *, now: datetime) -> ReconcileResult:
    """A variant's runtime does not answer: nothing is decided without both figures. Say which, and how its
    Strategy is, since that is usually why (still starting, failed, paused by an invalid spec)."""
    previous = experiment.status or ExperimentStatus()
    status = previous.model_copy(deep=True)
    generation = experiment.metadata.generation
    how = f"Strategy {strategy.name} is {strategy.status.phase}" if strategy.status is not None else ""
    message = f"waiting for the runtime of {strategy.name}: {exc}" + (f" ({how})" if how else "")
    if _phase(status.phase) is None:
        status.phase = RolloutPhase.PENDING.value
    status.conditions = set_condition(
        status.conditions,
        type=READY,
        status=False,
        reason="WaitingForRuntime",
        message=message,
        generation=generation,
        now=now,
    )
    status.observed_generation = generation
    events = news(experiment.status, status, [Event("Warning", "WaitingForRuntime", message)])
    return ReconcileResult(status=status, events=events, requeue_after=RUNTIME_RETRY)
