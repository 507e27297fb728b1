"""The store as the local supervisor's loop sees it (``slsbot.services.supervisor.SupervisorStore``).

Each call opens and closes its own session, so the object holds nothing but the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from slsbot.adapters.store import (
    apply_owned_object,
    delete_object,
    forget_object,
    get_incident_document,
    list_incident_documents,
    list_runtime_records,
    list_stored_objects,
    mark_drained,
    record_event,
    replace_object_spec,
    save_incident_document,
    save_object_status,
    write_object_status,
)
from slsbot.api import Experiment, Resource
from slsbot.api.base import ObjectStatus
from slsbot.api.incident import IncidentState
from slsbot.domain.errors import NotFoundError
from slsbot.domain.incidents import Incident


class _EventLike(Protocol):
    type: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class DesiredObject:
    resource: Resource[Any, Any]
    deleting: bool
    drained: bool
    deletion_started: datetime | None = None


# Status fields that move with every look at a running runtime. A status whose only change is in these is written
# at most every FIGURES_EVERY (phase, conditions, restarts... are written at once): a fleet's figures would otherwise
# cost a database write per bot per pass, which holds up the admin API.
VOLATILE_STATUS_FIELDS = frozenset(
    {
        "lastHeartbeat",
        "equity",
        "openPositions",
        "tradeCount",
        "closedTrades",
        "returnPercent",
        "realizedPnl",
        "unrealizedPnl",
        "winRatePercent",
        "drawdownPercent",
        "maxDrawdownPercent",
    }
)
FIGURES_EVERY = timedelta(seconds=2)


class SqlSupervisorStore:
    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._clock = clock
        self._written: dict[tuple[str, str, str], tuple[dict[str, Any], datetime]] = {}  # status as last written

    def desired_objects(self) -> list[DesiredObject]:
        with Session(self._engine) as session:
            rows = list_stored_objects(session)
            return [DesiredObject(row.as_resource(), row.deleting, row.drained, row.deleting_since) for row in rows]

    def record_status(self, *, kind: str, namespace: str, name: str, status: ObjectStatus) -> bool:
        """Write ``status`` when it changed: at once when anything but the figures changed, else at most every
        ``FIGURES_EVERY``. Returns whether it wrote."""
        wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        key, now = (kind, namespace, name), self._clock()
        written = self._written.get(key)
        if written is not None:
            previous, at = written
            if previous == wire:
                return False
            if _steady(previous) == _steady(wire) and now - at < FIGURES_EVERY:
                return False
        with Session(self._engine) as session:
            if written is None:  # the first write since start: the database may hold it already
                changed = save_object_status(session, kind=kind, namespace=namespace, name=name, status=wire, now=now)
            else:
                changed = write_object_status(session, kind=kind, namespace=namespace, name=name, status=wire, now=now)
        self._written[key] = (wire, now)
        return changed

    def record_events(self, *, kind: str, namespace: str, name: str, events: Sequence[_EventLike]) -> None:
        if not events:
            return
        with Session(self._engine) as session:
            for item in events:
                record_event(
                    session,
                    kind=kind,
                    namespace=namespace,
                    name=name,
                    type=item.type,
                    reason=item.reason,
                    message=item.message,
                    now=self._clock(),
                )

    def mark_drained(self, *, namespace: str, name: str) -> None:
        with Session(self._engine) as session:
            mark_drained(session, namespace=namespace, name=name)

    def forget(self, *, kind: str, namespace: str, name: str) -> None:
        self._written.pop((kind, namespace, name), None)
        with Session(self._engine) as session:
            forget_object(session, kind=kind, namespace=namespace, name=name)


class SqlOwnedObjects:
    """``slsbot.domain.ports.OwnedObjects`` over the local store: what the Experiment controllers create and change
    under ``slsbot up``. The manifest folder's sync leaves owned objects alone and removes them with their owner."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._clock = clock

    def apply_owned(self, resource: Resource[Any, Any], *, owner: Experiment) -> None:
        with Session(self._engine) as session:
            apply_owned_object(session, resource=resource, owner=f"{owner.kind}/{owner.name}", now=self._clock())

    def replace_spec(self, resource: Resource[Any, Any]) -> None:
        with Session(self._engine) as session:
            replace_object_spec(session, resource=resource, now=self._clock())

    def delete(self, kind: str, namespace: str, name: str) -> None:
        with Session(self._engine) as session:
            delete_object(session, kind=kind, namespace=namespace, name=name, now=self._clock())


class SqlIncidentStore:
    """``slsbot.domain.ports.IncidentStore`` over the local store: the table ``incident_record``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def active_incidents(self) -> list[Incident]:
        active = [IncidentState.OPEN.value, IncidentState.ACKNOWLEDGED.value]
        with Session(self._engine) as session:
            return [Incident.model_validate(d) for d in list_incident_documents(session, states=active, limit=100_000)]

    def list_incidents(
        self, *, state: str | None = None, severity: int | None = None, namespace: str | None = None, limit: int = 500
    ) -> list[Incident]:
        with Session(self._engine) as session:
            documents = list_incident_documents(
                session, states=None if state is None else [state], severity=severity, namespace=namespace, limit=limit
            )
        return [Incident.model_validate(d) for d in documents]

    def get_incident(self, incident_id: str) -> Incident:
        with Session(self._engine) as session:
            document = get_incident_document(session, incident_id=incident_id)
        if document is None:
            raise NotFoundError(f"incident {incident_id[:64]!r} does not exist")
        return Incident.model_validate(document)

    def save_incident(self, incident: Incident) -> None:
        with Session(self._engine) as session:
            save_incident_document(
                session,
                incident_id=incident.id,
                namespace=incident.namespace,
                severity=incident.spec.severity,
                state=str(incident.status.state),
                cause=incident.spec.cause,
                opened_at=incident.status.opened_at,
                document=incident.model_dump(mode="json", by_alias=True, exclude_none=True),
            )


class SqlRuntimeStatuses:
    """Each local runtime's last ``/status`` as the process backend stored it, for the incident rules."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __call__(self) -> dict[tuple[str, str], dict[str, Any]]:
        with Session(self._engine) as session:
            return {(r.namespace, r.name): r.last_status or {} for r in list_runtime_records(session)}


def _steady(status: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in status.items() if key not in VOLATILE_STATUS_FIELDS}
