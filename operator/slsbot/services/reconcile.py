"""Reconcile one Strategy: resolve its dependencies, observe its runtime, plan one step, execute it, report.

The same function runs under the kopf operator (Kubernetes backend) and the local supervisor (process backend).
It reconciles from observed state, not from events: calling it again with nothing changed is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slsbot.api import (
    Experiment,
    ExperimentStatus,
    ExperimentType,
    RiskPolicy,
    RuntimeConfig,
    Strategy,
    StrategyStatus,
    TradingAccount,
)
from slsbot.api.base import ObjectStatus
from slsbot.domain.admission import (
    OPERATORS_OWN_SERVICE_ACCOUNTS,
    ImageAllowList,
    as_account_problems,
    check_credentials_secret,
    check_image,
    check_runtime_service_account,
    runtime_service_account,
)
from slsbot.domain.allocation import AllocationClaim, check_allocation
from slsbot.domain.conditions import READY, get_condition, set_condition
from slsbot.domain.errors import BackendUnavailable, ConflictError, RuntimeUnreachable
from slsbot.domain.healing import HealingDecision, decide_healing
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.plan import (
    DRAIN_WAIT_LIMIT,
    Action,
    ActionKind,
    BackoffPolicy,
    LivenessPolicy,
    ObservedRuntime,
    RuntimeState,
    plan_deletion,
    plan_runtime,
)
from slsbot.domain.ports import (
    CredentialSecrets,
    HealingMetrics,
    OwnedObjects,
    RolloutRuntimes,
    RuntimeBackend,
    RuntimeServiceAccounts,
    TuningMetrics,
    TuningRunner,
)
from slsbot.domain.resolve import (
    INVALID_SPEC,
    Problem,
    ResolvedStrategy,
    check_account,
    check_experiment,
    check_policy,
    config_problem,
    resolve_strategy,
)
from slsbot.domain.runtime_spec import desired_runtime
from slsbot.domain.status import apply_healing, strategy_status, validation_status
from slsbot.domain.tuning_plan import FAILED, TuningPolicy
from slsbot.services.tuning import reconcile_tuning

log = logging.getLogger(__name__)


# How long a Strategy waiting for its TradingAccount or RiskPolicy may go unlooked-at. Nobody polls for a missing
# dependency: whoever runs the reconcile looks again when one changes (the operator is woken through its kopf
# indexes; the local supervisor looks at every object on every pass); this only bounds a missed wake-up.
DEPENDENCY_SAFETY_REQUEUE = timedelta(minutes=5)
# A dependency nobody watches (a credentials Secret: the operator may not list Secrets; a runtime's ServiceAccount)
# is looked at this often.
UNWATCHED_DEPENDENCY_REQUEUE = timedelta(seconds=10)
# A runtime that trades on while its spec cannot be applied: its figures and health are read this often.
RUNNING_REQUEUE = timedelta(seconds=10)


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
    # What the healing ladder raised at its Incident rung, for the incidents service (``record_signals``).
    signals: list[IncidentSignal] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Catalog:
    """What the reconciler may check names and configs against; None skips the check.

    ``check_config`` is the runtime's own refusal of a RuntimeConfig (``slsbot_runtime.app.config_problems``: one
    ``"field: message"`` line per problem, in RuntimeConfig terms), run before anything is created, so a spec the
    runtime would refuse is InvalidSpec naming the field instead of a workload that exits with code 2 for ever.
    """

    known_exchanges: Collection[str] | None = None
    known_components: Collection[str] | None = None
    check_config: Callable[[RuntimeConfig], Sequence[str]] | None = None
    # What a Strategy may run (domain.admission); the operator sets all three, ``slsbot up`` runs no images, Secrets
    # or service accounts.
    allowed_images: ImageAllowList | None = None
    credential_secrets: CredentialSecrets | None = None
    runtime_service_accounts: RuntimeServiceAccounts | None = None


class CachedConfigCheck:
    """``check_config`` remembered per config (the runtime builds its deciders to check one; every pass would)."""

    def __init__(self, check: Callable[[RuntimeConfig], Sequence[str]], *, size: int = 4096) -> None:
        self._check = check
        self._size = size
        self._seen: dict[str, tuple[str, ...]] = {}

    # What a check cannot depend on: which object it is and where its runtime keeps its state and listens.
    # Strategies that differ only in these (a fleet of one spec) are checked once.
    IRRELEVANT = frozenset({"paused", "name", "namespace", "state", "server"})

    def __call__(self, config: RuntimeConfig) -> tuple[str, ...]:
        key = config.model_dump_json(exclude=set(self.IRRELEVANT))
        found = self._seen.get(key)
        if found is None:
            found = tuple(self._check(config))
            if len(self._seen) >= self._size:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = found
        return found


def credential_problems(account: TradingAccount, catalog: Catalog) -> list[Problem]:
    """The account's ``credentials.secretRef``: not the operator's own, existing, labelled for slsbot. Looks the
    Secret up (its labels only) through ``catalog.credential_secrets``; BackendUnavailable when it cannot."""
    secrets = catalog.credential_secrets
    credentials = account.spec.credentials
    if secrets is None or credentials is None or credentials.secret_ref is None:
        return []
    name = credentials.secret_ref.name
    seen = None if secrets.operators_own(name) else secrets.seen(account.namespace, name)
    return check_credentials_secret(account, seen, operators_own=secrets.operators_own)


def service_account_problems(account: TradingAccount, catalog: Catalog) -> list[Problem]:
    """The account's ``credentials.vault.auth.serviceAccountName``: existing, labelled for slsbot runtimes. Looks the
    ServiceAccount up (its labels) through ``catalog.runtime_service_accounts``; BackendUnavailable when it cannot."""
    accounts = catalog.runtime_service_accounts
    name = runtime_service_account(account)
    if accounts is None or name is None:
        return []
    seen = None if name in OPERATORS_OWN_SERVICE_ACCOUNTS else accounts.seen(account.namespace, name)
    return check_runtime_service_account(account, seen)


def account_admission_problems(account: TradingAccount, catalog: Catalog) -> list[Problem]:
    """What the operator does not allow of an account: its credentials Secret, its runtime's service account."""
    return credential_problems(account, catalog) + service_account_problems(account, catalog)


def admission_problems(resolved: ResolvedStrategy, catalog: Catalog) -> list[Problem]:
    """What stops a valid Strategy from running at all: an image that is not allowed, credentials or a service
    account that are not."""
    problems: list[Problem] = []
    if catalog.allowed_images is not None:
        problems += check_image(resolved.strategy.spec.runtime.image, catalog.allowed_images)
    problems += as_account_problems(resolved.account, account_admission_problems(resolved.account, catalog))
    return sorted(problems, key=lambda p: p.reason != INVALID_SPEC)


def reconcile_strategy(
    strategy: Strategy,
    *,
    accounts: Mapping[str, TradingAccount],
    policies: Mapping[str, RiskPolicy],
    backend: RuntimeBackend,
    now: datetime,
    catalog: Catalog | None = None,
    backoff: BackoffPolicy | None = None,
    liveness: LivenessPolicy | None = None,
    claims: Iterable[AllocationClaim] | None = None,
    signals: Sequence[IncidentSignal] = (),
    healing_metrics: HealingMetrics | None = None,
) -> ReconcileResult:
    """One step for ``strategy``. ``claims``: the allocations of the namespace's Strategies (``domain.allocation``),
    so that a share that does not fit beside the earlier-created Strategies of its account is refused; None skips
    that check. ``signals``: the open severity-1/2 incident signals naming this Strategy, for its healing ladder
    (``domain.healing``); ``healing_metrics``: where the ladder's measurements go."""
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
        # Accounts and policies are watched: their change wakes this Strategy; the long requeue is a safety net.
        return _cannot_apply(strategy, resolved, backend=backend, now=now, requeue=DEPENDENCY_SAFETY_REQUEUE)
    if claims is not None:
        refused = check_allocation(strategy, claims)
        if refused:  # the others' change wakes it (the operator's wake-ups; the supervisor's every pass)
            return _cannot_apply(strategy, refused, backend=backend, now=now)
    try:
        refused = admission_problems(resolved, catalog)
    except BackendUnavailable as exc:
        return _retry(strategy.status, "BackendUnavailable", str(exc), timedelta(seconds=5))
    if refused:
        # Secrets and ServiceAccounts are not watched (the operator may not list Secrets): look again soon for the
        # label or the object.
        return _cannot_apply(strategy, refused, backend=backend, now=now, requeue=UNWATCHED_DEPENDENCY_REQUEUE)
    config = backend.render_config(resolved)
    if catalog.check_config is not None:
        refused = [config_problem(text, resolved) for text in catalog.check_config(config)]
        if refused:
            return _cannot_apply(strategy, refused, backend=backend, now=now)
    desired = desired_runtime(resolved, config)
    try:
        observed = backend.observe(strategy.namespace, strategy.name)
    except BackendUnavailable as exc:
        return _retry(strategy.status, "BackendUnavailable", str(exc), timedelta(seconds=5))
    action = plan_runtime(desired, observed, now=now, backoff=backoff, liveness=liveness)
    previous_healing = strategy.status.healing if strategy.status is not None else None
    healing = decide_healing(
        observed,
        previous_healing,
        resolved.policy.healing,
        desired=desired,
        namespace=strategy.namespace,
        name=strategy.name,
        now=now,
        signals=tuple(signals),
        flatten_on_critical=resolved.policy.incidents.flatten_on_critical,
    )
    if healing.action is not None:
        if action.kind in (ActionKind.WAIT, ActionKind.SET_PAUSED):
            # Healing first: a runtime that cannot trade safely is restricted before it is paused or resumed.
            action = healing.action
        else:  # a lifecycle step (create, roll out, restart) goes first; the ladder decides again next pass
            healing = HealingDecision(status=previous_healing, requeue_after=healing.requeue_after)
    events: list[Event] = []
    if action.changes_something:
        try:
            backend.execute(strategy.namespace, strategy.name, action)
        except ConflictError as exc:
            return _retry(strategy.status, "Conflict", str(exc), timedelta(seconds=0))
        except (RuntimeUnreachable, BackendUnavailable) as exc:
            return _retry(strategy.status, type(exc).__name__, str(exc), timedelta(seconds=5))
        if action.kind is not ActionKind.SET_TRADING_MODE:  # the ladder's rung events say why
            events.append(_event(action))
        log.log(
            logging.WARNING if action.is_warning else logging.INFO,
            "strategy %s/%s: %s: %s",
            strategy.namespace,
            strategy.name,
            action.kind,
            action.message,
        )
    status = strategy_status(
        strategy.status,
        generation=generation,
        now=now,
        observed=observed,
        action=action,
        desired_paused=desired.paused,
        config_hash=desired.config_hash,
    )
    status = apply_healing(status, healing.status, healing.condition, generation=generation, now=now)
    if not action.changes_something and action.is_warning:
        # A crash loop's back-off, a silent runtime: an event when it begins (or its message changes), not per pass.
        events += _news(strategy.status, status, [_event(action)])
    events += [Event(e.type, e.reason, e.message) for e in healing.events]
    _measure(healing, healing_metrics)
    requeue = action.requeue_after if action.kind is ActionKind.WAIT else timedelta(seconds=1)
    if requeue is not None and healing.requeue_after is not None:
        requeue = min(requeue, healing.requeue_after)
    return ReconcileResult(
        status=status, action=action, events=events, requeue_after=requeue, signals=list(healing.signals)
    )


def _measure(healing: HealingDecision, metrics: HealingMetrics | None) -> None:
    """Hand the ladder's measurements of this pass (taken once per fault) to the metrics."""
    cause = healing.cause or "Unknown"
    if metrics is None:
        return
    if healing.detection_seconds is not None:
        metrics.detected(cause, healing.detection_seconds)
    if healing.rung_entered is not None:
        metrics.rung_entered(cause, str(healing.rung_entered))
    if healing.recovery_seconds is not None:
        metrics.recovered(cause, healing.recovery_seconds)


def _cannot_apply(
    strategy: Strategy,
    problems: Sequence[Problem],
    *,
    backend: RuntimeBackend,
    now: datetime,
    requeue: timedelta | None = None,
) -> ReconcileResult:
    """The spec, or something it depends on, is wrong or missing: nothing is created or changed. A bad edit never
    stops a running bot: a runtime that already runs keeps its last good config, and the status says so."""
    try:
        observed: ObservedRuntime | None = backend.observe(strategy.namespace, strategy.name)
    except BackendUnavailable:
        observed = None
    status = strategy_status(
        strategy.status, generation=strategy.metadata.generation, now=now, problems=problems, observed=observed
    )
    first = problems[0]
    running = observed is not None and observed.state is not RuntimeState.ABSENT
    waiting = None if first.reason == INVALID_SPEC else requeue
    if running:  # keep its figures and health current while it trades on
        waiting = min(waiting or RUNNING_REQUEUE, RUNNING_REQUEUE)
    event = Event("Warning", first.reason, "; ".join(str(p) for p in problems))
    return ReconcileResult(status=status, events=_news(strategy.status, status, [event]), requeue_after=waiting)


def finalize_strategy(
    strategy: Strategy,
    *,
    backend: RuntimeBackend,
    drained: bool,
    now: datetime | None = None,
    deletion_started: datetime | None = None,
    drain_wait: timedelta = DRAIN_WAIT_LIMIT,
) -> ReconcileResult:
    """One step of deletion. ``done`` says the finalizer may go; a DRAIN result means: record ``drained``.

    After the drain the runtime is kept (WAIT, ``WaitingForDrain``) until it reports the drain complete, and only
    then deleted. With ``now`` and ``deletion_started`` both waits, for a starting runtime to drain and for a drain
    to complete, are bounded by ``drain_wait`` (plan_deletion); without them they are not.
    """
    status = (strategy.status or StrategyStatus()).model_copy(update={"phase": "Terminating"})
    try:
        observed: ObservedRuntime = backend.observe(strategy.namespace, strategy.name)
    except BackendUnavailable as exc:
        return _retry(status, "BackendUnavailable", str(exc), timedelta(seconds=5))
    waited = now - deletion_started if now is not None and deletion_started is not None else None
    action = plan_deletion(strategy.spec.on_delete, observed, drained=drained, waited=waited, wait_limit=drain_wait)
    if action.kind is ActionKind.WAIT and action.reason == "Deleted":
        return ReconcileResult(status=status, action=action, done=True)
    if action.changes_something:
        try:
            backend.execute(strategy.namespace, strategy.name, action)
        except ConflictError as exc:
            return _retry(status, "Conflict", str(exc), timedelta(seconds=0))
        except (RuntimeUnreachable, BackendUnavailable) as exc:
            return _retry(status, type(exc).__name__, str(exc), timedelta(seconds=5))
    return ReconcileResult(
        status=status,
        action=action,
        events=[_event(action)],
        requeue_after=action.requeue_after or timedelta(seconds=1),
    )


def reconcile_account(
    account: TradingAccount,
    *,
    now: datetime,
    catalog: Catalog | None = None,
    strategies: int = 0,
    allocated_percent: float | None = None,
) -> ReconcileResult:
    """Validate an account; its status counts its Strategies and the sum of their ``allocationPercent``."""
    catalog = catalog or Catalog()
    problems = check_account(account, catalog.known_exchanges) + account_admission_problems(account, catalog)
    problems.sort(key=lambda p: p.reason != INVALID_SPEC)
    previous = account.status or account.kind_info.status_model()
    status = validation_status(previous, problems, generation=account.metadata.generation, now=now)
    status.strategies = strategies  # type: ignore[attr-defined]
    status.allocated_percent = allocated_percent  # type: ignore[attr-defined]
    events = [Event("Warning", p.reason, str(p)) for p in problems]
    return ReconcileResult(status=status, events=_news(account.status, status, events))


def reconcile_policy(policy: RiskPolicy, *, now: datetime, strategies: int = 0) -> ReconcileResult:
    problems = check_policy(policy.spec)
    previous = policy.status or policy.kind_info.status_model()
    status = validation_status(previous, problems, generation=policy.metadata.generation, now=now)
    status.strategies = strategies  # type: ignore[attr-defined]
    events = [Event("Warning", p.reason, str(p)) for p in problems]
    return ReconcileResult(status=status, events=_news(policy.status, status, events))


EXPERIMENTS_NOT_RUN = (
    "the spec is valid, but this version of slsbot does not run experiments yet: "
    "the tuning and A/B controllers come in a later release"
)


@dataclass(frozen=True, slots=True)
class ExperimentPorts:
    """What the Experiment controllers run on, passed in by the supervisor or the operator. A controller whose port
    is missing reports ControllerNotAvailable; ``owned`` is how a promotion creates, changes and removes objects."""

    tuning: TuningRunner | None = None
    rollout: RolloutRuntimes | None = None
    owned: OwnedObjects | None = None
    tuning_policy: TuningPolicy | None = None
    allowed_images: ImageAllowList | None = None  # what tuning workers may run (the operator's allow-list)
    tuning_metrics: TuningMetrics | None = None  # a run that ends Failed is counted here (adapters.control_metrics)


def reconcile_experiment(
    experiment: Experiment,
    *,
    strategies: Mapping[str, Strategy],
    now: datetime,
    accounts: Mapping[str, TradingAccount] | None = None,
    policies: Mapping[str, RiskPolicy] | None = None,
    ports: ExperimentPorts | None = None,
) -> ReconcileResult:
    """Validate an Experiment's references, then hand it to its controller: ``services.tuning`` for type tuning,
    ``services.rollout`` for type ab. One without a controller here waits, saying plainly that nothing runs it."""
    problems = check_experiment(experiment, strategies)
    ports = ports or ExperimentPorts()
    if experiment.spec.type == ExperimentType.AB and ports.rollout is not None and ports.owned is not None:
        from slsbot.services.rollout import reconcile_rollout  # it imports this module's results

        return reconcile_rollout(
            experiment,
            problems=problems,
            strategies=strategies,
            accounts=accounts or {},
            policies=policies or {},
            runtimes=ports.rollout,
            owned=ports.owned,
            now=now,
        )
    generation = experiment.metadata.generation
    previous = experiment.status or experiment.kind_info.status_model()
    status = validation_status(previous, problems, generation=generation, now=now)
    if not problems and experiment.spec.type == ExperimentType.TUNING and ports.tuning is not None:
        assert isinstance(status, ExperimentStatus)
        try:
            tuned, happened, requeue = reconcile_tuning(
                experiment,
                strategies=strategies,
                accounts=accounts or {},
                policies=policies or {},
                runner=ports.tuning,
                owned=ports.owned,
                status=status,
                now=now,
                policy=ports.tuning_policy,
                allowed_images=ports.allowed_images,
            )
        except ConflictError as exc:
            return _retry(experiment.status or status, "Conflict", str(exc), timedelta(seconds=1))
        except BackendUnavailable as exc:
            return _retry(experiment.status or status, "BackendUnavailable", str(exc), timedelta(seconds=5))
        news = [Event(*event) for event in happened]
        _count_failed_run(experiment, tuned, ports.tuning_metrics)
        if tuned.phase in ("Invalid", "Pending"):  # a standing refusal is an event once per spec, not per pass
            news = _news(experiment.status, tuned, news)
        return ReconcileResult(status=tuned, events=news, requeue_after=requeue)
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
    return ReconcileResult(status=status, events=_news(experiment.status, status, events), requeue_after=requeue)


def _news(previous: ObjectStatus | None, status: ObjectStatus, events: list[Event]) -> list[Event]:
    """``events`` about the problems in ``status``, unless ``previous`` already reported the same problems for the
    same generation: a standing problem is an event once per spec, not once per pass (the local supervisor passes
    twice a second, and each repeat would count as a new occurrence). A problem that goes away and comes back, or
    stays through an edit of the spec, is reported again."""
    before = get_condition(previous.conditions, READY) if previous is not None else None
    after = get_condition(status.conditions, READY)
    if before is None or after is None:
        return events
    same = (before.status, before.reason, before.message, before.observed_generation) == (
        after.status,
        after.reason,
        after.message,
        after.observed_generation,
    )
    return [] if same else events


def _event(action: Action) -> Event:
    return Event("Warning" if action.is_warning else "Normal", action.reason, action.message)


def _count_failed_run(experiment: Experiment, tuned: ExperimentStatus, metrics: TuningMetrics | None) -> None:
    """A run whose phase turns Failed in this pass is counted once, by its Ready condition's reason."""
    if metrics is None or tuned.phase != FAILED:
        return
    if experiment.status is not None and experiment.status.phase == FAILED:
        return
    ready = get_condition(tuned.conditions, READY)
    metrics.run_failed(ready.reason if ready is not None and ready.reason else "Failed")


def _retry(previous: ObjectStatus | None, reason: str, message: str, after: timedelta) -> ReconcileResult:
    status = (previous or StrategyStatus()).model_copy(deep=True)
    return ReconcileResult(status=status, events=[Event("Warning", reason, message)], requeue_after=after)
