"""The incident reads of the admin API run off its event loop: on a cluster each is a call to the API server, and a
slow one must not hold up every other request. Served by a real uvicorn on 127.0.0.1, over a real incident store on a
SQLite file whose reads are held, as a slow API server would hold them, until the test lets them go."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from tests.integration.admin_api.conftest import ADMIN_TOKEN, UNLIMITED, VIEWER_TOKEN, seed_store, serve

from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import create_store_engine
from slsbot.adapters.supervisor_store import SqlIncidentStore
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry
from slsbot.services.incidents import IncidentService

pytestmark = [pytest.mark.integration]

HELD_FOR_AT_MOST_S = 20.0


class HeldReads:
    """The incident store, each read waiting for ``release`` first (the rest goes straight through)."""

    def __init__(self, store: SqlIncidentStore) -> None:
        self._store = store
        self.release = threading.Event()
        self.waiting = threading.Semaphore(0)

    def _held(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.waiting.release()
        assert self.release.wait(HELD_FOR_AT_MOST_S), "the test never released the read"
        return getattr(self._store, name)(*args, **kwargs)

    def list_incidents(self, *args: Any, **kwargs: Any) -> Any:
        return self._held("list_incidents", *args, **kwargs)

    def active_incidents(self, *args: Any, **kwargs: Any) -> Any:
        return self._held("active_incidents", *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, HeldReads]]:
    engine = create_store_engine(tmp_path / "supervisor.db")
    seed_store(engine)
    store = HeldReads(SqlIncidentStore(engine))
    client = RuntimeHttpClient(timeout=0.5)
    app = create_app(
        engine=engine,
        tokens=TokenRegistry.from_tokens(admin=SecretStr(ADMIN_TOKEN), viewer=SecretStr(VIEWER_TOKEN)),
        runtime_client=client,
        state_dir=tmp_path,
        hardening=UNLIMITED,
        incidents=IncidentService(store, None),  # type: ignore[arg-type]
    )
    try:
        with serve(app) as url:
            yield url, store
    finally:
        store.release.set()
        client.close()
        engine.dispose()


@pytest.mark.parametrize("path", ["/api/v1/incidents", "/api/v1/fleet", "/api/v1/accounts/overview"])
def test_a_held_incident_read_does_not_hold_up_other_requests(served: tuple[str, HeldReads], path: str) -> None:
    url, store = served
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=url, headers=headers, trust_env=False) as client:
        slow = pool.submit(client.get, path, timeout=HELD_FOR_AT_MOST_S + 10)
        assert store.waiting.acquire(timeout=HELD_FOR_AT_MOST_S), f"{path} never read the incidents"
        # while that read is held, the API answers others (the event loop is free)
        assert client.get("/healthz", timeout=5).status_code == 200
        assert client.get("/api/v1/strategies", timeout=5).status_code == 200
        store.release.set()
        assert slow.result(timeout=HELD_FOR_AT_MOST_S).status_code == 200
