"""``AdminData`` over the local supervisor's database (``adapters.store``): what ``slsbot up``'s admin API serves.

Reads run on the event loop (a read of the SQLite file takes a few milliseconds); writes and the calls to a runtime
run in a worker thread. Pause and resume layer an override over the YAML spec (``set_paused_override``), an A/B
Experiment's controls likewise (``set_experiment_control``), and a RiskPolicy's kill switch
(``set_kill_switch_override``): the supervisor's next pass acts on them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from slsbot.adapters.processes import RuntimePaths
from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.runtime_state import read_activity, read_orders
from slsbot.adapters.store import (
    StoredObject,
    list_events,
    list_runtime_records,
    list_stored_objects,
    set_experiment_control,
    set_kill_switch_override,
    set_paused_override,
)
from slsbot.domain.admin_data import AdminObject, EventEntry, RuntimeActivity, RuntimeOrders, RuntimeView
from slsbot.domain.errors import RuntimeUnreachable


def admin_object(row: StoredObject) -> AdminObject:
    return AdminObject(
        kind=row.kind,
        namespace=row.namespace,
        name=row.name,
        document=row.document,
        status=row.status,
        generation=row.generation,
        created_at=row.created_at,
        deleting=row.deleting,
        paused_override=row.paused_override,
        controls_override=row.controls_override,
        owner=row.owner,
    )


class SqlAdminData:
    """``state_dir``: the supervisor's state folder, to read a down runtime's orders from its state file."""

    def __init__(self, engine: Engine, runtime_client: RuntimeHttpClient | None, state_dir: Path | None) -> None:
        self._engine = engine
        self._client = runtime_client
        self._state_dir = state_dir

    async def objects(self, kind: str, *, namespace: str | None = None, name: str | None = None) -> list[AdminObject]:
        with Session(self._engine) as session:
            rows = list_stored_objects(session, kind=kind, namespace=namespace, name=name)
            return [admin_object(row) for row in rows]

    async def runtimes(self, strategies: list[AdminObject]) -> dict[tuple[str, str], RuntimeView]:
        wanted = {(s.namespace, s.name) for s in strategies}
        with Session(self._engine) as session:
            records = list_runtime_records(session)
        return {
            (r.namespace, r.name): RuntimeView(pid=r.pid, restarts=r.restarts, last_status=r.last_status)
            for r in records
            if (r.namespace, r.name) in wanted
        }

    async def runtime_statuses(self, strategies: list[AdminObject]) -> dict[tuple[str, str], dict[str, Any]]:
        runtimes = await self.runtimes(strategies)
        return {key: view.last_status for key, view in runtimes.items() if view.last_status is not None}

    async def orders(self, strategy: AdminObject, *, limit: int) -> RuntimeOrders:
        return await asyncio.to_thread(self._orders, strategy, limit)

    def _orders(self, strategy: AdminObject, limit: int) -> RuntimeOrders:
        url = self._runtime_url(strategy)
        if url is not None and self._client is not None:
            try:
                return RuntimeOrders(self._client.orders(url, limit=limit))
            except RuntimeUnreachable:
                pass
        return RuntimeOrders(read_orders(self._state_file(strategy), limit=limit), from_state_file=True)

    async def activity(self, strategy: AdminObject, *, limit: int) -> RuntimeActivity:
        return await asyncio.to_thread(self._activity, strategy, limit)

    def _activity(self, strategy: AdminObject, limit: int) -> RuntimeActivity:
        url = self._runtime_url(strategy)
        if url is not None and self._client is not None:
            try:
                return RuntimeActivity(self._client.activity(url, limit=limit))
            except RuntimeUnreachable:
                pass
        return RuntimeActivity(read_activity(self._state_file(strategy), limit=limit), from_state_file=True)

    def _runtime_url(self, strategy: AdminObject) -> str | None:
        """The running runtime's control URL; None while it does not run."""
        with Session(self._engine) as session:
            records = list_runtime_records(session)
        runtime = next((r for r in records if (r.namespace, r.name) == (strategy.namespace, strategy.name)), None)
        if runtime is None or runtime.pid is None or runtime.port is None:
            return None
        return f"http://127.0.0.1:{runtime.port}"

    def _state_file(self, strategy: AdminObject) -> Path:
        if self._state_dir is None:
            phase = (strategy.status or {}).get("phase", "Pending")
            raise RuntimeUnreachable(
                f"the runtime of Strategy {strategy.namespace}/{strategy.name} is not running (phase {phase}); "
                "try again once the strategy is Running"
            )
        return RuntimePaths(self._state_dir / strategy.namespace / strategy.name).state

    async def set_paused(self, strategy: AdminObject, paused: bool) -> AdminObject:
        return await asyncio.to_thread(self._set_paused, strategy, paused)

    def _set_paused(self, strategy: AdminObject, paused: bool) -> AdminObject:
        with Session(self._engine) as session:
            row = set_paused_override(
                session, namespace=strategy.namespace, name=strategy.name, paused=paused, now=datetime.now(UTC)
            )
            return admin_object(row)

    async def set_kill_switch(self, policy: AdminObject, on: bool) -> AdminObject:
        return await asyncio.to_thread(self._set_kill_switch, policy, on)

    def _set_kill_switch(self, policy: AdminObject, on: bool) -> AdminObject:
        with Session(self._engine) as session:
            row = set_kill_switch_override(
                session, namespace=policy.namespace, name=policy.name, on=on, now=datetime.now(UTC)
            )
            return admin_object(row)

    async def set_experiment_control(self, experiment: AdminObject, control: str, value: bool) -> AdminObject:
        return await asyncio.to_thread(self._set_control, experiment, control, value)

    def _set_control(self, experiment: AdminObject, control: str, value: bool) -> AdminObject:
        with Session(self._engine) as session:
            row = set_experiment_control(
                session,
                namespace=experiment.namespace,
                name=experiment.name,
                control=control,
                value=value,
                now=datetime.now(UTC),
            )
            return admin_object(row)

    async def events(self, *, namespace: str | None, name: str | None, limit: int) -> list[EventEntry]:
        with Session(self._engine) as session:
            rows = list_events(session, namespace=namespace, name=name, limit=limit)
            return [
                EventEntry(
                    id=row.id or 0,
                    kind=row.kind,
                    namespace=row.namespace,
                    name=row.name,
                    type=row.type,
                    reason=row.reason,
                    message=row.message,
                    count=row.count,
                    first_seen=row.first_seen,
                    last_seen=row.last_seen,
                )
                for row in rows
            ]
