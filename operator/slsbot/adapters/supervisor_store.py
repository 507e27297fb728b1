"""The store as the local supervisor's loop sees it (``slsbot.services.supervisor.SupervisorStore``).

Each call opens and closes its own session, so the object holds nothing but the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from slsbot.adapters.store import (
    forget_object,
    list_stored_objects,
    mark_drained,
    record_event,
    save_object_status,
)
from slsbot.api import Resource
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


class SqlSupervisorStore:
    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._clock = clock

    def desired_objects(self) -> list[DesiredObject]:
        with Session(self._engine) as session:
            rows = list_stored_objects(session)
            return [DesiredObject(row.as_resource(), row.deleting, row.drained, row.deleting_since) for row in rows]

    def record_status(self, *, kind: str, namespace: str, name: str, status: ObjectStatus) -> bool:
        wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        with Session(self._engine) as session:
            return save_object_status(
                session, kind=kind, namespace=namespace, name=name, status=wire, now=self._clock()
            )

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
        with Session(self._engine) as session:
            forget_object(session, kind=kind, namespace=namespace, name=name)
