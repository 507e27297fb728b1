"""The admin API served by a real uvicorn on 127.0.0.1 (a free port), over a real store on a temporary SQLite file
holding two strategies, one with profit figures, and an A/B Experiment between them. Nothing else runs: the
runtime client calls a port where no runtime listens, so orders come from the (absent) state file."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path

from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import (
    RuntimeRecord,
    create_store_engine,
    save_object_status,
    save_runtime_record,
    sync_desired_objects,
)
from slsbot.api import parse_resource
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry
from slsbot.settings import AdminApiSettings

ADMIN_TOKEN = test_secrets.ADMIN_API_ADMIN_TOKEN
VIEWER_TOKEN = test_secrets.ADMIN_API_VIEWER_TOKEN
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def strategy(name: str) -> Any:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            },
        }
    )


def experiment(name: str) -> Any:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "type": "ab",
                "strategyRef": {"name": "btc-trend"},
                "variants": [
                    {"name": "baseline", "strategyRef": {"name": "btc-trend"}},
                    {"name": "candidate", "strategyRef": {"name": "eth-trend"}},
                ],
            },
        }
    )


RUNNING_STATUS = {
    "phase": "Running",
    "observedGeneration": 1,
    "restarts": 1,
    "equity": 10_250.5,
    "openPositions": 1,
    "tradeCount": 17,
    "closedTrades": 8,
    "returnPercent": 2.505,
    "realizedPnl": 180.25,
    "unrealizedPnl": 70.25,
    "winRatePercent": 62.5,
    "drawdownPercent": 1.5,
    "maxDrawdownPercent": 4.25,
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "RuntimeReady",
            "message": "trading",
            "lastTransitionTime": "2026-05-01T07:00:00Z",
            "observedGeneration": 1,
        }
    ],
}


def free_port_nobody_listens_on() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seed_store(engine: Engine) -> None:
    with Session(engine) as session:
        resources = [strategy("btc-trend"), strategy("eth-trend"), experiment("btc-ab")]
        sync_desired_objects(session, resources=resources, now=NOW)
        save_object_status(
            session, kind="Strategy", namespace="default", name="btc-trend", status=RUNNING_STATUS, now=NOW
        )
        save_runtime_record(
            session,
            record=RuntimeRecord(
                namespace="default", name="btc-trend", pid=1, port=free_port_nobody_listens_on(), restarts=1
            ),
            now=NOW,
        )


@dataclass
class ServedAdminApi:
    url: str
    engine: Engine
    admin_token: str = ADMIN_TOKEN
    viewer_token: str = VIEWER_TOKEN


#: The tests here send hundreds of requests a second from one address, many of them without a token: the rate limit
#: and the lockout are off (they are tested on their own in test_admin_api_hardening_served.py).
UNLIMITED = AdminApiSettings(rate_limit_per_second=0, lockout_after_failures=0)


@contextmanager
def serve(app: Any, **config: Any) -> Iterator[str]:
    """``app`` served by a real uvicorn on 127.0.0.1 (a free port) on its own thread, with ``config`` added to its
    ``uvicorn.Config``; yields its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="admin-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the admin API did not start within 30 s"
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture(scope="module")
def served_admin_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAdminApi]:
    state_dir: Path = tmp_path_factory.mktemp("admin-api")
    engine = create_store_engine(state_dir / "supervisor.db")
    seed_store(engine)
    runtime_client = RuntimeHttpClient(timeout=0.5)
    app = create_app(
        engine=engine,
        tokens=TokenRegistry.from_tokens(admin=SecretStr(ADMIN_TOKEN), viewer=SecretStr(VIEWER_TOKEN)),
        runtime_client=runtime_client,
        state_dir=state_dir,
        hardening=UNLIMITED,
    )
    try:
        with serve(app) as url:
            yield ServedAdminApi(url=url, engine=engine)
    finally:
        runtime_client.close()
        engine.dispose()
