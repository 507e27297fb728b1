"""``KubernetesIncidentStore`` and ``KubernetesSecretValues`` against the Kubernetes API emulator over HTTP: incidents
are Incident objects that a fresh store (an operator restarted) reads back, listed by state and severity through
their labels, with the status written through the status subresource; a receiver's URL is read from its Secret."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path

from slsbot.adapters.kubernetes.client import KubernetesApi, load_client_configuration, resource_path
from slsbot.adapters.kubernetes.incidents import KubernetesIncidentStore, KubernetesSecretValues
from slsbot.api.health import SecretKeyRef
from slsbot.domain.errors import NotFoundError
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.services.incidents import IncidentService
from slsbot.testing.kube_emulator import ClusterEmulator

from .conftest import NAMESPACE

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def signal(name: str, severity: int, rule: str = "StateMismatch") -> IncidentSignal:
    return IncidentSignal(
        cause=f"{rule}:{NAMESPACE}/{name}",
        severity=severity,
        rule=rule,
        namespace=NAMESPACE,
        objects=(f"Strategy/{name}",),
        message=f"{rule} on {name}",
        runbook="runbooks/state-mismatch.md",
        detected_at=T0,
        actions=("CancelOrders", "Flatten", "Halt") if severity == 1 else (),
    )


async def test_incidents_are_objects_that_survive_an_operator_restart(cluster: ClusterEmulator, kubeconfig: Path):
    api = KubernetesApi(load_client_configuration(kubeconfig=str(kubeconfig), context=None))

    def scenario() -> None:
        service = IncidentService(KubernetesIncidentStore(api), None)
        service.record_signals([signal("btc", 1), signal("eth", 3, "Slippage")], T0)
        objects = api.list(resource_path("slsbot.io", "v1alpha1", "incidents", namespace=NAMESPACE))
        assert len(objects) == 2
        critical = next(o for o in objects if o["spec"]["severity"] == 1)
        assert critical["kind"] == "Incident" and critical["metadata"]["namespace"] == NAMESPACE
        assert critical["metadata"]["labels"] == {"slsbot.io/incident-state": "open", "slsbot.io/severity": "1"}
        assert critical["status"]["state"] == "open"
        assert [e["kind"] for e in critical["status"]["timeline"]] == ["Detected", "Action"]

        restarted = KubernetesIncidentStore(api)  # what a restarted operator sees
        assert {i.spec.rule for i in restarted.active_incidents()} == {"StateMismatch", "Slippage"}
        assert [i.spec.rule for i in restarted.list_incidents(severity=3)] == ["Slippage"]
        incident_id = critical["metadata"]["name"]
        acked = IncidentService(restarted, None).acknowledge(incident_id, "operator:x", T0 + timedelta(minutes=1))
        assert restarted.get_incident(incident_id) == acked
        body = api.get(resource_path("slsbot.io", "v1alpha1", "incidents", namespace=NAMESPACE, name=incident_id))
        assert body["metadata"]["labels"]["slsbot.io/incident-state"] == "acknowledged"

        # The cause goes away: cleared, then resolved after recoverAfter; the labels follow.
        causes = {f"StateMismatch:{NAMESPACE}/btc": timedelta(seconds=30), f"Slippage:{NAMESPACE}/eth": timedelta(0)}
        service.record_signals([], T0 + timedelta(minutes=2), recover_after=causes, evaluated=["rules"])
        service.record_signals([], T0 + timedelta(minutes=3), recover_after=causes, evaluated=["rules"])
        assert restarted.active_incidents() == []
        assert {i.spec.rule for i in restarted.list_incidents(state="resolved")} == {"StateMismatch", "Slippage"}
        with pytest.raises(NotFoundError):
            restarted.get_incident("nope")

    await asyncio.to_thread(scenario)


async def test_a_receivers_url_is_read_from_its_secret(cluster: ClusterEmulator, kubeconfig: Path):
    api = KubernetesApi(load_client_configuration(kubeconfig=str(kubeconfig), context=None))
    url = test_secrets.SLACK_WEBHOOK_URL

    def scenario() -> None:
        secrets = resource_path("", "v1", "secrets", namespace=NAMESPACE)
        api.create(
            secrets,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "hooks", "namespace": NAMESPACE},
                "data": {"slack": base64.b64encode(url.encode()).decode()},
            },
        )
        values = KubernetesSecretValues(api)
        assert values.read(NAMESPACE, SecretKeyRef(name="hooks", key="slack")) == url
        with pytest.raises(NotFoundError, match="Secret trading/hooks has no key pager") as missing:
            values.read(NAMESPACE, SecretKeyRef(name="hooks", key="pager"))
        assert "s3cr3t" not in str(missing.value)
        with pytest.raises(NotFoundError, match="Secret trading/other does not exist"):
            values.read(NAMESPACE, SecretKeyRef(name="other", key="slack"))

    await asyncio.to_thread(scenario)


async def test_the_operator_opens_an_incident_object_and_resolves_it_once_the_cause_is_gone(
    kube, start_operator, runtime_stub
):
    """The real operator: a runtime that reports a state mismatch opens a severity-1 Incident in its namespace
    (the RiskPolicy's rules), which resolves itself once the runtime is healthy for recoverAfter."""
    mismatch = {"reconcile": {"ok": False, "problems": 1, "last_problem": "position 0.1 BTC, exchange 0"}}
    healthy = {"reconcile": {"ok": True, "problems": 0, "last_problem": None}}
    reported = {"health": mismatch}
    plain_status = runtime_stub.status
    runtime_stub.status = lambda: {**plain_status(), **reported}  # what the runtime's /status says now

    await start_operator(runtime_url="http://127.0.0.1:{port}", incidents_interval_seconds=0.5)
    await kube.apply(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "RiskPolicy",
            "metadata": {"name": "risk"},
            "spec": {"healing": {"recoverAfter": "1s"}},
        }
    )
    await kube.apply(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": "paper-binance"},
            "spec": {"exchange": "binance", "mode": "paper", "riskPolicyRef": {"name": "risk"}},
        }
    )
    await kube.apply(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "btc-trend"},
            "spec": {
                "accountRef": {"name": "paper-binance"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
                "runtime": {"port": runtime_stub.port},
            },
        }
    )
    await kube.eventually(lambda: kube.get("deployments", "slsbot-runtime-btc-trend"), what="the runtime")
    await kube.mark_runtime_ready("btc-trend")

    async def incidents(state: str) -> list[dict]:
        status, body = await kube._call("GET", kube.path("incidents"))
        assert status == 200, body
        return [i for i in body["items"] if (i.get("status") or {}).get("state") == state]

    (opened,) = await kube.eventually(lambda: incidents("open"), within=30, what="an open Incident")
    assert opened["spec"]["rule"] == "StateMismatch" and opened["spec"]["severity"] == 1
    assert opened["spec"]["cause"] == f"StateMismatch:{NAMESPACE}/btc-trend"
    assert opened["spec"]["runbook"] == "runbooks/state-mismatch.md"
    assert "position 0.1 BTC" in opened["spec"]["message"]

    reported["health"] = healthy
    (resolved,) = await kube.eventually(lambda: incidents("resolved"), within=30, what="the Incident resolved")
    assert resolved["metadata"]["name"] == opened["metadata"]["name"]
    assert resolved["status"]["timeline"][-1]["actor"] == "slsbot"
    assert await incidents("open") == []
    # Severity 1: the operator keeps its post-mortem bundle, built from the runtime, in a ConfigMap it owns.
    name = f"slsbot-postmortem-{resolved['metadata']['name']}"
    kept = await kube.eventually(lambda: kube.get("configmaps", name), what="the post-mortem bundle kept")
    assert kept["metadata"]["ownerReferences"][0]["uid"] == resolved["metadata"]["uid"]
    runtime = json.loads(kept["data"]["bundle.json"])["runtimes"]["Strategy/btc-trend"]
    assert runtime["lastStatus"]["health"] == healthy and runtime["recentOrders"] == []
