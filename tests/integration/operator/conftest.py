"""The real operator running against a Kubernetes API emulator (kmock, ``slsbot.testing.kube_emulator``) over HTTP
on 127.0.0.1 through a kubeconfig, and a stand-in runtime HTTP server speaking the runtime's control contract.

kmock runs no controllers: ``mark_runtime_ready`` plays the Deployment controller and kubelet when a test needs a
running pod.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import threading
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path

from slsbot.adapters.kubernetes.client import resource_path
from slsbot.api import KINDS
from slsbot.interfaces.commands.operator import serve
from slsbot.interfaces.operator_settings import OperatorSettings
from slsbot.testing.kube_emulator import ClusterEmulator, emulated_cluster, write_kubeconfig

REPO = Path(__file__).resolve().parents[3]
NAMESPACE = "trading"
CONTROL_KEY = test_secrets.OPERATOR_CONTROL_KEY  # SLSBOT_OPERATOR_CONTROL_KEY of the tests


def runtime_token(name: str, namespace: str = NAMESPACE) -> str:
    """What the operator must send to runtime ``namespace/name``: HMAC-SHA256(master key, "<namespace>/<name>")."""
    return hmac.new(CONTROL_KEY.encode(), f"{namespace}/{name}".encode(), hashlib.sha256).hexdigest()


@pytest.fixture
async def cluster(secret_scan) -> AsyncIterator[ClusterEmulator]:
    async with emulated_cluster([NAMESPACE]) as emulator:
        yield emulator
        await observe_cluster(Kube(emulator), secret_scan)


async def observe_cluster(kube: Kube, secret_scan) -> None:
    """Hand the secret scan what the operator wrote where people read it: every Event and every slsbot object's
    status (not the Secrets, which hold the runtimes' tokens by design)."""
    _, events = await kube._call("GET", kube.path("events"))
    secret_scan.observe(json.dumps(events), where="kmock Events")
    for kind in KINDS.values():
        _, listed = await kube._call("GET", kube.path(kind.kind_info.plural))
        statuses = [item.get("status") for item in (listed or {}).get("items", [])]
        secret_scan.observe(json.dumps(statuses), where=f"kmock {kind.kind_info.kind} statuses")


@pytest.fixture
def kubeconfig(tmp_path: Path, cluster: ClusterEmulator) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig.yaml", cluster)


class RuntimeStub:
    """Answers the runtime's control endpoints on 127.0.0.1 and records every request. Stands in for a runtime
    the emulated cluster cannot run; the operator, not this, is under test.

    Like the runtime, it answers 401 to a request without ``token``. After a ``/shutdown`` it reports phase
    ``finished`` with an open order until ``drained_after`` more ``/status`` polls have passed (None: until the
    test sets it), then ``drained`` with nothing open, as a runtime whose drain completed does.

    The A/B controller's endpoints: ``POST /allocation`` keeps the override (``allocation``; None: the spec's
    ``spec_allocation``) and answers as the runtime does; ``GET /performance?since=`` answers what the test's
    ``performance(since)`` returns (the runtime's JSON shape).

    The healing ladder's: ``/status`` carries ``trading_mode`` and, when the test sets one, the ``health`` block;
    ``POST /trading-mode`` keeps the mode and answers as the runtime does (issue 9 contract).

    ``GET /orders?limit=N``: the newest N of ``orders`` (newest first, as the runtime answers)."""

    def __init__(self, token: str, *, spec_allocation: float = 100.0) -> None:
        self.token = token
        self.also_accepted: set[str] = set()  # more tokens, as a runtime's token file lists during a key rotation
        self.spec_allocation = spec_allocation
        self.allocation: float | None = None
        self.performance: Callable[[int], dict[str, Any]] | None = None
        self.exposure: dict[str, float] = {}  # the account figures it reports (POST /headroom is answered as pushed)
        self.requests: list[tuple[str, str, Any]] = []
        self.refused: list[tuple[str, str]] = []  # requests without the right token
        self.paused = False
        self.trading_mode = "normal"
        self.health: dict[str, Any] | None = None
        self.orders: list[dict[str, Any]] = []
        self.drained_after: int | None = 0
        self.polls_since_shutdown = 0
        # Cleared: every control call hangs until it is set again (a runtime alive but too slow to answer in time).
        self.answering = threading.Event()
        self.answering.set()
        self.unanswered = 0  # control calls that waited on ``answering``
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, body: Any, code: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _slow_down(self) -> None:
                if not stub.answering.is_set():
                    stub.unanswered += 1
                    stub.answering.wait(timeout=60)

            def _authorized(self) -> bool:
                accepted = {stub.token, *stub.also_accepted}
                if self.headers.get("Authorization") in {f"Bearer {token}" for token in accepted}:
                    return True
                stub.refused.append((self.command, self.path))
                self._answer({"error": "Authorization: missing or wrong bearer token"}, 401)
                return False

            def do_GET(self) -> None:
                if self.path == "/readyz":
                    self._answer({"ready": True})
                    return
                if not self._authorized():
                    return
                self._slow_down()
                stub.requests.append(("GET", self.path, None))
                url = urlsplit(self.path)
                if url.path == "/performance" and stub.performance is not None:
                    since = int(parse_qs(url.query)["since"][0])
                    self._answer(stub.performance(since))
                    return
                if url.path == "/orders":
                    self._answer(stub.orders[: int(parse_qs(url.query)["limit"][0])])
                    return
                self._answer(stub.status())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if not self._authorized():
                    return
                self._slow_down()
                stub.requests.append(("POST", self.path, body))
                if self.path in ("/pause", "/resume"):
                    stub.paused = self.path == "/pause"
                if self.path == "/allocation":
                    stub.allocation = body["percent"]
                    source = "spec" if stub.allocation is None else "controller"
                    self._answer({"allocationPercent": stub.allocation_percent, "source": source})
                    return
                if self.path == "/trading-mode":
                    stub.trading_mode = body["mode"]
                    self._answer({"trading_mode": body["mode"], "flatten": body["flatten"]})
                    return
                if self.path == "/headroom":
                    self._answer({**body, "expired": False})
                    return
                self._answer({"ok": True})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def status(self) -> dict[str, Any]:
        phase = "paused" if self.paused else "running"
        open_orders, open_positions = 0, 1
        if self.posts("/shutdown"):
            self.polls_since_shutdown += 1
            draining = self.drained_after is None or self.polls_since_shutdown <= self.drained_after
            phase, open_orders, open_positions = ("finished", 1, 1) if draining else ("drained", 0, 0)
        return {
            "name": "stub",
            "phase": phase,
            "equity": 10_250.5,
            "open_positions": open_positions,
            "open_orders": open_orders,
            "trade_count": 7,
            "heartbeat": datetime.now(UTC).isoformat(),
            "paused": self.paused,
            "trading_mode": self.trading_mode,
            **({"health": self.health} if self.health is not None else {}),
            "exposure": dict(self.exposure),
            "total_exposure": sum(self.exposure.values()),
            "pnl_today": 0.0,
            "equity_day_start": 10_250.5,
            "allocation": {"percent": self.allocation_percent, "source": "spec", "specPercent": self.spec_allocation},
        }

    @property
    def allocation_percent(self) -> float:
        return self.spec_allocation if self.allocation is None else self.allocation

    def posts(self, path: str) -> list[Any]:
        return [body for method, p, body in self.requests if method == "POST" and p == path]

    def close(self) -> None:
        self.answering.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def runtime_stub() -> Iterator[RuntimeStub]:
    stub = RuntimeStub(runtime_token("btc-trend"))
    yield stub
    stub.close()


@pytest.fixture
def runtime_stubs() -> Iterator[Callable[..., RuntimeStub]]:
    """Make a ``RuntimeStub`` for Strategy ``name`` (its token), closed at the end of the test."""
    made: list[RuntimeStub] = []

    def make(name: str, *, spec_allocation: float = 100.0) -> RuntimeStub:
        stub = RuntimeStub(runtime_token(name), spec_allocation=spec_allocation)
        made.append(stub)
        return stub

    yield make
    for stub in made:
        stub.close()


@pytest.fixture
async def start_operator(kubeconfig: Path) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """Start the real operator (``slsbot operator``'s ``serve``) in a thread with its own event loop, as
    ``kopf.testing.KopfRunner`` does; stopped at the end of the test."""
    running: list[tuple[threading.Event, threading.Thread, list[BaseException]]] = []

    async def start(**overrides: Any) -> Callable[[], Awaitable[None]]:
        """Start one operator; returns what stops it (the fixture stops every operator still running anyway)."""
        # Cluster-wide unless the test names namespaces (kopf lists no namespaces: its scanning is disabled).
        overrides.setdefault("all_namespaces", not overrides.get("namespaces"))
        overrides.setdefault("metrics_port", 0)  # a free port: tests run side by side
        settings = OperatorSettings(
            kubeconfig=str(kubeconfig),
            validation_resync_seconds=2.0,
            event_repeat_seconds=60.0,
            **{"control_key": CONTROL_KEY, **overrides},
        )
        stop, ready, errors = threading.Event(), threading.Event(), []

        def run() -> None:
            try:
                asyncio.run(serve(settings, stop_flag=stop, ready_flag=ready))
            except BaseException as exc:  # reported by the fixture's teardown
                errors.append(exc)

        thread = threading.Thread(target=run, name="operator", daemon=True)
        thread.start()
        running.append((stop, thread, errors))
        assert await asyncio.to_thread(ready.wait, 30), f"the operator did not start: {errors}"

        async def stop_it() -> None:
            stop.set()
            await asyncio.to_thread(thread.join, 30)
            assert not thread.is_alive() and not errors, errors

        return stop_it

    yield start
    for stop, thread, errors in running:
        stop.set()
        await asyncio.to_thread(thread.join, 30)
        assert not thread.is_alive(), f"the operator did not stop within 30 s; its threads now:\n{_thread_stacks()}"
        assert not errors, errors


def _thread_stacks() -> str:
    """Where every thread is, to say what holds up a stop that did not come."""
    frames = sys._current_frames()
    parts = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident) if thread.ident is not None else None
        if frame is not None:
            parts.append(f"--- {thread.name}\n" + "".join(traceback.format_stack(frame)[-12:]))
    return "\n".join(parts)


@dataclass(frozen=True)
class ApiCall:
    """One request of the operator to the API, in RBAC's terms."""

    verb: str
    group: str
    resource: str  # plural, or plural/subresource
    namespace: str | None
    accept: str = ""


class Kube:
    """What a test does with the emulated cluster: kubectl-like calls over HTTP, and polling with a deadline."""

    control_key = CONTROL_KEY
    runtime_token = staticmethod(runtime_token)

    def __init__(self, emulator: ClusterEmulator) -> None:
        self.emulator = emulator

    @staticmethod
    def path(
        plural: str, name: str | None = None, *, namespace: str = NAMESPACE, subresource: str | None = None
    ) -> str:
        group, version = {
            "deployments": ("apps", "v1"),
            "pods": ("", "v1"),
            "services": ("", "v1"),
            "configmaps": ("", "v1"),
            "persistentvolumeclaims": ("", "v1"),
            "events": ("", "v1"),
            "secrets": ("", "v1"),
            "networkpolicies": ("networking.k8s.io", "v1"),
            "jobs": ("batch", "v1"),
            "cronjobs": ("batch", "v1"),
            "serviceaccounts": ("", "v1"),
            "roles": ("rbac.authorization.k8s.io", "v1"),
            "rolebindings": ("rbac.authorization.k8s.io", "v1"),
        }.get(plural, ("slsbot.io", "v1alpha1"))
        return resource_path(group, version, plural, namespace=namespace, name=name, subresource=subresource)

    async def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.emulator.request(method, path, json=body) as response:
            text = await response.text()
            return response.status, (json.loads(text) if text else None)

    async def apply(self, document: dict[str, Any]) -> dict[str, Any]:
        document = json.loads(json.dumps(document))
        document["metadata"].setdefault("namespace", NAMESPACE)
        plural = {cls.kind_info.kind: cls.kind_info.plural for cls in KINDS.values()}.get(
            document["kind"], document["kind"].lower() + "s"
        )
        status, body = await self._call("POST", self.path(plural), document)
        assert status < 300, body
        return body

    async def get(self, plural: str, name: str) -> dict[str, Any] | None:
        status, body = await self._call("GET", self.path(plural, name))
        return body if status == 200 else None

    async def patch(self, plural: str, name: str, body: dict[str, Any], subresource: str | None = None) -> None:
        status, answer = await self._call("PATCH", self.path(plural, name, subresource=subresource), body)
        assert status < 300, answer

    async def delete(self, plural: str, name: str) -> None:
        status, answer = await self._call("DELETE", self.path(plural, name))
        assert status < 300, answer

    async def events(self, name: str) -> list[dict[str, Any]]:
        _, body = await self._call("GET", self.path("events"))
        return [e for e in (body or {}).get("items", []) if e.get("involvedObject", {}).get("name") == name]

    async def event_reasons(self, name: str) -> list[str]:
        return [e["reason"] for e in await self.events(name)]

    @staticmethod
    async def eventually(check: Callable[[], Awaitable[Any]], *, within: float = 20.0, what: str = "") -> Any:
        """Poll ``check`` until it returns something truthy without raising AssertionError; fail at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        last: BaseException | None = None
        while True:
            try:
                result = await check()
                if result:
                    return result
            except AssertionError as exc:
                last = exc
            if loop.time() > deadline:
                raise AssertionError(f"not within {within}s: {what} (last: {last})")
            await asyncio.sleep(0.1)

    async def mark_runtime_ready(self, strategy: str, *, restarts: int = 0) -> None:
        """Play the Deployment controller and the kubelet: one ready pod for the current template."""
        name = f"slsbot-runtime-{strategy}"
        deployment = await self.get("deployments", name)
        assert deployment is not None
        template = deployment["spec"]["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-{uuid.uuid4().hex[:5]}", "namespace": NAMESPACE, **template["metadata"]},
            "spec": template["spec"],
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {"name": "runtime", "ready": True, "restartCount": restarts, "state": {"running": {}}}
                ],
            },
        }
        status, body = await self._call("POST", self.path("pods"), pod)
        assert status < 300, body
        generation = deployment["metadata"].get("generation", 1)
        ready = {"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1}
        await self.patch("deployments", name, {"status": ready}, subresource="status")

    async def mark_runtime_starting(self, strategy: str, *, started: datetime) -> None:
        """Play the Deployment controller (``Recreate``: the old pods go first) and the kubelet: one pod for the
        current template whose runtime container started at ``started`` and has not been ready since (its ``Ready``
        condition False from a second before, as a pod whose readiness probe never passed)."""
        name = f"slsbot-runtime-{strategy}"
        deployment = await self.get("deployments", name)
        assert deployment is not None
        _, listed = await self._call("GET", self.path("pods"))
        for old in (listed or {}).get("items", []):
            if (old["metadata"].get("labels") or {}).get("slsbot.io/strategy") == strategy:
                await self.delete("pods", old["metadata"]["name"])
        template = deployment["spec"]["template"]
        stamp = "%Y-%m-%dT%H:%M:%SZ"  # the API server's timestamps: RFC 3339, whole seconds
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-{uuid.uuid4().hex[:5]}", "namespace": NAMESPACE, **template["metadata"]},
            "spec": template["spec"],
            "status": {
                "phase": "Running",
                "startTime": (started - timedelta(seconds=1)).strftime(stamp),
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "ContainersNotReady",
                        "lastTransitionTime": (started - timedelta(seconds=1)).strftime(stamp),
                    },
                ],
                "containerStatuses": [
                    {
                        "name": "runtime",
                        "ready": False,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": started.strftime(stamp)}},
                    }
                ],
            },
        }
        status, body = await self._call("POST", self.path("pods"), pod)
        assert status < 300, body
        generation = deployment["metadata"].get("generation", 1)
        rolled = {"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 0}
        await self.patch("deployments", name, {"status": rolled}, subresource="status")

    def operator_calls(self) -> list[ApiCall]:
        """Every request the operator made to a resource (not the test's own), as RBAC sees it: the verb (GET one
        = get, GET a collection = list, or watch with watch=true, POST = create, PATCH = patch, PUT = update,
        DELETE = delete, or deletecollection without a name), API group, resource[/subresource], namespace."""
        verbs = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
        calls = []
        for request in self.emulator:
            if request.resource is None or request.resource.plural is None:
                continue  # discovery, which every authenticated client may do
            if request.headers.get("User-Agent", "").startswith("kmock/"):
                continue  # the test's own calls
            method = str(request.method.value)
            verb = verbs.get(method, method.lower())
            if method == "GET" and request.name is None:
                verb = "watch" if request.params.get("watch") == "true" else "list"
            elif method == "DELETE" and request.name is None:
                verb = "deletecollection"
            resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
            accept = request.headers.get("Accept", "")
            calls.append(ApiCall(verb, request.resource.group or "", resource, request.namespace, accept))
        return calls

    def operator_requests(self) -> set[tuple[str, str, str]]:
        """(apiGroup, resource[/subresource], verb) of every request the operator made (not the test's own)."""
        return {(call.group, call.resource, call.verb) for call in self.operator_calls()}

    @staticmethod
    def cluster_role_allows(group: str, resource: str, verb: str) -> bool:
        """Whether deploy/operator's ClusterRole grants the verb (RBAC rule matching; it uses no wildcards)."""
        role = yaml.safe_load((REPO / "deploy" / "operator" / "20-clusterrole.yaml").read_text())
        return any(
            group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
            for rule in role["rules"]
        )


@pytest.fixture
def kube(cluster: ClusterEmulator) -> Kube:
    return Kube(cluster)
