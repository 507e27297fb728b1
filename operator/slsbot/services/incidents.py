"""Incidents: record each pass's signals (open, bump, clear, auto-resolve), let a person acknowledge and resolve, write
a post-mortem bundle when a severity 1 or 2 incident is resolved, and send the notifications the plan says are due,
retrying a failed delivery with backoff.

The decisions are ``domain.incidents`` and ``domain.notification_plan``; this service reads and writes through the
``IncidentStore`` port and sends through ``NotificationSender``. Both the supervisor's pass and the operator call
``record_signals``; the admin API calls ``acknowledge`` and ``resolve``. One lock orders them, so a person's
acknowledgement is never overwritten by a pass that read the incident before it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from slsbot.api import RiskPolicy, RiskPolicySpec, Strategy, TradingAccount, parse_duration
from slsbot.api.health import Notifications
from slsbot.domain.errors import NotFoundError, NotificationFailed, SlsbotError
from slsbot.domain.incident_rules import (
    IncidentSignal,
    StrategyObservation,
    daily_returns,
    exchange_lost_since,
    severity_signals,
)
from slsbot.domain.incidents import (
    AUTOMATIC,
    HEALING_FAMILY,
    RULES_FAMILY,
    Change,
    Incident,
    IncidentChange,
    acknowledge,
    family_of,
    fold_signals,
    needs_postmortem,
    note_notified,
    resolve,
)
from slsbot.domain.notification_plan import Message, NotificationState, merge_notifications, plan_notifications
from slsbot.domain.ports import IncidentStore, NotificationSender
from slsbot.domain.runtime_performance import RuntimePerformance

log = logging.getLogger(__name__)
T = TypeVar("T")


class IncidentEvents(Protocol):
    """What the service reports (``adapters.control_metrics.IncidentMetrics``)."""

    def set_open(self, counts: dict[int, int]) -> None: ...
    def incident_opened(self, severity: int, rule: str) -> None: ...
    def incident_resolved(self, severity: int, automatic: bool) -> None: ...
    def notification_sent(self, receiver_type: str) -> None: ...
    def notification_failed(self, receiver_type: str, retried: bool) -> None: ...


class PostmortemArchive(Protocol):
    """Builds and keeps an incident's post-mortem bundle (``slsbot up``: a JSON file under the state folder,
    ``adapters.postmortems``; a cluster: a ConfigMap owned by the Incident object, ``adapters.kubernetes.postmortems``).
    ``write`` keeps it once the incident is resolved; ``read`` answers the kept one, or one built now."""

    def write(self, incident: Incident) -> None: ...
    def read(self, incident: Incident) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delivery retries: ``base * 2**n`` after the n-th failure, capped, at most ``attempts`` tries in all; a
    receiver's Retry-After wins when longer."""

    base: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=5)
    attempts: int = 8

    def delay(self, failures: int, retry_after: float | None) -> timedelta:
        backoff = min(self.base * 2 ** (failures - 1), self.cap)
        return max(backoff, timedelta(seconds=retry_after or 0))


@dataclass(slots=True)
class _Delivery:
    message: Message
    failures: int = 0
    next_at: datetime | None = None


@dataclass(slots=True)
class IncidentService:
    store: IncidentStore
    sender: NotificationSender | None
    notifications_for: Callable[[str], Notifications] = lambda _namespace: Notifications()
    postmortems: PostmortemArchive | None = None
    events: IncidentEvents | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _plan: NotificationState = field(default_factory=NotificationState)
    _queue: list[_Delivery] = field(default_factory=list)

    def record_signals(
        self,
        signals: Iterable[IncidentSignal],
        now: datetime,
        *,
        evaluated: Iterable[str] = (HEALING_FAMILY,),
        recover_after: Mapping[str, timedelta] | None = None,
        namespaces: Iterable[str] | None = None,
        objects: Iterable[str] | None = None,
    ) -> list[IncidentChange]:
        """Fold one call's signals into the incidents and write what changed.

        What the call is complete for decides which active incidents whose cause is absent may clear (and later
        resolve); the others are left alone: ``evaluated``, the signal families (``rules``: the severity rules,
        ``healing``: the ladder's ``Healing<Class>`` signals; the default suits the ladder's
        ``record_signals(signals, now)``), ``namespaces`` (None: all) and ``objects`` (None: all; e.g.
        ``["Strategy/btc-trend"]`` for a call about one Strategy, as the operator's per-Strategy handlers make).
        ``recover_after``: cause -> the policy's ``healing.recoverAfter``. The post-mortem bundles of the incidents
        resolved are written after the lock is released (building one asks the runtimes)."""
        resolved: list[Incident] = []
        with self._lock:
            active = self.store.active_incidents()
            changes = fold_signals(
                active,
                signals,
                now,
                evaluated=evaluated,
                recover_after=recover_after,
                namespaces=namespaces,
                objects=objects,
            )
            for change in changes:
                incident = change.incident
                self.store.save_incident(incident)
                if change.change is Change.OPENED:
                    log.warning(
                        "incident %s opened: severity %d %s in %s: %s (runbook %s)",
                        incident.id,
                        incident.spec.severity,
                        incident.spec.rule,
                        incident.namespace,
                        incident.spec.message,
                        incident.spec.runbook,
                    )
                    if self.events:
                        self.events.incident_opened(incident.spec.severity, incident.spec.rule)
                elif change.change is Change.RESOLVED:
                    log.info("incident %s resolved automatically", incident.id)
                    self._resolved(incident, automatic=True)
                    resolved.append(incident)
            if changes:
                self._count_open()
        self._write_postmortems(resolved)
        return changes

    def acknowledge(self, incident_id: str, actor: str, now: datetime, note: str = "") -> Incident:
        """Raises NotFoundError, ConflictError (already resolved); changes nothing then."""
        with self._lock:
            incident = self.store.get_incident(incident_id)
            updated = acknowledge(incident, actor, now, note)
            if updated != incident:
                self.store.save_incident(updated)
            return updated

    def resolve(self, incident_id: str, actor: str, now: datetime, note: str = "") -> Incident:
        """Resolved by a person; a severity 1 or 2 incident gets its post-mortem bundle. Raises NotFoundError."""
        with self._lock:
            incident = self.store.get_incident(incident_id)
            updated = resolve(incident, actor, now, note)
            changed = updated != incident
            if changed:
                self.store.save_incident(updated)
                self._resolved(updated, automatic=False)
                self._count_open()
        if changed:
            self._write_postmortems([updated])
        return updated

    def notify(self, now: datetime) -> int:
        """Plan the messages due now, then try every delivery that is due (new ones and retries). Returns how many
        were delivered. A failure is logged by receiver name, never by URL. Without a sender (the admin API's own
        service in tests) nothing is planned or sent."""
        if self.sender is None:
            return 0
        with self._lock:
            active = self.store.active_incidents()
            self._plan, messages = plan_notifications(self._plan, active, self.notifications_for, now)
            self._queue.extend(_Delivery(message) for message in messages)
            due = [d for d in self._queue if d.next_at is None or d.next_at <= now]
        delivered = 0
        for delivery in due:
            if self._deliver(delivery, now):
                delivered += 1
        return delivered

    def pending_deliveries(self) -> int:
        with self._lock:
            return len(self._queue)

    def _deliver(self, delivery: _Delivery, now: datetime) -> bool:
        receiver = delivery.message.receiver
        kind = str(receiver.type)
        assert self.sender is not None
        try:
            self.sender.send(delivery.message)
        except NotificationFailed as exc:
            delivery.failures += 1
            retried = exc.retryable and delivery.failures < self.retry.attempts
            if self.events:
                self.events.notification_failed(kind, retried)
            with self._lock:
                if retried:
                    delivery.next_at = now + self.retry.delay(delivery.failures, exc.retry_after)
                    log.warning("notification to %s failed (%s); retrying at %s", receiver.name, exc, delivery.next_at)
                else:
                    self._queue.remove(delivery)
                    log.error(
                        "notification to %s dropped after %d attempt(s): %s", receiver.name, delivery.failures, exc
                    )
            return False
        if self.events:
            self.events.notification_sent(kind)
        with self._lock:
            self._queue.remove(delivery)
            for incident in delivery.message.firing:
                try:
                    current = self.store.get_incident(incident.id)
                except NotFoundError:  # gone meanwhile: nothing to note
                    continue
                self.store.save_incident(note_notified(current, receiver.name, now))
        return True

    def _resolved(self, incident: Incident, *, automatic: bool) -> None:
        if self.events:
            self.events.incident_resolved(incident.spec.severity, automatic)

    def _write_postmortems(self, resolved: Iterable[Incident]) -> None:
        """The bundles of the severity 1 and 2 incidents among ``resolved``, outside the lock: building one asks the
        runtimes (up to their timeout each), and the passes and the people's acknowledgements must not wait for it."""
        if self.postmortems is None:
            return
        for incident in resolved:
            if not needs_postmortem(incident):
                continue
            try:
                self.postmortems.write(incident)
            except Exception:  # the bundle can be built again on demand; resolving must not fail for it
                log.exception("could not write the post-mortem bundle of incident %s", incident.id)

    def _count_open(self) -> None:
        if self.events is None:
            return
        counts: dict[int, int] = {}
        for incident in self.store.active_incidents():
            counts[incident.spec.severity] = counts.get(incident.spec.severity, 0) + 1
        self.events.set_open(counts)


class PerformanceSource(Protocol):
    """A runtime's ``GET /performance`` (``RolloutRuntimes.performance``); raises RuntimeUnreachable."""

    def performance(self, namespace: str, name: str, *, since: int) -> RuntimePerformance: ...


@dataclass(slots=True)
class DailyEquity:
    """Each bot's equity at the end of each UTC day, from its runtime's ``/performance`` periods (read with a
    cursor, at most once per ``every`` per bot), for the correlation rule. Kept in memory: after a restart the
    history is read again from the runtimes (``since=0``)."""

    source: PerformanceSource | None
    every: timedelta = timedelta(minutes=5)
    days_kept: int = 60
    _points: dict[tuple[str, str], dict[int, float]] = field(default_factory=dict)  # key -> {day start ms: equity}
    _cursor: dict[tuple[str, str], int] = field(default_factory=dict)
    _looked: dict[tuple[str, str], datetime] = field(default_factory=dict)
    _correlated_at: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (namespace, account) -> when
    _correlations: dict[tuple[str, str], list[IncidentSignal]] = field(default_factory=dict)

    def correlation_due(self, namespace: str, account: str, now: datetime) -> bool:
        """Whether an account's correlation is computed in this pass: every ``every`` (its inputs move no faster)."""
        at = self._correlated_at.get((namespace, account))
        return at is None or now - at >= self.every

    def correlations(
        self, fresh: list[IncidentSignal], due: set[tuple[str, str]], present: set[tuple[str, str]], now: datetime
    ) -> list[IncidentSignal]:
        """The Correlation signals of every ``present`` account: this pass's for the ``due`` ones, else the last."""
        for key in due:
            self._correlated_at[key] = now
            self._correlations[key] = [s for s in fresh if s.cause == f"Correlation:{key[0]}/{key[1]}"]
        for table in (self._correlated_at, self._correlations):
            for key in [k for k in table if k not in present]:
                del table[key]
        return [signal for key in sorted(present) for signal in self._correlations.get(key, [])]

    def returns(self, namespace: str, name: str, now: datetime) -> dict[str, float]:
        key = (namespace, name)
        if self.source is not None and (key not in self._looked or now - self._looked[key] >= self.every):
            self._looked[key] = now
            try:
                performance = self.source.performance(namespace, name, since=self._cursor.get(key, 0))
            except SlsbotError:
                performance = None
            if performance is not None:
                days = self._points.setdefault(key, {})
                for period in performance.periods:
                    days[period.ts - period.ts % 86_400_000] = period.equity
                    self._cursor[key] = max(self._cursor.get(key, 0), period.ts)
                for day in sorted(days)[: max(0, len(days) - self.days_kept)]:
                    del days[day]
        return daily_returns(self._points.get(key, {}).items())

    def retain(self, keys: set[tuple[str, str]]) -> None:
        for table in (self._points, self._cursor, self._looked):
            for key in [k for k in table if k not in keys]:
                del table[key]


@dataclass(slots=True)
class NotificationDirectory:
    """Which notifications config covers a namespace: its RiskPolicies' merged, refreshed every pass."""

    _by_namespace: dict[str, Notifications] = field(default_factory=dict)

    def update(self, policies: Mapping[str, Mapping[str, RiskPolicy]]) -> None:
        self._by_namespace = {
            namespace: merge_notifications([by_name[n].spec.notifications for n in sorted(by_name)])
            for namespace, by_name in policies.items()
        }

    def update_namespaces(self, policies: Mapping[str, Mapping[str, RiskPolicy]]) -> None:
        """Refresh the namespaces in ``policies`` only (a pass over some namespaces)."""
        for namespace, by_name in policies.items():
            self._by_namespace[namespace] = merge_notifications(
                [by_name[n].spec.notifications for n in sorted(by_name)]
            )

    def __call__(self, namespace: str) -> Notifications:
        return self._by_namespace.get(namespace) or Notifications()


def incident_pass(
    service: IncidentService,
    *,
    strategies: Iterable[Strategy],
    accounts: Mapping[str, Mapping[str, TradingAccount]],
    policies: Mapping[str, Mapping[str, RiskPolicy]],
    runtime_status: Mapping[tuple[str, str], Mapping[str, object]],
    now: datetime,
    equity: DailyEquity | None = None,
    namespaces: Iterable[str] | None = None,
) -> list[IncidentChange]:
    """One pass of the severity rules over every Strategy and account, recorded (the ``rules`` family only: the
    healing ladder records its own). The supervisor calls it once per pass after the strategies; the operator from
    its incidents timer, one namespace at a time (``namespaces``). ``runtime_status``: each runtime's last
    ``/status``."""
    observations: list[StrategyObservation] = []
    policy_of: dict[tuple[str, str], RiskPolicySpec] = {}
    recover: dict[str, timedelta] = {}
    present: set[tuple[str, str]] = set()
    due: set[tuple[str, str]] = set()
    for strategy in strategies:
        namespace, name = strategy.namespace, strategy.name
        account_name = strategy.spec.account_ref.name
        present.add((namespace, account_name))
        if equity is not None and equity.correlation_due(namespace, account_name, now):
            due.add((namespace, account_name))
        account = accounts.get(namespace, {}).get(account_name)
        policy = RiskPolicySpec()
        if account is not None and account.spec.risk_policy_ref is not None:
            found = policies.get(namespace, {}).get(account.spec.risk_policy_ref.name)
            if found is not None:
                policy = found.spec
        policy = policy.with_overrides(strategy.spec.risk)
        policy_of[(namespace, name)] = policy
        status = strategy.status
        observations.append(
            StrategyObservation(
                namespace=namespace,
                name=name,
                account=account_name,
                runtime_status=runtime_status.get((namespace, name), {}),
                equity=status.equity if status else None,
                drawdown_percent=status.drawdown_percent if status else None,
                daily_returns=equity.returns(namespace, name, now) if (namespace, account_name) in due else {},
                exchange_lost_since=exchange_lost_since(status.healing if status else None),
            )
        )
    signals = severity_signals(observations, policy_of, now)
    if equity is not None:  # correlation moves with daily returns: computed every few minutes, the last result between
        fresh = [s for s in signals if s.rule == "Correlation"]
        signals = [s for s in signals if s.rule != "Correlation"] + equity.correlations(fresh, due, present, now)
    for item in observations:
        wait = parse_duration(policy_of[(item.namespace, item.name)].healing.recover_after)
        for signal in signals:
            if signal.namespace == item.namespace and f"Strategy/{item.name}" in signal.objects:
                recover.setdefault(signal.cause, wait)
    if equity is not None:
        equity.retain({(o.namespace, o.name) for o in observations})
    return service.record_signals(signals, now, evaluated=(RULES_FAMILY,), recover_after=recover, namespaces=namespaces)


@dataclass(slots=True)
class PassIncidents:
    """What the supervisor's pass (and the operator's incidents timer) runs after the strategies: the rules over
    every runtime's last ``/status``, recorded. Notifications go out from ``run_notifier``, on their own thread, so
    a slow receiver never holds up a pass."""

    service: IncidentService
    runtime_status: Callable[[], Mapping[tuple[str, str], Mapping[str, object]]] | None
    directory: NotificationDirectory
    equity: DailyEquity | None = None

    def run(
        self,
        *,
        strategies: Iterable[Strategy],
        accounts: Mapping[str, Mapping[str, TradingAccount]],
        policies: Mapping[str, Mapping[str, RiskPolicy]],
        now: datetime,
        runtime_status: Mapping[tuple[str, str], Mapping[str, object]] | None = None,
        namespaces: Iterable[str] | None = None,
    ) -> list[IncidentChange]:
        """``runtime_status``: as observed by the caller (the operator); else ``self.runtime_status()``."""
        if namespaces is None:
            self.directory.update(policies)
        else:
            self.directory.update_namespaces(policies)
        if runtime_status is None:
            runtime_status = self.runtime_status() if self.runtime_status is not None else {}
        return incident_pass(
            self.service,
            strategies=strategies,
            accounts=accounts,
            policies=policies,
            runtime_status=runtime_status,
            now=now,
            equity=self.equity,
            namespaces=namespaces,
        )


def in_force_by_strategy(incidents: Iterable[Incident]) -> dict[tuple[str, str], list[IncidentSignal]]:
    """The severity-1/2 rule incidents still in force (active, their cause not cleared), as signals, keyed by the
    Strategy each one acts on: the first Strategy it names (a bot's own rule names the bot; an account's drawdown or
    correlation names its worst contributor first, and only that one is paused). The ladder's own ``Healing<Class>``
    incidents are left out: the ladder already stands where they came from."""
    found: dict[tuple[str, str], list[IncidentSignal]] = {}
    for incident in incidents:
        spec, status = incident.spec, incident.status
        if spec.severity > 2 or family_of(spec.rule) != RULES_FAMILY or status.clear_since is not None:
            continue
        first = next((o.split("/", 1)[1] for o in spec.objects if o.startswith("Strategy/")), None)
        if first is None:
            continue
        signal = IncidentSignal(
            cause=spec.cause,
            severity=spec.severity,
            rule=spec.rule,
            namespace=incident.namespace,
            objects=tuple(spec.objects),
            message=spec.message,
            runbook=spec.runbook,
            detected_at=status.opened_at,
        )
        found.setdefault((incident.namespace, first), []).append(signal)
    return found


class ReadEvery(Generic[T]):
    """``read()`` remembered for ``ttl`` seconds: a pass asks once per Strategy, the store is read once per pass."""

    def __init__(self, read: Callable[[], T], *, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._ttl = ttl
        self._clock = clock
        self._read_at: float | None = None
        self._value: T | None = None

    def __call__(self) -> T:
        now = self._clock()
        if self._value is None or self._read_at is None or now - self._read_at >= self._ttl:
            self._value = self._read()
            self._read_at = now
        return self._value


class StrategySignals:
    """``strategy -> signals`` for the healing ladder (``in_force_by_strategy``), the store read at most once per
    ``ttl`` seconds."""

    def __init__(self, store: IncidentStore, *, ttl: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self._by_strategy = ReadEvery(lambda: in_force_by_strategy(store.active_incidents()), ttl=ttl, clock=clock)

    def __call__(self, strategy: Strategy) -> list[IncidentSignal]:
        return self._by_strategy().get((strategy.namespace, strategy.name), [])


def open_incidents_by_account(
    incidents: Iterable[Incident], strategy_accounts: Mapping[tuple[str, str], str]
) -> dict[tuple[str, str], int]:
    """(namespace, account) -> its active incidents: those naming the account, or one of its Strategies
    (``strategy_accounts``: (namespace, strategy) -> account), each counted once per account."""
    counts: dict[tuple[str, str], int] = {}
    for incident in incidents:
        touched: set[str] = set()
        for item in incident.spec.objects:
            kind, _, name = item.partition("/")
            if kind == "TradingAccount":
                touched.add(name)
            elif kind == "Strategy" and (incident.namespace, name) in strategy_accounts:
                touched.add(strategy_accounts[(incident.namespace, name)])
        for account in touched:
            counts[(incident.namespace, account)] = counts.get((incident.namespace, account), 0) + 1
    return counts


def accounts_cut(incidents: Iterable[Incident]) -> set[tuple[str, str]]:
    """The (namespace, account) pairs under a severity-2 rule incident still in force (drawdown, correlation, a
    model's accuracy drop): the account pass cuts their runtimes' entries to the policy's ``sizeMultiplier``."""
    found: set[tuple[str, str]] = set()
    for incident in incidents:
        spec = incident.spec
        if spec.severity != 2 or family_of(spec.rule) != RULES_FAMILY or incident.status.clear_since is not None:
            continue
        found.update((incident.namespace, o.split("/", 1)[1]) for o in spec.objects if o.startswith("TradingAccount/"))
    return found


def accounts_cut_every(store: IncidentStore, *, ttl: float = 0.5) -> ReadEvery[set[tuple[str, str]]]:
    """``accounts_cut`` over the store, read at most once per ``ttl`` seconds (the account pass's ``size_cuts``)."""
    return ReadEvery(lambda: accounts_cut(store.active_incidents()), ttl=ttl)


def run_notifier(
    service: IncidentService, *, stop: threading.Event, interval: float, clock: Callable[[], datetime]
) -> None:
    """Send what is due every ``interval`` seconds until ``stop`` is set."""
    while not stop.wait(interval):
        try:
            service.notify(clock())
        except Exception:  # the store failed (locked, disk full): log, try again next time
            log.exception("sending incident notifications failed; retrying")


__all__ = [
    "AUTOMATIC",
    "DailyEquity",
    "IncidentEvents",
    "IncidentService",
    "NotificationDirectory",
    "PassIncidents",
    "PerformanceSource",
    "PostmortemArchive",
    "ReadEvery",
    "RetryPolicy",
    "StrategySignals",
    "accounts_cut",
    "accounts_cut_every",
    "in_force_by_strategy",
    "incident_pass",
    "open_incidents_by_account",
    "run_notifier",
]
