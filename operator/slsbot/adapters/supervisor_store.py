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
    list_stored_objects,
    mark_drained,
    record_event,
    replace_object_spec,
    save_object_status,
    write_object_status,
)
from slsbot.api import Experiment, Resource
from slsbot.api.base import ObjectStatus


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


def _steady(status: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in status.items() if key not in VOLATILE_STATUS_FIELDS}
