"""One step of operator work per call, on the Kubernetes adapters and the shared reconcile service. Blocking (the
Kubernetes client is synchronous): ``kopf_handlers`` runs each in a worker thread. No kopf in here.

Each step reads the object fresh from the API, calls the service, and writes back what it returns: the status
(only when it changed) and the events (held back when they repeat). What a Strategy depends on, its
TradingAccount and RiskPolicy, is not read from the API: the caller passes what kopf's watch holds (``Dependencies``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from slsbot.adapters.control_metrics import BackupMetrics
from slsbot.adapters.kubernetes import (
    ClusterCredentials,
    KubernetesEventRecorder,
    KubernetesObjectStore,
    KubernetesRuntimeBackend,
)
from slsbot.adapters.kubernetes.backups import KubernetesBackupCronJobs
from slsbot.adapters.kubernetes.objects import ANNOTATION_DRAINED, InvalidObjectError, is_drained, parse_object
from slsbot.api import (
    KINDS,
    BackupSchedule,
    Experiment,
    RiskPolicy,
    Strategy,
    StrategySpec,
    StrategyStatus,
    TradingAccount,
)
from slsbot.api.backup import BackupScheduleStatus, JobOutcome
from slsbot.api.health import HealingRung
from slsbot.api.resources import ObjectMeta
from slsbot.api.riskpolicy import RiskScope
from slsbot.api.strategy import OnDelete
from slsbot.domain.allocation import AllocationClaim
from slsbot.domain.backup_plan import newest_results, result_signals
from slsbot.domain.errors import NotFoundError, SlsbotError
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.plan import ActionKind
from slsbot.domain.ports import HealingMetrics
from slsbot.domain.restore_plan import ANNOTATION_RESTORE, restore_hold
from slsbot.domain.status import strategy_status
from slsbot.services.account_risk import AccountRiskReport, AccountRiskSettings, HeadroomPushes, account_risk_pass
from slsbot.services.incidents import PassIncidents
from slsbot.services.reconcile import (
    Catalog,
    Event,
    ExperimentPorts,
    ReconcileResult,
    finalize_strategy,
    reconcile_account,
    reconcile_experiment,
    reconcile_policy,
    reconcile_strategy,
)

log = logging.getLogger(__name__)

MIN_REQUEUE_SECONDS = 0.5  # "again at once" (after a write conflict) still leaves the API server a breath


@dataclass
class Wakeups:
    """One asyncio.Event per Strategy, so a change can cut its daemon's sleep short. Event-loop thread only."""

    _events: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)

    def event(self, namespace: str, name: str) -> asyncio.Event:
        return self._events.setdefault((namespace, name), asyncio.Event())

    def wake(self, namespace: str, name: str) -> None:
        event = self._events.get((namespace, name))
        if event is not None:
            event.set()

    def forget(self, namespace: str, name: str) -> None:
        self._events.pop((namespace, name), None)


@dataclass
class OperatorContext:
    """What the handlers work with, built once by ``slsbot operator`` and handed to kopf as ``memo.slsbot``."""

    store: KubernetesObjectStore
    backend: KubernetesRuntimeBackend
    events: KubernetesEventRecorder
    credentials: ClusterCredentials
    catalog: Catalog = field(default_factory=Catalog)
    max_requeue_seconds: float = 300.0
    drain_wait_seconds: float = 120.0  # how long a deletion waits for a runtime to become ready and drain
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    wakeups: Wakeups = field(default_factory=Wakeups)
    # What the Experiment controllers run on (tuning Jobs, an A/B rollout's runtimes, owned objects); each Experiment's
    # daemon has its own wake-up, as each Strategy's.
    experiment_ports: ExperimentPorts = field(default_factory=ExperimentPorts)
    experiment_wakeups: Wakeups = field(default_factory=Wakeups)
    # The healing ladder's measurements (adapters.control_metrics, served on the operator's metrics port), and the
    # incidents hooks (issue 9, part I): the open severity-1/2 signals naming a Strategy, and where the ladder's own
    # Incident-rung signals go.
    healing_metrics: HealingMetrics | None = None
    strategy_signals: Callable[[Strategy], Sequence[IncidentSignal]] | None = None
    # called after every reconcile of a Strategy, with its Incident-rung signals (none once it recovered: that clears
    # its healing incident)
    record_signals: Callable[[Sequence[IncidentSignal], datetime, Strategy], None] | None = None
    # The incident rules, recorded as Incident objects, and their notifications (None: no incidents).
    incidents: PassIncidents | None = None
    incidents_interval_seconds: float = 15.0
    incident_looks: dict[str, datetime] = field(default_factory=dict)  # namespace -> its last incidents pass
    # The account risk pass (services.account_risk): what was pushed to each runtime, across the policies' timers.
    headroom: HeadroomPushes = field(default_factory=HeadroomPushes)
    account_risk: AccountRiskSettings = field(default_factory=AccountRiskSettings)
    # The (namespace, account) pairs under a severity-2 incident, whose entries the policy's sizeMultiplier cuts
    size_cuts: Callable[[], Collection[tuple[str, str]]] | None = None
    # Each BackupSchedule's CronJobs (docs/concepts/backups.md); None: BackupSchedules are not served
    backups: KubernetesBackupCronJobs | None = None
    # What the operator makes of the results the CronJobs' pods write into a schedule's status: metrics, and the
    # BackupFailed / RestoreDrillFailed incidents (called with the signals, now, the namespace and the schedule's name)
    backup_metrics: BackupMetrics | None = None
    record_backup_signals: Callable[[Sequence[IncidentSignal], datetime, str, str], object] | None = None
    backup_results_seen: dict[tuple[str, str, str], datetime] = field(default_factory=dict)


def backup_results_once(ctx: OperatorContext, namespace: str, name: str, status: BackupScheduleStatus | None) -> None:
    """What a BackupSchedule's status says, made into metrics and incidents: each job kind's newest result counted
    once (the pod that ran it wrote it there), and the incident of each kind whose newest run failed opened (or kept),
    of each that succeeded cleared (``domain.backup_plan.result_signals``). ``status`` None: the schedule is gone,
    its series are dropped and its incidents clear. Idempotent: the operator calls it on every event of the schedule
    and on a timer (an incident write that failed is done at the next call)."""
    gone = status is None
    if ctx.backup_metrics is not None:
        if gone:
            ctx.backup_metrics.forget(namespace, name)
        for job, result in newest_results(status).items():
            key = (namespace, name, job.value)
            if ctx.backup_results_seen.get(key) == result.started_at:
                continue
            ctx.backup_results_seen[key] = result.started_at
            ctx.backup_metrics.job_finished(
                job.value,
                succeeded=result.outcome == JobOutcome.SUCCEEDED,
                started_at=result.started_at.timestamp(),
                duration=result.duration_seconds,
                size=result.size_bytes,
                namespace=namespace,
                schedule=name,
            )
    if gone:
        for key in [k for k in ctx.backup_results_seen if k[:2] == (namespace, name)]:
            del ctx.backup_results_seen[key]
    if ctx.record_backup_signals is not None:
        now = ctx.clock()
        ctx.record_backup_signals(result_signals(namespace, name, status, now), now, namespace, name)


def missing_kinds(ctx: OperatorContext) -> list[str]:
    """The slsbot resources the API server does not serve (their CRDs are not installed), e.g. ``strategies``."""
    served = ctx.store.served_kinds()
    return sorted(cls.kind_info.plural for cls in KINDS.values() if cls.kind_info.plural not in served)


@dataclass(frozen=True, slots=True)
class Dependencies:
    """The TradingAccounts and RiskPolicies of one namespace by name, as parsed from kopf's watch (objects the API
    models refuse are left out: to a Strategy they are as good as missing), and the allocation every Strategy of the
    namespace claims (for the check that an account's Strategies claim 100% at most)."""

    accounts: Mapping[str, TradingAccount]
    policies: Mapping[str, RiskPolicy]
    claims: Sequence[AllocationClaim] = ()


def reconcile_strategy_once(
    ctx: OperatorContext, namespace: str, name: str, dependencies: Dependencies
) -> float | None:
    """Reconcile one Strategy once; the seconds until it should be looked at again, None if it is gone."""
    try:
        body = ctx.store.get(Strategy, namespace, name)
    except NotFoundError:
        return None
    if body["metadata"].get("deletionTimestamp"):
        return None  # the finalizer owns it now
    hold = restore_hold(body["metadata"].get("annotations"))
    if hold is not None:  # slsbot restore --kubernetes has stopped the runtime: no roll-out, restart or healing now
        message = f"held for a restore ({ANNOTATION_RESTORE}={hold}): the operator leaves its runtime alone"
        ctx.events.record(body, [Event("Normal", "RestoreInProgress", message)])
        return ctx.max_requeue_seconds  # woken when the annotation goes (an update of the Strategy)
    try:
        strategy = parse_object(Strategy, body)
    except InvalidObjectError as exc:
        _report_invalid_strategy(ctx, body, exc)
        return ctx.max_requeue_seconds
    result = reconcile_strategy(
        strategy,
        accounts=dependencies.accounts,
        policies=dependencies.policies,
        backend=ctx.backend,
        now=ctx.clock(),
        catalog=ctx.catalog,
        claims=dependencies.claims,
        signals=ctx.strategy_signals(strategy) if ctx.strategy_signals is not None else (),
        healing_metrics=ctx.healing_metrics,
    )
    _write(ctx, body, result)
    # its Incident-rung signals, and once more when it leaves that rung (that clears its incident); not on every pass
    # of every Strategy: each call reads the Incident objects
    was_incident = strategy.status is not None and strategy.status.healing is not None
    was_incident = was_incident and strategy.status.healing.rung == HealingRung.INCIDENT  # type: ignore[union-attr]
    if ctx.record_signals is not None and (result.signals or was_incident):
        ctx.record_signals(result.signals, ctx.clock(), strategy)
    if result.requeue_after is None:
        return ctx.max_requeue_seconds
    return min(max(result.requeue_after.total_seconds(), MIN_REQUEUE_SECONDS), ctx.max_requeue_seconds)


def finalize_strategy_once(ctx: OperatorContext, namespace: str, name: str) -> ReconcileResult | None:
    """One deletion step; None once nothing is left (the finalizer may go)."""
    try:
        body = ctx.store.get(Strategy, namespace, name)
    except NotFoundError:
        return None
    result = finalize_strategy(
        _strategy_for_deletion(body),
        backend=ctx.backend,
        drained=is_drained(body),
        now=ctx.clock(),
        deletion_started=_deletion_started(body),
        drain_wait=timedelta(seconds=ctx.drain_wait_seconds),
    )
    if result.action is not None and result.action.kind is ActionKind.DRAIN:
        ctx.store.annotate(body, {ANNOTATION_DRAINED: "true"})
    _write(ctx, body, result)
    return None if result.done else result


def validate_account_once(
    ctx: OperatorContext, namespace: str, name: str, strategies: int, allocated_percent: float | None = None
) -> None:
    body = ctx.store.get(TradingAccount, namespace, name)
    try:
        account = parse_object(TradingAccount, body)
    except InvalidObjectError as exc:
        log.warning("TradingAccount %s/%s is refused by the API models: %s", namespace, name, exc)
        return
    result = reconcile_account(
        account, now=ctx.clock(), catalog=ctx.catalog, strategies=strategies, allocated_percent=allocated_percent
    )
    _write(ctx, body, result)


def validate_policy_once(ctx: OperatorContext, namespace: str, name: str, strategies: int) -> None:
    body = ctx.store.get(RiskPolicy, namespace, name)
    try:
        policy = parse_object(RiskPolicy, body)
    except InvalidObjectError as exc:
        log.warning("RiskPolicy %s/%s is refused by the API models: %s", namespace, name, exc)
        return
    _write(ctx, body, reconcile_policy(policy, now=ctx.clock(), strategies=strategies))


def incidents_once(
    ctx: OperatorContext, namespace: str, dependencies: Dependencies, backup_schedules: Sequence[BackupSchedule] = ()
) -> None:
    """The incident rules over one namespace's Strategies, at most once per ``incidents_interval_seconds`` however
    many TradingAccounts' timers ask; then the notifications that are due. Each runtime's ``/status`` is what the
    backend observes now (the same look the Strategy's reconcile takes). Then the namespace's BackupSchedules'
    results, again (``backup_results_once``): what a call on the schedule's event could not write is written now."""
    if ctx.incidents is None:
        return
    now = ctx.clock()
    last = ctx.incident_looks.get(namespace)
    if last is not None and (now - last).total_seconds() < ctx.incidents_interval_seconds:
        return
    ctx.incident_looks[namespace] = now
    strategies = [  # not one being deleted, nor one a restore holds (its runtime is stopped on purpose)
        s
        for s in ctx.store.strategies(namespace).values()
        if not (s.metadata.model_extra or {}).get("deletionTimestamp") and restore_hold(s.metadata.annotations) is None
    ]
    statuses = {(namespace, s.name): ctx.backend.observe(namespace, s.name).runtime_status for s in strategies}
    ctx.incidents.run(
        strategies=strategies,
        accounts={namespace: dependencies.accounts},
        policies={namespace: dependencies.policies},
        now=now,
        runtime_status=statuses,
        namespaces=[namespace],
    )
    ctx.incidents.service.notify(now)
    for schedule in backup_schedules:  # as kopf's watch holds them: the status the jobs wrote last
        try:
            backup_results_once(ctx, namespace, schedule.name, schedule.status or BackupScheduleStatus())
        except SlsbotError as exc:
            log.warning("BackupSchedule %s/%s: its results' incidents: %s", namespace, schedule.name, exc)


def account_risk_once(
    ctx: OperatorContext, namespace: str, name: str, dependencies: Dependencies
) -> AccountRiskReport | None:
    """The account risk pass for one RiskPolicy: its runtimes' figures read, their headroom (or kill switch) pushed
    where it changed or is due; None when the policy is not (or no longer) usable. A runtime that fails is logged and
    tried again next time."""
    policy = dependencies.policies.get(name)
    if policy is None:
        return None
    cuts = ctx.size_cuts() if ctx.size_cuts is not None else set()
    if (
        policy.spec.scope == RiskScope.STRATEGY
        and not policy.spec.kill_switch
        and not any(ns == namespace for ns, _ in cuts)
        and not ctx.headroom.limited_under(namespace, name)
    ):
        return None  # nothing shared, no kill switch and no size cut to push or lift: no LIST, no call
    strategies = [  # as the supervisor: a Strategy being deleted is being drained, not given room
        s
        for s in ctx.store.strategies(namespace).values()
        if not (s.metadata.model_extra or {}).get("deletionTimestamp")
    ]
    report = account_risk_pass(
        policies=[policy],
        accounts={namespace: dict(dependencies.accounts)},
        strategies=strategies,
        backend=ctx.backend,
        now=ctx.clock(),
        pushes=ctx.headroom,
        settings=ctx.account_risk,
        size_cuts=cuts,
    )
    for error in report.errors:
        log.warning("RiskPolicy %s/%s: %s", namespace, name, error)
    return report


def reconcile_experiment_once(
    ctx: OperatorContext, namespace: str, name: str, dependencies: Dependencies
) -> float | None:
    """Reconcile one Experiment once (validate it, then run its controller); the seconds until it should be looked
    at again, None if it is gone."""
    try:
        body = ctx.store.get(Experiment, namespace, name)
    except NotFoundError:
        return None
    if body["metadata"].get("deletionTimestamp"):
        return ctx.max_requeue_seconds  # the garbage collector takes what it owns; nothing to start now
    try:
        experiment = parse_object(Experiment, body)
    except InvalidObjectError as exc:
        log.warning("Experiment %s/%s is refused by the API models: %s", namespace, name, exc)
        return ctx.max_requeue_seconds
    result = reconcile_experiment(
        experiment,
        strategies=ctx.store.strategies(namespace),
        now=ctx.clock(),
        accounts=dependencies.accounts,
        policies=dependencies.policies,
        ports=ctx.experiment_ports,
    )
    _write(ctx, body, result)
    if result.requeue_after is None:
        return ctx.max_requeue_seconds
    return min(max(result.requeue_after.total_seconds(), MIN_REQUEUE_SECONDS), ctx.max_requeue_seconds)


def _write(ctx: OperatorContext, body: dict[str, Any], result: ReconcileResult) -> None:
    ctx.store.write_status(body, result.status)
    ctx.events.record(body, result.events)


def _report_invalid_strategy(ctx: OperatorContext, body: dict[str, Any], exc: InvalidObjectError) -> None:
    try:
        previous = StrategyStatus.model_validate(body.get("status") or {})
    except ValueError:
        previous = None
    status = strategy_status(
        previous, generation=int(body["metadata"].get("generation") or 1), now=ctx.clock(), problems=exc.problems
    )
    ctx.store.write_status(body, status)
    ctx.events.record(body, [Event("Warning", "InvalidSpec", str(exc))])


def _deletion_started(body: dict[str, Any]) -> datetime | None:
    stamp = (body.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None


def _strategy_for_deletion(body: dict[str, Any]) -> Strategy:
    """The Strategy, or as much of it as deletion needs when the models refuse the rest."""
    try:
        return parse_object(Strategy, body)
    except InvalidObjectError:
        try:
            on_delete = OnDelete.model_validate((body.get("spec") or {}).get("onDelete") or {})
        except ValueError:
            on_delete = OnDelete()
        return Strategy.model_construct(
            kind="Strategy",
            metadata=ObjectMeta.model_validate(body["metadata"]),
            spec=StrategySpec.model_construct(on_delete=on_delete),
            status=None,
        )
