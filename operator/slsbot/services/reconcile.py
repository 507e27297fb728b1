"""Reconcile one Strategy: resolve its dependencies, observe its runtime, plan one step, execute it, report.

The same function runs under the kopf operator (Kubernetes backend) and the local supervisor (process backend).
It reconciles from observed state, not from events: calling it again with nothing changed is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slsbot.api import Experiment, RiskPolicy, Strategy, StrategyStatus, TradingAccount
from slsbot.api.base import ObjectStatus
from slsbot.domain.conditions import READY, set_condition
from slsbot.domain.errors import BackendUnavailable, ConflictError, RuntimeUnreachable
from slsbot.domain.plan import Action, ActionKind, BackoffPolicy, ObservedRuntime, plan_deletion, plan_runtime
from slsbot.domain.ports import RuntimeBackend
from slsbot.domain.resolve import INVALID_SPEC, check_account, check_experiment, check_policy, resolve_strategy
from slsbot.domain.runtime_spec import desired_runtime
from slsbot.domain.status import strategy_status, validation_status

log = logging.getLogger(__name__)


# How long a Strategy waiting for its TradingAccount or RiskPolicy may go unlooked-at. Nobody polls for a missing
# dependency: whoever runs the reconcile looks again when one changes (the operator is woken through its kopf
# indexes; the local supervisor looks at every object on every pass); this only bounds a missed wake-up.
DEPENDENCY_SAFETY_REQUEUE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes-style event: ``type`` is Normal or Warning."""

    type: str
    reason: str
    message: str


@dataclass(slots=True)
class ReconcileResult:
    status: ObjectStatus
    action: Action | None = None
    events: list[Event] = field(default_factory=list)
    requeue_after: timedelta | None = None
    done: bool = False  # for deletion: the finalizer may be removed


@dataclass(frozen=True, slots=True)
class Catalog:
    """What the reconciler may check names against; None skips the check."""

    known_exchanges: Collection[str] | None = None
    known_components: Collection[str] | None = None


def reconcile_strategy(
    strategy: Strategy,
    *,
    accounts: Mapping[str, TradingAccount],
    policies: Mapping[str, RiskPolicy],
    backend: RuntimeBackend,
    now: datetime,
    catalog: Catalog | None = None,
    backoff: BackoffPolicy | None = None,
) -> ReconcileResult:
    catalog = catalog or Catalog()
    generation = strategy.metadata.generation
    resolved = resolve_strategy(
        strategy,
        accounts,
        policies,
        known_exchanges=catalog.known_exchanges,
        known_components=catalog.known_components,
    )
    if isinstance(resolved, list):
        # A bad edit never stops a running bot: the runtime keeps its last good config until the spec is fixed.
        status = strategy_status(strategy.status, generation=generation, now=now, problems=resolved)
        first = resolved[0]
        requeue = None if first.reason == INVALID_SPEC else DEPENDENCY_SAFETY_REQUEUE
        event = Event("Warning", first.reason, "; ".join(str(p) for p in resolved))
        return ReconcileResult(status=status, events=[event], requeue_after=requeue)

    config = backend.render_config(resolved)
    desired = desired_runtime(resolved, config)
    try:
        observed = backend.observe(strategy.namespace, strategy.name)
    except BackendUnavailable as exc:
        return _retry(strategy.status, "BackendUnavailable", str(exc), timedelta(seconds=5))
    action = plan_runtime(desired, observed, now=now, backoff=backoff)
    events: list[Event] = []
    if action.changes_something:
        try:
            backend.execute(strategy.namespace, strategy.name, action)
        except ConflictError as exc:
            return _retry(strategy.status, "Conflict", str(exc), timedelta(seconds=0))
        except (RuntimeUnreachable, BackendUnavailable) as exc:
            return _retry(strategy.status, type(exc).__name__, str(exc), timedelta(seconds=5))
        events.append(Event("Normal", action.reason, action.message))
        log.info("strategy %s/%s: %s: %s", strategy.namespace, strategy.name, action.kind, action.message)
    status = strategy_status(
        strategy.status,
        generation=generation,
        now=now,
        observed=observed,
        action=action,
        desired_paused=desired.paused,
        config_hash=desired.config_hash,
    )
    requeue = action.requeue_after if action.kind is ActionKind.WAIT else timedelta(seconds=1)
    return ReconcileResult(status=status, action=action, events=events, requeue_after=requeue)


def finalize_strategy(
    strategy: Strategy,
    *,
    backend: RuntimeBackend,
    drained: bool,
    now: datetime | None = None,
    deletion_started: datetime | None = None,
) -> ReconcileResult:
    """One step of deletion. ``done`` says the finalizer may go; a DRAIN result means: record ``drained``.

    After the drain the runtime is kept (WAIT, ``WaitingForDrain``) until it reports the drain complete, and only
    then deleted. With ``now`` and ``deletion_started`` both waits, for a starting runtime to drain and for a drain
    to complete, are bounded (plan_deletion); without them they are not.
    """
    status = (strategy.status or StrategyStatus()).model_copy(update={"phase": "Terminating"})
    try:
        observed: ObservedRuntime = backend.observe(strategy.namespace, strategy.name)
    except BackendUnavailable as exc:
        return _retry(status, "BackendUnavailable", str(exc), timedelta(seconds=5))
    waited = now - deletion_started if now is not None and deletion_started is not None else None
    action = plan_deletion(strategy.spec.on_delete, observed, drained=drained, waited=waited)
    if action.kind is ActionKind.WAIT and action.reason == "Deleted":
        return ReconcileResult(status=status, action=action, done=True)
    if action.changes_something:
        try:
            backend.execute(strategy.namespace, strategy.name, action)
        except ConflictError as exc:
            return _retry(status, "Conflict", str(exc), timedelta(seconds=0))
        except (RuntimeUnreachable, BackendUnavailable) as exc:
            return _retry(status, type(exc).__name__, str(exc), timedelta(seconds=5))
    kind = "Warning" if action.reason == "DeletedWithoutDrain" else "Normal"
    return ReconcileResult(
        status=status,
        action=action,
        events=[Event(kind, action.reason, action.message)],
        requeue_after=action.requeue_after or timedelta(seconds=1),
    )


def reconcile_account(
    account: TradingAccount, *, now: datetime, catalog: Catalog | None = None, strategies: int = 0
) -> ReconcileResult:
    catalog = catalog or Catalog()
    problems = check_account(account, catalog.known_exchanges)
    previous = account.status or account.kind_info.status_model()
    status = validation_status(previous, problems, generation=account.metadata.generation, now=now)
    status.strategies = strategies  # type: ignore[attr-defined]
    events = [Event("Warning", p.reason, str(p)) for p in problems]
    return ReconcileResult(status=status, events=events)


def reconcile_policy(policy: RiskPolicy, *, now: datetime, strategies: int = 0) -> ReconcileResult:
    problems = check_policy(policy.spec)
    previous = policy.status or policy.kind_info.status_model()
    status = validation_status(previous, problems, generation=policy.metadata.generation, now=now)
    status.strategies = strategies  # type: ignore[attr-defined]
    events = [Event("Warning", p.reason, str(p)) for p in problems]
    return ReconcileResult(status=status, events=events)


EXPERIMENTS_NOT_RUN = (
    "the spec is valid, but this version of slsbot does not run experiments yet: "
    "the tuning and A/B controllers come in a later release"
)


def reconcile_experiment(
    experiment: Experiment, *, strategies: Mapping[str, Strategy], now: datetime
) -> ReconcileResult:
    """Validate an Experiment's references. Valid ones wait, saying plainly that nothing runs them yet."""
    problems = check_experiment(experiment, strategies)
    generation = experiment.metadata.generation
    previous = experiment.status or experiment.kind_info.status_model()
    status = validation_status(previous, problems, generation=generation, now=now)
    if not problems:
        status.phase = "Pending"
        status.conditions = set_condition(
            status.conditions,
            type=READY,
            status=False,
            reason="ControllerNotAvailable",
            message=EXPERIMENTS_NOT_RUN,
            generation=generation,
            now=now,
        )
    events = [Event("Warning", p.reason, str(p)) for p in problems]
    requeue = None if problems and problems[0].reason == INVALID_SPEC else timedelta(seconds=30)
    return ReconcileResult(status=status, events=events, requeue_after=requeue)


def _retry(previous: ObjectStatus | None, reason: str, message: str, after: timedelta) -> ReconcileResult:
    status = (previous or StrategyStatus()).model_copy(deep=True)
    return ReconcileResult(status=status, events=[Event("Warning", reason, message)], requeue_after=after)
