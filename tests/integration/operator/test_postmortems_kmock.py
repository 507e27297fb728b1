"""Post-mortem bundles on a cluster (``KubernetesPostmortems``) against the Kubernetes API emulator over HTTP: a
resolved severity 1 or 2 incident's bundle is built from the cluster (the runtime's ``/status`` and ``/orders``, asked
over real HTTP on 127.0.0.1 with its control token, and the Events of the incident's objects), kept in the ConfigMap
``slsbot-postmortem-<id>`` owned by the Incident object, and read back by a fresh adapter (an operator restarted);
the real operator's admin API serves it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.fakes.test_secrets import CLUSTER_API_OPERATOR_TOKEN as OPERATOR_TOKEN
from tests.fakes.test_secrets import CLUSTER_API_VIEWER_TOKEN as VIEWER_TOKEN

from slsbot.adapters.kubernetes.backend import KubernetesRuntimeBackend
from slsbot.adapters.kubernetes.client import KubernetesApi, load_client_configuration, resource_path
from slsbot.adapters.kubernetes.incidents import KubernetesIncidentStore
from slsbot.adapters.kubernetes.manifests import PORT_NAME
from slsbot.adapters.kubernetes.postmortems import KubernetesPostmortems
from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.interfaces.operator_settings import OperatorSettings
from slsbot.services.incidents import IncidentService

from .conftest import NAMESPACE, Kube, RuntimeStub
from .test_admin_api_cluster_kmock import bind_roles, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ORDERS = [
    {"id": f"o-{n}", "symbol": "BTC/USDT", "side": "sell" if n % 2 else "buy", "amount": 0.01, "status": "filled"}
    for n in range(3, 0, -1)
]  # newest first


def cluster_event(name: str, reason: str, message: str, *, kind: str = "Strategy") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{reason.lower()}", "namespace": NAMESPACE},
        "involvedObject": {"apiVersion": "slsbot.io/v1alpha1", "kind": kind, "name": name, "namespace": NAMESPACE},
        "type": "Warning",
        "reason": reason,
        "message": message,
        "firstTimestamp": "2026-03-01T11:58:00Z",
        "lastTimestamp": "2026-03-01T11:59:00Z",
        "count": 2,
    }


def runtime_service(name: str, port: int) -> dict[str, Any]:
    """The runtime's Service, as the operator makes it (the backend reaches the runtime through its port)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"slsbot-runtime-{name}", "namespace": NAMESPACE},
        "spec": {"ports": [{"name": PORT_NAME, "port": port}]},
    }


def signal(severity: int, *objects: str) -> IncidentSignal:
    return IncidentSignal(
        cause=f"StateMismatch:{NAMESPACE}/{objects[0].partition('/')[2]}",
        severity=severity,
        rule="StateMismatch",
        namespace=NAMESPACE,
        objects=objects,
        message="position 0.1 BTC, exchange 0",
        runbook="runbooks/state-mismatch.md",
        detected_at=T0,
        actions=(),
    )


def configmap_path(incident_id: str) -> str:
    return resource_path("", "v1", "configmaps", namespace=NAMESPACE, name=f"slsbot-postmortem-{incident_id}")


async def test_the_bundle_is_built_from_the_cluster_kept_in_a_configmap_owned_by_the_incident_and_survives_a_restart(
    kube: Kube, kubeconfig: Path, runtime_stub: RuntimeStub, secret_scan
):
    runtime_stub.orders = list(ORDERS)
    runtime_stub.trading_mode = "halted"
    await kube.apply(runtime_service("btc-trend", runtime_stub.port))
    await kube.apply(cluster_event("btc-trend", "Halted", "halted: state mismatch"))
    await kube.apply(cluster_event("eth-trend", "Halted", "another strategy's event"))
    await kube.apply(cluster_event("btc-trend", "Drifted", "an account of the same name", kind="TradingAccount"))
    settings = OperatorSettings(
        kubeconfig=str(kubeconfig), control_key=kube.control_key, runtime_url="http://127.0.0.1:{port}"
    )
    api = KubernetesApi(load_client_configuration(kubeconfig=str(kubeconfig), context=None))

    def adapter(**options: Any) -> KubernetesPostmortems:
        """What the operator builds at start: a fresh one is an operator restarted."""
        backend = KubernetesRuntimeBackend(
            api, RuntimeHttpClient(timeout=5), settings.backend_options(), control_key=settings.runtime_control_keys()
        )
        return KubernetesPostmortems(api, backend, **options)

    def scenario() -> tuple[str, dict[str, Any], dict[str, Any]]:
        archive = adapter()
        store = KubernetesIncidentStore(api)
        service = IncidentService(store, None, postmortems=archive)
        # btc-trend's runtime answers; gone-trend has no Service (deleted, or never started).
        (change,) = service.record_signals([signal(2, "Strategy/btc-trend", "Strategy/gone-trend")], T0)
        incident_id = change.incident.id
        assert api.find(configmap_path(incident_id)) is None  # open: nothing kept yet
        service.resolve(incident_id, "operator:bob", T0 + timedelta(minutes=5), "fixed the position")

        kept = api.get(configmap_path(incident_id))
        incident_object = api.get(
            resource_path("slsbot.io", "v1alpha1", "incidents", namespace=NAMESPACE, name=incident_id)
        )
        assert kept["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "slsbot.io/v1alpha1",
                "kind": "Incident",
                "name": incident_id,
                "uid": incident_object["metadata"]["uid"],
            }
        ]
        assert kept["metadata"]["labels"]["app.kubernetes.io/name"] == "slsbot-postmortem"
        assert kept["metadata"]["labels"]["slsbot.io/incident"] == incident_id
        assert kept["metadata"]["labels"]["slsbot.io/severity"] == "2"
        assert kept["immutable"] is True
        bundle = json.loads(kept["data"]["bundle.json"])

        # Written once: a replayed write (an operator restarted, a resolve replayed) leaves it as it was.
        runtime_stub.orders = [{"id": "o-late", "symbol": "BTC/USDT", "side": "buy", "amount": 1, "status": "open"}]
        archive.write(store.get_incident(incident_id))
        adapter().write(store.get_incident(incident_id))
        again = api.get(configmap_path(incident_id))
        assert again["metadata"]["resourceVersion"] == kept["metadata"]["resourceVersion"]
        # A restarted operator reads the kept bundle, not one built now.
        read_back = adapter().read(store.get_incident(incident_id))
        return incident_id, bundle, read_back

    incident_id, bundle, read_back = await asyncio.to_thread(scenario)

    assert bundle["incident"]["id"] == incident_id and bundle["incident"]["status"]["state"] == "resolved"
    assert bundle["incident"]["status"]["timeline"][-1]["message"] == "fixed the position"
    btc = bundle["runtimes"]["Strategy/btc-trend"]
    assert btc["lastStatus"]["equity"] == 10_250.5 and btc["lastStatus"]["trading_mode"] == "halted"
    assert btc["riskDecisions"]["trading_mode"] == "halted"
    assert btc["recentOrders"] == ORDERS
    assert "unreachable" not in btc
    assert ("GET", "/orders?limit=100", None) in runtime_stub.requests  # asked with its token (else refused)
    assert runtime_stub.refused == []
    gone = bundle["runtimes"]["Strategy/gone-trend"]
    assert gone["lastStatus"] is None and gone["recentOrders"] == []
    assert "has no Service" in gone["unreachable"]
    assert [(e["kind"], e["name"], e["reason"]) for e in bundle["events"]] == [("Strategy", "btc-trend", "Halted")]
    assert bundle["events"][0]["last_seen"] == "2026-03-01T11:59:00+00:00" and bundle["events"][0]["count"] == 2
    assert "truncated" not in bundle
    assert read_back == bundle
    secret_scan.observe(json.dumps(bundle), where="the post-mortem ConfigMap")


async def test_a_bundle_past_the_limit_keeps_the_newest_orders_and_says_what_it_left_out(
    kube: Kube, kubeconfig: Path, runtime_stub: RuntimeStub
):
    runtime_stub.orders = [{"id": f"o-{n}", "note": "x" * 500} for n in range(100, 0, -1)]
    await kube.apply(runtime_service("btc-trend", runtime_stub.port))
    settings = OperatorSettings(
        kubeconfig=str(kubeconfig), control_key=kube.control_key, runtime_url="http://127.0.0.1:{port}"
    )
    api = KubernetesApi(load_client_configuration(kubeconfig=str(kubeconfig), context=None))
    backend = KubernetesRuntimeBackend(
        api, RuntimeHttpClient(timeout=5), settings.backend_options(), control_key=settings.runtime_control_keys()
    )

    def scenario() -> tuple[dict[str, Any], int]:
        store = KubernetesIncidentStore(api)
        service = IncidentService(store, None, postmortems=KubernetesPostmortems(api, backend, limit_bytes=20_000))
        (change,) = service.record_signals([signal(1, "Strategy/btc-trend")], T0)
        service.resolve(change.incident.id, "operator:bob", T0 + timedelta(minutes=5))
        text = api.get(configmap_path(change.incident.id))["data"]["bundle.json"]
        return json.loads(text), len(text.encode())

    bundle, size = await asyncio.to_thread(scenario)
    assert size <= 20_000
    kept = bundle["runtimes"]["Strategy/btc-trend"]["recentOrders"]
    assert 0 < len(kept) < 100 and kept == runtime_stub.orders[: len(kept)]  # the newest
    assert bundle["truncated"]["ordersLeftOut"] == {"Strategy/btc-trend": 100 - len(kept)}
    assert bundle["truncated"]["limitBytes"] == 20_000


def trading_objects(runtime_port: int) -> list[dict[str, Any]]:
    """A RiskPolicy whose incidents do not resolve themselves within the test, its account, and a Strategy whose
    runtime (the stub) answers on ``runtime_port``."""
    return [
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "RiskPolicy",
            "metadata": {"name": "risk"},
            "spec": {"healing": {"recoverAfter": "1h"}},
        },
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": "paper-binance"},
            "spec": {"exchange": "binance", "mode": "paper", "riskPolicyRef": {"name": "risk"}},
        },
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "btc-trend"},
            "spec": {
                "accountRef": {"name": "paper-binance"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
                "runtime": {"port": runtime_port},
            },
        },
    ]


@pytest.mark.slow
async def test_the_operators_admin_api_serves_the_clusters_bundle_before_and_after_a_restart(
    cluster, kube: Kube, kubeconfig: Path, start_operator, runtime_stub: RuntimeStub, tmp_path: Path
):
    """The real operator with its admin API: a person resolves a severity-1 incident; the route serves the bundle kept
    in the ConfigMap (the runtime's status and orders, the Strategy's Events), and so does a restarted operator's."""
    cluster.users[OPERATOR_TOKEN] = ("bob", [])
    cluster.users[VIEWER_TOKEN] = ("alice", [])
    await bind_roles(cluster, kubeconfig)
    runtime_stub.orders = list(ORDERS)
    plain_status = runtime_stub.status
    mismatch = {"reconcile": {"ok": False, "problems": 1, "last_problem": "position 0.1 BTC, exchange 0"}}
    runtime_stub.status = lambda: {**plain_status(), "health": mismatch}
    await kube.apply(cluster_event("btc-trend", "Halted", "halted: state mismatch"))
    port = free_port()
    options = {
        "runtime_url": "http://127.0.0.1:{port}",
        "incidents_interval_seconds": 0.5,
        "admin_api_address": "127.0.0.1",
        "state_dir": tmp_path / "state",
    }
    stop = await start_operator(admin_api_port=port, **options)
    for body in trading_objects(runtime_stub.port):
        await kube.apply(body)
    await kube.eventually(lambda: kube.get("deployments", "slsbot-runtime-btc-trend"), what="the runtime")
    await kube.mark_runtime_ready("btc-trend")

    async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}) as http:

        async def open_incident() -> str | None:
            try:
                answer = await http.get(f"http://127.0.0.1:{port}/api/v1/incidents", params={"state": "open"})
            except httpx.HTTPError:
                return None
            assert answer.status_code == 200, answer.text
            return next((i["id"] for i in answer.json() if i["spec"]["severity"] == 1), None)

        incident_id = await kube.eventually(open_incident, within=30, what="an open severity-1 incident")
        resolved = await http.post(f"http://127.0.0.1:{port}/api/v1/incidents/{incident_id}/resolve")
        assert resolved.status_code == 200 and resolved.json()["status"]["state"] == "resolved", resolved.text

        kept = await kube.get("configmaps", f"slsbot-postmortem-{incident_id}")
        assert kept is not None, "the bundle is kept in a ConfigMap when the incident is resolved"
        incident_object = await kube.get("incidents", incident_id)
        owner = kept["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "Incident",
            incident_id,
            incident_object["metadata"]["uid"],
        )
        stored = json.loads(kept["data"]["bundle.json"])
        btc = stored["runtimes"]["Strategy/btc-trend"]
        assert btc["lastStatus"]["health"] == mismatch and btc["lastStatus"]["equity"] == 10_250.5
        assert btc["recentOrders"] == ORDERS
        assert ("Strategy", "btc-trend", "Halted") in [(e["kind"], e["name"], e["reason"]) for e in stored["events"]]

        viewer = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
        served = await http.get(f"http://127.0.0.1:{port}/api/v1/incidents/{incident_id}/postmortem", headers=viewer)
        assert served.status_code == 200, served.text
        assert served.json() == stored

    # The operator restarts (its state folder is an emptyDir: gone); the runtime's orders moved on meanwhile.
    await stop()
    runtime_stub.orders = [{"id": "o-late", "symbol": "BTC/USDT", "side": "buy", "amount": 1, "status": "open"}]
    port = free_port()
    await start_operator(admin_api_port=port, **{**options, "state_dir": tmp_path / "state-after-restart"})
    async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}) as http:

        async def served_again() -> dict[str, Any] | None:
            try:
                answer = await http.get(f"http://127.0.0.1:{port}/api/v1/incidents/{incident_id}/postmortem")
            except httpx.HTTPError:
                return None
            assert answer.status_code == 200, answer.text
            return answer.json()

        assert await kube.eventually(served_again, within=30, what="the restarted admin API") == stored
