"""The local supervisor's loop: every ``tick_interval`` read the desired state from the store, reconcile every
object with THE shared reconcile service (``services.reconcile``, the same code the kopf operator runs), and
write each object's status and events back.

Each pass looks at every strategy, whatever ``requeue_after`` the reconcile asked for: the loop is cheap (a
database read and one HTTP probe per runtime) and this is how a dead runtime is seen within a tick. A backend that
can (``ProbesInBulk``) asks every runtime at once at the start of a pass, so one slow runtime does not hold up the
others' probes. Crash-loop
backoff is not the loop's business: ``plan_runtime`` waits out ``BackoffPolicy`` itself, from the failures the
backend observed.

The store and the backend are passed in (ports below), so this module imports no adapter; ``slsbot up`` wires
the SQLite store and the local process backend, and the unit tests an in-memory backend.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from slsbot.api import Experiment, RiskPolicy, Strategy, TradingAccount
from slsbot.api.base import ObjectStatus
from slsbot.domain.allocation import AllocationClaim, allocated_percent
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.plan import DRAIN_WAIT_LIMIT, ActionKind, BackoffPolicy, LivenessPolicy
from slsbot.domain.ports import HealingMetrics, RuntimeBackend
from slsbot.services.account_risk import AccountRiskSettings, HeadroomPushes, account_risk_pass
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


class StoredResource(Protocol):
    @property
    def resource(self) -> Any: ...

    @property
    def deleting(self) -> bool: ...

    @property
    def drained(self) -> bool: ...

    @property
    def deletion_started(self) -> datetime | None: ...


class SupervisorStore(Protocol):
    def desired_objects(self) -> Sequence[StoredResource]: ...

    def record_status(self, *, kind: str, namespace: str, name: str, status: ObjectStatus) -> Any: ...

    def record_events(self, *, kind: str, namespace: str, name: str, events: Sequence[Event]) -> None: ...

    def mark_drained(self, *, namespace: str, name: str) -> None: ...

    def forget(self, *, kind: str, namespace: str, name: str) -> None: ...


@runtime_checkable
class ProbesInBulk(Protocol):
    def probe(self, keys: Sequence[tuple[str, str]]) -> None:
        """Ask the runtimes of ``keys`` (namespace, name) how they are, all at once; ``observe`` then uses the
        answers instead of asking again, once each."""
        ...


@runtime_checkable
class ForgetsRuntimes(Protocol):
    def forget(self, namespace: str, name: str) -> None:
        """The Strategy's deletion finished and the store dropped it: drop whatever the backend keeps of it."""
        ...


@runtime_checkable
class StopsWhenSupervisorStops(Protocol):
    def stop_all(self) -> None:
        """Stop every process it started (SIGTERM, then SIGKILL after a deadline) and wait for them."""
        ...


@runtime_checkable
class RetainsExperiments(Protocol):
    def retain(self, experiments: Sequence[tuple[str, str]]) -> None:
        """Stop what runs for Experiments (namespace, name) that are not in ``experiments`` any more."""
        ...


@dataclass(slots=True)
class ExperimentLooks:
    """When each Experiment is next due: an Experiment is reconciled when its ``requeue_after`` has passed or its
    spec changed, not on every pass (a tuning run's observation reads its study, which costs more than a probe)."""

    due: dict[tuple[str, str], tuple[int, datetime | None]] = field(default_factory=dict)

    def is_due(self, experiment: Experiment, now: datetime) -> bool:
        seen = self.due.get((experiment.namespace, experiment.name))
        if seen is None or seen[0] != experiment.metadata.generation:
            return True
        return seen[1] is not None and now >= seen[1]

    def looked(self, experiment: Experiment, now: datetime, requeue: timedelta | None, *, longest: timedelta) -> None:
        wait = longest if requeue is None else min(requeue, longest)
        self.due[(experiment.namespace, experiment.name)] = (experiment.metadata.generation, now + wait)

    def retain(self, keys: set[tuple[str, str]]) -> None:
        for key in [k for k in self.due if k not in keys]:
            del self.due[key]


# An Experiment is looked at at least this often, whatever it asked for (a missed change, a Strategy it waits for).
EXPERIMENT_LONGEST_WAIT = timedelta(seconds=30)


class SupervisedBackend(RuntimeBackend, Protocol):
    def stop_all(self) -> None:
        """Stop every runtime (SIGTERM, then SIGKILL after a deadline) and wait for them."""
        ...


#: The severity-2 size cut of the incident rules (issue 9, part I): (namespace, account) -> multiplier. None until the
#: incidents service is wired here at merge (SEVERITY2_SIZE_MULTIPLIERS_HOOK).
SizeCuts = Callable[[], Collection[tuple[str, str]]]  # (namespace, account) under a severity-2 incident


@dataclass(frozen=True, slots=True)
class SupervisorOptions:
    tick_interval: float = 0.5
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    liveness: LivenessPolicy = field(default_factory=LivenessPolicy)
    drain_wait: timedelta = DRAIN_WAIT_LIMIT  # how long a deletion waits for a runtime to drain
    catalog: Catalog = field(default_factory=Catalog)
    healing_metrics: HealingMetrics | None = None  # the healing ladder's measurements (adapters.control_metrics)
    # The incidents hooks (issue 9, part I): the open severity-1/2 signals naming a Strategy, for its healing ladder,
    # and where the ladder's own Incident-rung signals go (the incidents service's ``record_signals``), once per pass
    # with all of them (it saw every Strategy, so an incident whose signal is gone may clear).
    strategy_signals: Callable[[Strategy], Sequence[IncidentSignal]] | None = None
    record_signals: Callable[[Sequence[IncidentSignal], datetime], None] | None = None
    account_risk: AccountRiskSettings = field(default_factory=AccountRiskSettings)
    size_cuts: SizeCuts | None = None  # the accounts whose entries a severity-2 incident cuts (services.incidents)


@dataclass(slots=True)
class PassReport:
    """What one pass did: the actions taken ("Kind ns/name: Action") and the objects that failed."""

    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    headroom: dict[str, dict[str, Any]] = field(default_factory=dict)  # "ns/name" -> the runtime's answer to a push


def _key(resource: Any) -> str:
    return f"{resource.kind} {resource.namespace}/{resource.name}"


def supervise_once(
    *,
    store: SupervisorStore,
    backend: RuntimeBackend,
    now: datetime,
    options: SupervisorOptions,
    experiment_ports: ExperimentPorts | None = None,
    looks: ExperimentLooks | None = None,
    incidents: PassIncidents | None = None,
    headroom: HeadroomPushes | None = None,
) -> PassReport:
    """One pass over every object. A failure on one object is logged, recorded as a Warning event and does not
    stop the others. ``experiment_ports``: what the Experiment controllers run on (an A/B rollout's runtimes and
    owned objects); without them an Experiment is only validated. ``headroom``: what the account risk pass pushed
    so far (``services.account_risk``); without it no headroom is pushed."""
    report = PassReport()
    stored = store.desired_objects()
    accounts: dict[str, dict[str, TradingAccount]] = defaultdict(dict)
    policies: dict[str, dict[str, RiskPolicy]] = defaultdict(dict)
    strategies: list[StoredResource] = []
    experiments: list[Experiment] = []
    for item in stored:
        resource = item.resource
        if isinstance(resource, TradingAccount):
            accounts[resource.namespace][resource.name] = resource
        elif isinstance(resource, RiskPolicy):
            policies[resource.namespace][resource.name] = resource
        elif isinstance(resource, Strategy):
            strategies.append(item)
        elif isinstance(resource, Experiment):
            experiments.append(resource)

    users_of_account: dict[tuple[str, str], int] = defaultdict(int)
    users_of_policy: dict[tuple[str, str], int] = defaultdict(int)
    # Every Strategy's share, deleting ones too: their runtimes trade until drained.
    claims: dict[str, list[AllocationClaim]] = defaultdict(list)
    for item in strategies:
        strategy = item.resource
        claims[strategy.namespace].append(AllocationClaim.of(strategy))
        account = accounts[strategy.namespace].get(strategy.spec.account_ref.name)
        users_of_account[(strategy.namespace, strategy.spec.account_ref.name)] += 1
        if account is not None and account.spec.risk_policy_ref is not None:
            users_of_policy[(strategy.namespace, account.spec.risk_policy_ref.name)] += 1

    if isinstance(backend, ProbesInBulk):
        backend.probe([(item.resource.namespace, item.resource.name) for item in strategies if not item.deleting])
    for account in (a for by_name in accounts.values() for a in by_name.values()):
        users = users_of_account[(account.namespace, account.name)]
        allocated = allocated_percent(account.name, claims[account.namespace])
        _guarded(
            report,
            store,
            account,
            lambda a=account, n=users, p=allocated: reconcile_account(
                a, now=now, catalog=options.catalog, strategies=n, allocated_percent=p
            ),
        )
    for policy in (p for by_name in policies.values() for p in by_name.values()):
        users = users_of_policy[(policy.namespace, policy.name)]
        _guarded(report, store, policy, lambda p=policy, n=users: reconcile_policy(p, now=now, strategies=n))
    healing_signals: list[IncidentSignal] = []
    if headroom is not None:
        # Before the strategies: a kill switch must reach the running runtimes before the config change restarts them.
        _account_risk(report, backend, now, options, headroom, policies, accounts, strategies)
    for item in strategies:
        strategy = item.resource
        if item.deleting:
            _finalize(report, store, backend, item, now, options)
            continue
        result = _guarded(
            report,
            store,
            strategy,
            lambda s=strategy: reconcile_strategy(
                s,
                accounts=accounts[s.namespace],
                policies=policies[s.namespace],
                backend=backend,
                now=now,
                catalog=options.catalog,
                backoff=options.backoff,
                liveness=options.liveness,
                claims=claims[s.namespace],
                signals=options.strategy_signals(s) if options.strategy_signals is not None else (),
                healing_metrics=options.healing_metrics,
            ),
        )
        if result is not None:
            healing_signals.extend(result.signals)
    if options.record_signals is not None:  # every pass, so that a ladder that recovered clears its incident
        try:
            options.record_signals(healing_signals, now)
        except Exception as exc:  # the loop's edge: incidents failing must not stop the reconcile
            log.exception("recording the healing ladder's incidents failed")
            report.errors.append(f"incidents: {exc}")
    by_namespace: dict[str, dict[str, Strategy]] = defaultdict(dict)
    for item in strategies:
        if not item.deleting:
            by_namespace[item.resource.namespace][item.resource.name] = item.resource
    if incidents is not None:
        try:
            live = [s for by_name in by_namespace.values() for s in by_name.values()]
            incidents.run(strategies=live, accounts=accounts, policies=policies, now=now)
        except Exception as exc:  # the loop's edge: incidents failing must not stop the reconcile
            log.exception("the incidents pass failed")
            report.errors.append(f"incidents: {exc}")
    for experiment in experiments:
        if looks is not None and not looks.is_due(experiment, now):
            continue
        result = _guarded(
            report,
            store,
            experiment,
            lambda e=experiment: reconcile_experiment(
                e,
                strategies=by_namespace[e.namespace],
                now=now,
                accounts=accounts[e.namespace],
                policies=policies[e.namespace],
                ports=experiment_ports,
            ),
        )
        if looks is not None:
            looks.looked(experiment, now, result.requeue_after if result else None, longest=EXPERIMENT_LONGEST_WAIT)
    present = {(e.namespace, e.name) for e in experiments}
    if looks is not None:
        looks.retain(present)
    tuning = experiment_ports.tuning if experiment_ports is not None else None
    if isinstance(tuning, RetainsExperiments):
        tuning.retain(sorted(present))
    return report


def _account_risk(
    report: PassReport,
    backend: RuntimeBackend,
    now: datetime,
    options: SupervisorOptions,
    pushes: HeadroomPushes,
    policies: dict[str, dict[str, RiskPolicy]],
    accounts: dict[str, dict[str, TradingAccount]],
    strategies: list[StoredResource],
) -> None:
    try:
        result = account_risk_pass(
            policies=[p for by_name in policies.values() for p in by_name.values()],
            accounts=accounts,
            strategies=[item.resource for item in strategies if not item.deleting],
            backend=backend,
            now=now,
            pushes=pushes,
            settings=options.account_risk,
            size_cuts=options.size_cuts() if options.size_cuts is not None else None,
        )
    except Exception as exc:  # the loop's edge: the strategies are reconciled whatever happens here
        log.exception("the account risk pass failed")
        report.errors.append(f"account risk: {exc}")
        return
    report.actions.extend(f"Strategy {key}: Headroom" for key in result.pushed)
    report.headroom.update(result.answers)
    report.errors.extend(f"account risk: {error}" for error in result.errors)


def _guarded(
    report: PassReport, store: SupervisorStore, resource: Any, reconcile: Callable[[], ReconcileResult]
) -> ReconcileResult | None:
    try:
        result = reconcile()
    except Exception as exc:  # the loop's edge: one broken object must not stop the others
        log.exception("reconciling %s failed", _key(resource))
        report.errors.append(f"{_key(resource)}: {exc}")
        store.record_events(
            kind=resource.kind,
            namespace=resource.namespace,
            name=resource.name,
            events=[Event("Warning", "ReconcileError", f"{type(exc).__name__}: {exc}")],
        )
        return None
    store.record_status(kind=resource.kind, namespace=resource.namespace, name=resource.name, status=result.status)
    store.record_events(kind=resource.kind, namespace=resource.namespace, name=resource.name, events=result.events)
    if result.action is not None and result.action.changes_something:
        report.actions.append(f"{_key(resource)}: {result.action.kind}")
    return result


def _finalize(
    report: PassReport,
    store: SupervisorStore,
    backend: RuntimeBackend,
    item: StoredResource,
    now: datetime,
    options: SupervisorOptions,
) -> None:
    strategy = item.resource
    result = _guarded(
        report,
        store,
        strategy,
        lambda: finalize_strategy(
            strategy,
            backend=backend,
            drained=item.drained,
            now=now,
            deletion_started=item.deletion_started,
            drain_wait=options.drain_wait,
        ),
    )
    if result is None:
        return
    if result.action is not None and result.action.kind is ActionKind.DRAIN:
        store.mark_drained(namespace=strategy.namespace, name=strategy.name)
    if result.done:
        store.forget(kind=strategy.kind, namespace=strategy.namespace, name=strategy.name)
        if isinstance(backend, ForgetsRuntimes):
            backend.forget(strategy.namespace, strategy.name)
        report.actions.append(f"{_key(strategy)}: Forgotten")


def run_supervisor(
    *,
    store: SupervisorStore,
    backend: SupervisedBackend,
    options: SupervisorOptions,
    stop: threading.Event,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    experiment_ports: ExperimentPorts | None = None,
    incidents: PassIncidents | None = None,
) -> None:
    """Pass after pass until ``stop`` is set, then stop every runtime and every tuning process. Returns once they
    are all gone."""
    log.info("supervisor started; a pass every %.2fs", options.tick_interval)
    looks = ExperimentLooks()
    headroom = HeadroomPushes()
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                supervise_once(
                    store=store,
                    backend=backend,
                    now=clock(),
                    options=options,
                    experiment_ports=experiment_ports,
                    looks=looks,
                    incidents=incidents,
                    headroom=headroom,
                )
            except Exception:  # the store itself failed (disk full, locked): log, retry next tick
                log.exception("supervisor pass failed; retrying")
            stop.wait(max(0.0, options.tick_interval - (time.monotonic() - started)))
    finally:
        log.info("supervisor stopping: stopping every runtime")
        backend.stop_all()
        tuning = experiment_ports.tuning if experiment_ports is not None else None
        if isinstance(tuning, StopsWhenSupervisorStops):
            tuning.stop_all()
        log.info("every runtime stopped")
