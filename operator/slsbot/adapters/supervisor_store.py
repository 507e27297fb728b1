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
    forget_object,
    get_stored_object,
    list_stored_objects,
    mark_drained,
    record_event,
    save_object_status,
    spec_hash,
    write_object_status,
)
from slsbot.api import Experiment, Resource
from slsbot.api.base import ObjectStatus
from slsbot.domain.errors import NotFoundError


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
    """THROWAWAY STAND-IN, DELETE AT MERGE: the lead's main has the real ``SqlOwnedObjects`` here (an owner column,
    and an applied hash so a replaced spec stands until its file changes); take it. This one only replaces a spec
    and deletes, enough for the A/B controller to run on this branch (``slsbot.domain.ports.OwnedObjects``)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._clock = clock

    def apply_owned(self, resource: Resource[Any, Any], *, owner: Experiment) -> None:
        raise NotImplementedError("stand-in: owned objects come with the lead's SqlOwnedObjects")

    def replace_spec(self, resource: Resource[Any, Any]) -> None:
        with Session(self._engine) as session:
            row = get_stored_object(session, kind=resource.kind, namespace=resource.namespace, name=resource.name)
            if row is None or row.deleting:
                raise NotFoundError(f"{resource.kind} {resource.namespace}/{resource.name} is not there to change")
            digest = spec_hash(resource)
            if row.spec_hash == digest:
                return
            row.document = {**row.document, "spec": resource.spec.to_wire()}
            row.spec_hash = digest
            row.generation += 1
            row.updated_at = self._clock()
            session.add(row)
            session.commit()

    def delete(self, kind: str, namespace: str, name: str) -> None:
        with Session(self._engine) as session:
            row = get_stored_object(session, kind=kind, namespace=namespace, name=name)
            if row is None:
                return
            if kind == "Strategy":
                if not row.deleting:
                    row.deleting, row.deleting_since = True, self._clock()
                    session.add(row)
            else:
                session.delete(row)
            session.commit()


def _steady(status: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in status.items() if key not in VOLATILE_STATUS_FIELDS}
