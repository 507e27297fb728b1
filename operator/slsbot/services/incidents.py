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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from slsbot.api.health import Notifications
from slsbot.domain.errors import NotFoundError, NotificationFailed
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.incidents import (
    AUTOMATIC,
    FAMILIES,
    Change,
    Incident,
    IncidentChange,
    acknowledge,
    fold_signals,
    needs_postmortem,
    note_notified,
    resolve,
)
from slsbot.domain.notification_plan import Message, NotificationState, plan_notifications
from slsbot.domain.ports import IncidentStore, NotificationSender

log = logging.getLogger(__name__)


class IncidentEvents(Protocol):
    """What the service reports (``adapters.control_metrics.IncidentMetrics``)."""

    def set_open(self, counts: dict[int, int]) -> None: ...
    def incident_opened(self, severity: int, rule: str) -> None: ...
    def incident_resolved(self, severity: int, automatic: bool) -> None: ...
    def notification_sent(self, receiver_type: str) -> None: ...
    def notification_failed(self, receiver_type: str, retried: bool) -> None: ...


class PostmortemArchive(Protocol):
    """Builds and keeps an incident's post-mortem bundle (locally: a JSON file under the state folder)."""

    def write(self, incident: Incident) -> None: ...


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
        evaluated: Iterable[str] = FAMILIES,
        recover_after: Mapping[str, timedelta] | None = None,
    ) -> list[IncidentChange]:
        """Fold one pass's signals into the incidents and write what changed. ``evaluated``: the signal families this
        call is complete for (``rules``, ``healing``); an active incident of another family is left alone."""
        with self._lock:
            active = self.store.active_incidents()
            changes = fold_signals(active, signals, now, evaluated=evaluated, recover_after=recover_after)
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
            if changes:
                self._count_open()
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
            if updated != incident:
                self.store.save_incident(updated)
                self._resolved(updated, automatic=False)
                self._count_open()
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
        if self.postmortems is not None and needs_postmortem(incident):
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


__all__ = ["AUTOMATIC", "IncidentEvents", "IncidentService", "PostmortemArchive", "RetryPolicy"]
