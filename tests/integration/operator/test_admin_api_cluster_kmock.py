"""``slsbot operator --admin-api-port``: the admin API over the cluster's objects, with callers authenticated by
TokenReview and authorised by SubjectAccessReview, both answered by the emulator from its token table and the RBAC
objects stored in it (deploy/operator/60-admin-api-roles.yaml applied with kubectl, bound per user).

The real operator runs (kopf and the admin API in their threads); the test calls the API over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.fakes.test_secrets import CLUSTER_API_ADMIN_TOKEN as ADMIN_TOKEN
from tests.fakes.test_secrets import CLUSTER_API_LATE_TOKEN as LATE_TOKEN
from tests.fakes.test_secrets import CLUSTER_API_OPERATOR_TOKEN as OPERATOR_TOKEN
from tests.fakes.test_secrets import CLUSTER_API_VIEWER_TOKEN as VIEWER_TOKEN
from tests.fakes.test_secrets import OPERATOR_KMOCK_NEW_CONTROL_KEY as NEW_CONTROL_KEY

from slsbot.adapters.kubernetes.client import resource_path

from .conftest import CONTROL_KEY

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[3]
NAMESPACE = "trading"
USERS = {VIEWER_TOKEN: "alice", OPERATOR_TOKEN: "bob", ADMIN_TOKEN: "carol", LATE_TOKEN: "dave"}
ROLES = {
    "alice": "slsbot-api-viewer",
    "bob": "slsbot-api-operator",
    "carol": "slsbot-api-admin",
    "dave": "slsbot-api-admin",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ab_experiment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": "ab",
            "strategyRef": {"name": "btc-trend"},
            "variants": [
                {"name": "baseline", "strategyRef": {"name": "btc-trend"}},
                {"name": "candidate", "strategyRef": {"name": "eth-trend"}},
            ],
            "schedule": {"steps": [10, 50, 100], "stepInterval": "24h", "minTrades": 30, "significance": 0.05},
        },
    }


def strategy(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "accountRef": {"name": "paper-binance"},
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]},
        },
    }


async def bind_roles(cluster: Any, kubeconfig: Path) -> None:
    """The sample ClusterRoles, applied as a user would (kubectl when installed), and one ClusterRoleBinding each."""
    roles = REPO / "deploy" / "operator" / "60-admin-api-roles.yaml"
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        done = await asyncio.to_thread(
            subprocess.run,
            [kubectl, "--kubeconfig", str(kubeconfig), "create", "--validate=false", "-f", str(roles)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    else:
        import yaml

        for document in yaml.safe_load_all(roles.read_text()):
            await post(cluster, resource_path("rbac.authorization.k8s.io", "v1", "clusterroles"), document)
    for user, role in ROLES.items():
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{user}-{role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}],
        }
        await post(cluster, resource_path("rbac.authorization.k8s.io", "v1", "clusterrolebindings"), binding)


async def post(cluster: Any, path: str, body: dict[str, Any]) -> None:
    async with cluster.request("POST", path, json=body) as response:
        assert response.status < 300, await response.text()


async def test_users_list_read_pause_and_resume_strategies_as_rbac_allows_and_are_audited_by_name(
    cluster, kube, kubeconfig, start_operator, tmp_path
):
    for token, user in USERS.items():
        cluster.users[token] = (user, ["slsbot-users"])
    await bind_roles(cluster, kubeconfig)
    await kube.apply(strategy("btc-trend"))
    await kube.apply(strategy("eth-trend"))
    await kube.apply(ab_experiment("btc-ab"))
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "btc-trend.1", "namespace": NAMESPACE},
        "involvedObject": {"apiVersion": "slsbot.io/v1alpha1", "kind": "Strategy", "name": "btc-trend"},
        "type": "Warning",
        "reason": "BackOff",
        "message": "the runtime exited; restarting in 10 s",
        "firstTimestamp": "2026-01-02T03:04:05Z",
        "lastTimestamp": "2026-01-02T03:04:05Z",
        "count": 1,
    }
    await post(cluster, resource_path("", "v1", "events", namespace=NAMESPACE), event)
    port = free_port()
    await start_operator(admin_api_port=port, admin_api_address="127.0.0.1", state_dir=tmp_path / "state")
    base = f"http://127.0.0.1:{port}/api/v1"

    async with httpx.AsyncClient(timeout=10) as http:

        def as_(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        async def served() -> bool:
            try:
                return (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await kube.eventually(served, within=30, what="the admin API")

        # A viewer lists and reads; a page of requests costs one TokenReview.
        reviews_before = cluster.calls["tokenreviews", "create"]
        listed = await http.get(f"{base}/strategies", headers=as_(VIEWER_TOKEN))
        assert listed.status_code == 200, listed.text
        assert [(s["namespace"], s["name"]) for s in listed.json()] == [
            (NAMESPACE, "btc-trend"),
            (NAMESPACE, "eth-trend"),
        ]
        one = await http.get(f"{base}/strategies/btc-trend", headers=as_(VIEWER_TOKEN))
        assert one.status_code == 200 and one.json()["paused"] is False, one.text
        events = await http.get(f"{base}/events", params={"name": "btc-trend"}, headers=as_(VIEWER_TOKEN))
        assert events.status_code == 200, events.text
        # the test's event, and the operator's own about the Strategy (it waits for its account), newest first
        assert ("Warning", "BackOff", "btc-trend") in [(e["type"], e["reason"], e["name"]) for e in events.json()]
        assert {e["name"] for e in events.json()} == {"btc-trend"}
        assert [e["last_seen"] for e in events.json()] == sorted((e["last_seen"] for e in events.json()), reverse=True)
        assert cluster.calls["tokenreviews", "create"] - reviews_before == 1

        # A viewer may not pause: 403, naming the role it needs; the Strategy is untouched.
        refused = await http.post(f"{base}/strategies/btc-trend/pause", headers=as_(VIEWER_TOKEN))
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "PermissionDenied"
        assert "viewer:alice" in refused.json()["detail"] and "operator role" in refused.json()["detail"]
        assert "patch" in refused.json()["detail"]  # why: RBAC allows no patch (a denial has no reason of its own)
        assert (await kube.get("strategies", "btc-trend"))["spec"].get("paused") in (None, False)

        # An operator pauses and resumes: the Strategy's spec.paused is patched, as kubectl patch would.
        paused = await http.post(f"{base}/strategies/btc-trend/pause", headers=as_(OPERATOR_TOKEN))
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"] is True
        assert (await kube.get("strategies", "btc-trend"))["spec"]["paused"] is True
        resumed = await http.post(f"{base}/strategies/btc-trend/resume", headers=as_(OPERATOR_TOKEN))
        assert resumed.status_code == 200 and resumed.json()["paused"] is False, resumed.text
        assert (await kube.get("strategies", "btc-trend"))["spec"]["paused"] is False

        # An A/B Experiment's controls patch its spec the same way.
        experiments = await http.get(f"{base}/experiments", headers=as_(VIEWER_TOKEN))
        assert [e["name"] for e in experiments.json()] == ["btc-ab"], experiments.text
        held = await http.post(f"{base}/experiments/btc-ab/pause", headers=as_(OPERATOR_TOKEN))
        assert held.status_code == 200 and held.json()["paused"] is True, held.text
        assert (await kube.get("experiments", "btc-ab"))["spec"]["paused"] is True

        # The audit trail (SQLite in the operator's state folder) names the Kubernetes users.
        audit = await http.get(f"{base}/audit", headers=as_(ADMIN_TOKEN))
        assert audit.status_code == 200, audit.text
        assert [(a["actor"], a["action"], a["target"], a["result"][:3]) for a in reversed(audit.json())] == [
            ("viewer:alice", "POST /api/v1/strategies/{name}/pause", "Strategy */btc-trend", "403"),  # not looked up
            ("operator:bob", "POST /api/v1/strategies/{name}/pause", f"Strategy {NAMESPACE}/btc-trend", "200"),
            ("operator:bob", "POST /api/v1/strategies/{name}/resume", f"Strategy {NAMESPACE}/btc-trend", "200"),
            ("operator:bob", "POST /api/v1/experiments/{name}/pause", f"Experiment {NAMESPACE}/btc-ab", "200"),
        ]
        assert (tmp_path / "state" / "admin-api.db").is_file()

        # A token the API server does not know: 401.
        unknown = await http.get(f"{base}/strategies", headers=as_("it-k8s-nobody-token"))
        assert unknown.status_code == 401, unknown.text

        # The API server cannot review tokens: 503 saying so, never 401 or 500.
        cluster.reviews_available = False
        down = await http.get(f"{base}/strategies", headers=as_(LATE_TOKEN))
        assert down.status_code == 503, down.text
        assert "TokenReview" in down.json()["detail"] and LATE_TOKEN not in down.text
        cluster.reviews_available = True
        back = await http.get(f"{base}/strategies", headers=as_(LATE_TOKEN))
        assert back.status_code == 200, back.text


async def test_the_command_serves_the_admin_api_beside_kopf_and_stops_it_on_sigterm(
    cluster, kube, kubeconfig, tmp_path
):
    cluster.users[ADMIN_TOKEN] = ("carol", [])
    await bind_roles(cluster, kubeconfig)
    await kube.apply(strategy("btc-trend"))
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "SLSBOT_OPERATOR_CONTROL_KEY": kube.control_key,
        "SLSBOT_OPERATOR_METRICS_PORT": "off",
        "SLSBOT_OPERATOR_ADMIN_API_ADDRESS": "127.0.0.1",
        "SLSBOT_OPERATOR_STATE_DIR": str(tmp_path / "state"),
    }
    log_path = tmp_path / "operator.log"
    with log_path.open("w") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "slsbot.interfaces.cli",
            "operator",
            "--all-namespaces",
            "--admin-api-port",
            str(port),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )
        try:
            async with httpx.AsyncClient(timeout=5) as http:

                async def listed() -> list[str]:
                    assert process.returncode is None, log_path.read_text()
                    try:
                        answer = await http.get(
                            f"http://127.0.0.1:{port}/api/v1/strategies",
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                        )
                    except httpx.HTTPError:
                        return []
                    assert answer.status_code == 200, answer.text
                    return [s["name"] for s in answer.json()]

                assert await kube.eventually(listed, within=60, what="the admin API of the process") == ["btc-trend"]
                anonymous = await http.get(f"http://127.0.0.1:{port}/api/v1/strategies")
                assert anonymous.status_code == 401
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=30) == 0, log_path.read_text()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert ADMIN_TOKEN not in log_path.read_text()


async def test_the_control_center_reads_the_fleet_and_an_operator_sets_a_policys_kill_switch(
    cluster, kube, kubeconfig, start_operator, tmp_path
):
    """The Control Center's page and routes on a cluster: the fleet with the kill switch of each bot's account's
    RiskPolicy, and ``POST /riskpolicies/{name}/kill-switch`` patching the policy's ``spec.killSwitch`` (refused for
    a viewer, audited); a bot's activity asks its runtime, which kmock does not run: 503 saying so."""
    for token, user in USERS.items():
        cluster.users[token] = (user, ["slsbot-users"])
    await bind_roles(cluster, kubeconfig)
    policy = {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RiskPolicy",
        "metadata": {"name": "acct-risk", "namespace": NAMESPACE},
        "spec": {"scope": "account"},
    }
    account = {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": "paper-binance", "namespace": NAMESPACE},
        "spec": {
            "exchange": "binance",
            "mode": "paper",
            "paper": {"startingBalance": 10000, "quoteCurrency": "USDT"},
            "riskPolicyRef": {"name": "acct-risk"},
        },
    }
    for body in (policy, account, strategy("btc-trend")):
        await kube.apply(body)
    port = free_port()
    await start_operator(admin_api_port=port, admin_api_address="127.0.0.1", state_dir=tmp_path / "state")
    base = f"http://127.0.0.1:{port}/api/v1"

    async with httpx.AsyncClient(timeout=10) as http:

        def as_(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        async def served() -> bool:
            try:
                return (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await kube.eventually(served, within=30, what="the admin API")
        page = await http.get(f"http://127.0.0.1:{port}/ui")
        assert page.status_code == 200 and "script-src 'self';" in page.headers["content-security-policy"]

        fleet = await http.get(f"{base}/fleet", headers=as_(VIEWER_TOKEN))
        assert fleet.status_code == 200, fleet.text
        (bot,) = fleet.json()["bots"]
        assert (bot["name"], bot["account"], bot["risk_policy"], bot["kill_switch"]) == (
            "btc-trend",
            "paper-binance",
            "acct-risk",
            False,
        )
        activity = await http.get(f"{base}/strategies/btc-trend/activity", headers=as_(VIEWER_TOKEN))
        assert activity.status_code == 503 and "does not answer" in activity.json()["detail"], activity.text

        path = f"{base}/riskpolicies/acct-risk/kill-switch"
        refused = await http.post(path, json={"on": True}, headers=as_(VIEWER_TOKEN))
        assert refused.status_code == 403 and "operator role" in refused.json()["detail"], refused.text
        assert (await kube.get("riskpolicies", "acct-risk"))["spec"].get("killSwitch") in (None, False)

        killed = await http.post(path, json={"on": True}, headers=as_(OPERATOR_TOKEN))
        assert killed.status_code == 200 and killed.json()["kill_switch"] is True, killed.text
        assert (await kube.get("riskpolicies", "acct-risk"))["spec"]["killSwitch"] is True
        listed = await http.get(f"{base}/riskpolicies", headers=as_(VIEWER_TOKEN))
        assert [(p["name"], p["kill_switch"]) for p in listed.json()] == [("acct-risk", True)], listed.text
        fleet = await http.get(f"{base}/fleet", headers=as_(VIEWER_TOKEN))
        assert fleet.json()["bots"][0]["kill_switch"] is True
        cleared = await http.post(path, json={"on": False}, headers=as_(OPERATOR_TOKEN))
        assert cleared.status_code == 200 and cleared.json()["kill_switch"] is False, cleared.text
        assert (await kube.get("riskpolicies", "acct-risk"))["spec"]["killSwitch"] is False

        audit = await http.get(f"{base}/audit", headers=as_(ADMIN_TOKEN))
        action = "POST /api/v1/riskpolicies/{name}/kill-switch"
        assert [(a["actor"], a["action"], a["target"], a["result"][:3]) for a in reversed(audit.json())] == [
            ("viewer:alice", action, "RiskPolicy */acct-risk", "403"),
            ("operator:bob", action, f"RiskPolicy {NAMESPACE}/acct-risk", "200"),
            ("operator:bob", action, f"RiskPolicy {NAMESPACE}/acct-risk", "200"),
        ]


async def test_during_a_control_key_rotation_the_admin_api_reaches_runtimes_that_know_only_the_old_token(
    cluster, kube, kubeconfig, start_operator, runtime_stub, tmp_path
):
    """The operator restarted with a new control key and the old one as the previous, in its grace: until the kubelet
    refreshes a runtime's token file, the runtime knows only the old token. The admin API's calls to it (a bot's
    orders) are refused with the new token and repeated with the old one, as the operator's own calls are."""
    cluster.users[VIEWER_TOKEN] = ("alice", ["slsbot-users"])
    await bind_roles(cluster, kubeconfig)
    runtime_stub.orders = [
        {"client_order_id": "sls0a1b2c3d-1", "symbol": "BTC/USDT", "side": "buy", "quantity": 0.1, "status": "open"}
    ]
    policy = {"apiVersion": "slsbot.io/v1alpha1", "kind": "RiskPolicy", "metadata": {"name": "risk"}, "spec": {}}
    account = {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": "paper-binance"},
        "spec": {"exchange": "binance", "mode": "paper", "riskPolicyRef": {"name": "risk"}},
    }
    bot = strategy("btc-trend")
    bot["spec"]["runtime"] = {"port": runtime_stub.port}
    port = free_port()
    await start_operator(
        admin_api_port=port,
        admin_api_address="127.0.0.1",
        state_dir=tmp_path / "state",
        runtime_url="http://127.0.0.1:{port}",
        control_key=NEW_CONTROL_KEY,
        control_key_previous=CONTROL_KEY,  # what the runtime's token (runtime_stub.token) comes from
        control_key_grace_until=datetime.now(UTC) + timedelta(hours=1),
    )
    for body in (policy, account, bot):
        await kube.apply({**body, "metadata": {**body["metadata"], "namespace": NAMESPACE}})
    await kube.eventually(lambda: kube.get("services", "slsbot-runtime-btc-trend"), what="the runtime's Service")

    async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}) as http:

        async def orders() -> httpx.Response | None:
            try:
                answer = await http.get(f"http://127.0.0.1:{port}/api/v1/strategies/btc-trend/orders")
            except httpx.HTTPError:
                return None
            return answer if answer.status_code != 404 else None  # the Strategy not read yet

        answer = await kube.eventually(orders, within=30, what="the admin API answering for btc-trend")
        assert answer.status_code == 200, answer.text
        assert [o["client_order_id"] for o in answer.json()] == ["sls0a1b2c3d-1"]
        assert ("GET", "/orders?limit=100") in runtime_stub.refused  # the new key's token first, then the old one's
