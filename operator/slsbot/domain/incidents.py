"""Incident records and the pure decisions over them: open one incident per cause (a cause seen again while its
incident is open bumps the count), clear it when the cause is no longer seen, resolve it automatically once the cause
has been absent for the policy's ``healing.recoverAfter``, and acknowledge or resolve it for a person.

Nothing here does I/O: ``services.incidents`` reads the open incidents from an ``IncidentStore``, calls
``fold_signals`` and writes back what changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from slsbot.api.base import SpecModel
from slsbot.api.incident import IncidentSpec, IncidentState, IncidentStatus, TimelineEntry, TimelineKind
from slsbot.domain.errors import ConflictError
from slsbot.domain.incident_rules import IncidentSignal, kebab

AUTOMATIC = "slsbot"
DEFAULT_RECOVER_AFTER = timedelta(minutes=2)
TIMELINE_LIMIT = 64
RULES_FAMILY = "rules"  # signals of the severity rules (incident_rules)
HEALING_FAMILY = "healing"  # signals of the healing ladder's Incident rung (rule "Healing<Class>")
BACKUP_FAMILY = "backups"  # signals of a BackupSchedule's jobs (incident_rules.backup_signal)
FAMILIES = (RULES_FAMILY, HEALING_FAMILY, BACKUP_FAMILY)


class Incident(SpecModel):
    """One incident: ``id`` (a DNS label, the Incident object's name on a cluster), its namespace, what it is about
    (``spec``, fixed at opening) and where it stands (``status``)."""

    id: str
    namespace: str
    spec: IncidentSpec
    status: IncidentStatus

    @property
    def state(self) -> IncidentState:
        return IncidentState(self.status.state)

    @property
    def active(self) -> bool:
        return self.state != IncidentState.RESOLVED


class Change(StrEnum):
    OPENED = "opened"
    DETECTED_AGAIN = "detectedAgain"  # the count moved on
    CLEARED = "cleared"
    RESOLVED = "resolved"  # automatically


@dataclass(frozen=True, slots=True)
class IncidentChange:
    incident: Incident  # as it is after the change
    change: Change


def family_of(rule: str) -> str:
    if rule in ("BackupFailed", "RestoreDrillFailed"):
        return BACKUP_FAMILY
    return HEALING_FAMILY if rule.startswith("Healing") else RULES_FAMILY


def incident_id(cause: str, opened_at: datetime, rule: str) -> str:
    """A stable DNS-label id: the rule and a digest of the cause and the opening instant."""
    digest = hashlib.sha256(f"{cause}|{opened_at.isoformat()}".encode()).hexdigest()[:10]
    return f"{kebab(rule)[:40]}-{digest}"


def open_incident(signal: IncidentSignal, now: datetime, recover_after: timedelta) -> Incident:
    timeline = [
        TimelineEntry(at=signal.detected_at, kind=TimelineKind.DETECTED, message=signal.message[:1024], actor=AUTOMATIC)
    ]
    if signal.actions:
        timeline.append(
            TimelineEntry(
                at=now, kind=TimelineKind.ACTION, message="automatic: " + ", ".join(signal.actions), actor=AUTOMATIC
            )
        )
    return Incident(
        id=incident_id(signal.cause, now, signal.rule),
        namespace=signal.namespace,
        spec=IncidentSpec(
            cause=signal.cause,
            severity=signal.severity,
            rule=signal.rule,
            objects=list(signal.objects),
            message=signal.message[:4096],
            runbook=signal.runbook,
        ),
        status=IncidentStatus(
            phase="Open", opened_at=now, recover_after_seconds=recover_after.total_seconds(), timeline=timeline
        ),
    )


def fold_signals(
    active: Sequence[Incident],
    signals: Iterable[IncidentSignal],
    now: datetime,
    *,
    evaluated: Iterable[str] = FAMILIES,
    recover_after: Mapping[str, timedelta] | None = None,
    namespaces: Iterable[str] | None = None,
    objects: Iterable[str] | None = None,
) -> list[IncidentChange]:
    """What one pass's ``signals`` change among the ``active`` (open or acknowledged) incidents.

    A signal whose cause has no active incident opens one; one whose incident had cleared bumps its count. An active
    incident of an ``evaluated`` family whose cause is not among the signals clears, and resolves automatically
    once it has been clear for its ``recoverAfter``. Families not evaluated in this pass (another caller records
    them) are left alone, and so are incidents outside ``namespaces`` when it is given (a pass over some namespaces
    only: the operator's, one namespace at a time) and incidents about none of ``objects`` when it is given (a call
    about one Strategy, e.g. ``["Strategy/btc-trend"]``). ``recover_after`` maps a cause to its policy's
    ``healing.recoverAfter`` as it is now (a cause it does not name keeps the value stored when its incident opened;
    2m by default). Returns only what changed, so a steady pass writes nothing."""
    families = set(evaluated)
    scope = None if namespaces is None else set(namespaces)
    about = None if objects is None else set(objects)
    by_cause = {incident.spec.cause: incident for incident in active if incident.active}
    seen: dict[str, IncidentSignal] = {}
    for signal in signals:
        previous = seen.get(signal.cause)
        if previous is None or signal.severity < previous.severity:
            seen[signal.cause] = signal
    changes: list[IncidentChange] = []
    for cause, signal in seen.items():
        incident = by_cause.get(cause)
        if incident is None:
            wait = (recover_after or {}).get(cause, DEFAULT_RECOVER_AFTER)
            changes.append(IncidentChange(open_incident(signal, now, wait), Change.OPENED))
        elif incident.status.clear_since is not None:
            status = incident.status.model_copy(
                update={
                    "count": incident.status.count + 1,
                    "clear_since": None,
                    "timeline": _append(
                        incident.status.timeline,
                        TimelineEntry(
                            at=now, kind=TimelineKind.DETECTED, message=signal.message[:1024], actor=AUTOMATIC
                        ),
                    ),
                }
            )
            changes.append(IncidentChange(incident.model_copy(update={"status": status}), Change.DETECTED_AGAIN))
    for cause, incident in by_cause.items():
        if cause in seen or family_of(incident.spec.rule) not in families:
            continue
        if scope is not None and incident.namespace not in scope:
            continue
        if about is not None and not about.intersection(incident.spec.objects):
            continue
        wait = (recover_after or {}).get(cause)
        if wait is None:
            wait = timedelta(seconds=incident.status.recover_after_seconds)
        if incident.status.clear_since is None:
            status = incident.status.model_copy(
                update={
                    "clear_since": now,
                    "timeline": _append(
                        incident.status.timeline,
                        TimelineEntry(
                            at=now, kind=TimelineKind.CLEARED, message="cause no longer seen", actor=AUTOMATIC
                        ),
                    ),
                }
            )
            incident = incident.model_copy(update={"status": status})
            if wait > timedelta(0):
                changes.append(IncidentChange(incident, Change.CLEARED))
                continue
        clear_since = incident.status.clear_since
        assert clear_since is not None
        if now - clear_since >= wait:
            message = f"resolved automatically: the cause was absent for {int(wait.total_seconds())}s (recoverAfter)"
            changes.append(IncidentChange(resolve(incident, AUTOMATIC, now, message), Change.RESOLVED))
    return changes


def acknowledge(incident: Incident, actor: str, now: datetime, note: str = "") -> Incident:
    """A person has seen it and is on it. Acknowledging twice changes nothing; a resolved incident cannot be
    acknowledged (ConflictError)."""
    if incident.state == IncidentState.RESOLVED:
        raise ConflictError(f"incident {incident.id} is resolved already; nothing to acknowledge")
    if incident.state == IncidentState.ACKNOWLEDGED:
        return incident
    message = ("acknowledged: " + note) if note else "acknowledged"
    status = incident.status.model_copy(
        update={
            "state": IncidentState.ACKNOWLEDGED,
            "phase": "Acknowledged",
            "acknowledged_at": now,
            "timeline": _append(
                incident.status.timeline,
                TimelineEntry(at=now, kind=TimelineKind.ACKNOWLEDGED, message=message[:1024], actor=actor[:64]),
            ),
        }
    )
    return incident.model_copy(update={"status": status})


def resolve(incident: Incident, actor: str, now: datetime, note: str = "") -> Incident:
    """Resolved: by a person (``actor`` their role and token id) or automatically (``AUTOMATIC``, the timeline says
    so). Resolving twice changes nothing."""
    if incident.state == IncidentState.RESOLVED:
        return incident
    if not note:
        note = "resolved automatically" if actor == AUTOMATIC else "resolved by a person"
    status = incident.status.model_copy(
        update={
            "state": IncidentState.RESOLVED,
            "phase": "Resolved",
            "resolved_at": now,
            "timeline": _append(
                incident.status.timeline,
                TimelineEntry(at=now, kind=TimelineKind.RESOLVED, message=note[:1024], actor=actor[:64]),
            ),
        }
    )
    return incident.model_copy(update={"status": status})


def note_notified(incident: Incident, receiver: str, now: datetime) -> Incident:
    """The timeline records a message sent about it to ``receiver`` (its name, never its URL)."""
    entry = TimelineEntry(at=now, kind=TimelineKind.NOTIFIED, message=f"sent to {receiver}"[:1024], actor=AUTOMATIC)
    status = incident.status.model_copy(update={"timeline": _append(incident.status.timeline, entry)})
    return incident.model_copy(update={"status": status})


def needs_postmortem(incident: Incident) -> bool:
    """A resolved severity 1 or 2 incident gets a post-mortem bundle."""
    return incident.state == IncidentState.RESOLVED and incident.spec.severity <= 2


def _append(timeline: Sequence[TimelineEntry], entry: TimelineEntry) -> list[TimelineEntry]:
    """The timeline with ``entry``; past ``TIMELINE_LIMIT`` the oldest entries after the first go."""
    entries = [*timeline, entry]
    if len(entries) > TIMELINE_LIMIT:
        entries = [entries[0], *entries[len(entries) - TIMELINE_LIMIT + 1 :]]
    return entries
