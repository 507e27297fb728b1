"""Post-mortem bundles under ``slsbot up``: one JSON file per incident, ``<state_dir>/postmortems/<id>.json``,
written when a severity 1 or 2 incident is resolved and served by ``GET /api/v1/incidents/{id}/postmortem`` (built
on demand for any other incident). The pieces come from the supervisor's database (each runtime's last ``/status``,
the Events of the incident's objects) and the runtimes' state files (their recent orders)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from slsbot.adapters.processes import RuntimePaths
from slsbot.adapters.runtime_state import read_orders
from slsbot.adapters.store import get_runtime_record, list_events
from slsbot.domain.errors import SlsbotError
from slsbot.domain.incidents import Incident
from slsbot.domain.postmortem import postmortem_bundle

RECENT_ORDERS = 100
RECENT_EVENTS = 200


class LocalPostmortems:
    """``services.incidents.PostmortemArchive`` over the state folder. Without one (an admin API built on a bare
    database) bundles are built on demand from the database only, and nothing is written."""

    def __init__(
        self, engine: Engine, state_dir: Path | None, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._engine = engine
        self._state_dir = state_dir
        self._clock = clock

    def path(self, incident_id: str) -> Path | None:
        return None if self._state_dir is None else self._state_dir / "postmortems" / f"{incident_id}.json"

    def build(self, incident: Incident) -> dict[str, Any]:
        statuses: dict[str, dict[str, Any] | None] = {}
        orders: dict[str, list[dict[str, Any]]] = {}
        events: list[dict[str, Any]] = []
        with Session(self._engine) as session:
            for obj in incident.spec.objects:
                kind, _, name = obj.partition("/")
                if kind == "Strategy":
                    record = get_runtime_record(session, namespace=incident.namespace, name=name)
                    statuses[obj] = None if record is None else record.last_status
                    orders[obj] = (
                        []
                        if self._state_dir is None
                        else _recent_orders(RuntimePaths(self._state_dir / incident.namespace / name).state)
                    )
                for event in list_events(session, namespace=incident.namespace, name=name, limit=RECENT_EVENTS):
                    if event.kind == kind:
                        events.append(event.model_dump(mode="json", exclude={"id"}))
        events.sort(key=lambda e: e["last_seen"], reverse=True)
        return postmortem_bundle(
            incident, runtime_status=statuses, orders=orders, events=events, generated_at=self._clock()
        )

    def write(self, incident: Incident) -> None:
        """Write the bundle atomically (a reader never sees half a file)."""
        path = self.path(incident.id)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.build(incident), indent=2, sort_keys=True, default=str))
        os.replace(temporary, path)

    def read(self, incident: Incident) -> dict[str, Any]:
        """The stored bundle, or one built now."""
        path = self.path(incident.id)
        if path is not None and path.is_file():
            return json.loads(path.read_text())
        return self.build(incident)


def _recent_orders(state: Path) -> list[dict[str, Any]]:
    try:
        return read_orders(state, limit=RECENT_ORDERS)
    except SlsbotError:  # no state file yet, or one that cannot be read: the bundle says so by an empty list
        return []
