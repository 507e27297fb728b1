"""The operator's RBAC against what it does: the real operator runs a whole life cycle against kmock in
single-namespace mode, every request it makes is recorded, and the rules of deploy/operator (ClusterRole) and
deploy/operator-namespaced (Role) must allow each one, while each rule must be used by some request (or be listed
below with the reason it is needed all the same)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from slsbot.adapters.kubernetes.client import PARTIAL_METADATA

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        importlib.util.find_spec("slsbot_runtime.tuning") is None,
        reason="the life cycle runs a tuning Experiment, whose study the operator reads with the tuning engine "
        "(slsbot_runtime.tuning), which this branch does not have yet",
    ),
]

REPO = Path(__file__).resolve().parents[3]
CLUSTER_ROLE = REPO / "deploy" / "operator" / "20-clusterrole.yaml"
ROLE = REPO / "deploy" / "operator-namespaced" / "20-role.yaml"
RUNTIME = "slsbot-runtime-btc-trend"

# Rules no request of the operator's own targets, and why they are granted all the same.
UNCALLED = {
    ("slsbot.io", "strategies/finalizers", "update"): (
        "the owner references the operator writes (controller, blockOwnerDeletion) on a Strategy's objects need it "
        "where the OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift)"
    ),
    ("slsbot.io", "experiments/finalizers", "update"): (
        "the same, for a tuning run's Job, ConfigMap and storage Secret, owned by their Experiment"
    ),
    ("slsbot.io", "backupschedules/finalizers", "update"): "the same, for a BackupSchedule's CronJobs",
    ("slsbot.io", "backupschedules", "get"): (
        "RBAC's escalation check: the operator creates the backup jobs' Role (backup_manifests.build_backup_rbac), "
        "which grants it, so it must hold it (tests/integration/backups/test_backup_cluster_kmock.py checks the Role)"
    ),
    ("slsbot.io", "backupschedules/status", "patch"): "the same: the backup jobs' Role grants it",
}

# Rules this life cycle does not exercise but another flow of the operator calls; the test named does.
OTHER_FLOWS = {
    ("slsbot.io", "strategies", "create"): "an accepted tuning proposal with promotion: ab creates its candidate "
    "Strategy (tests/integration/operator/test_owned_objects_kmock.py drives the same client calls)",
    ("slsbot.io", "experiments", "create"): "the same promotion creates the A/B Experiment that rolls it out",
    ("slsbot.io", "strategies", "delete"): "a promoted A/B rollout deletes the candidate Strategy it owns",
    # The incidents timer runs every incidentsIntervalSeconds (15 s): a life cycle shorter than that may end first.
    # tests/integration/operator/test_incidents_kmock.py runs the operator through an Incident's whole life.
    ("slsbot.io", "incidents", "list"): "the incidents timer lists the active Incidents of its namespace",
    ("slsbot.io", "incidents", "get"): "an Incident is read before it is written",
    ("slsbot.io", "incidents", "create"): "a runtime whose health breaks a severity rule opens an Incident",
    ("slsbot.io", "incidents", "patch"): "an Incident's labels follow its state",
    ("slsbot.io", "incidents/status", "patch"): "an Incident's status (timeline, state, count)",
    # tests/integration/operator/test_postmortems_kmock.py resolves severity 1 and 2 incidents.
    ("", "configmaps", "get"): "a resolved incident's post-mortem ConfigMap is looked for before it is written, and "
    "read by the admin API's GET /incidents/{id}/postmortem",
    ("", "events", "list"): "a resolved incident's post-mortem bundle holds the Events of its objects (and the admin "
    "API's GET /events lists them)",
    # tests/integration/operator/test_operator_backups_kmock.py changes a BackupSchedule.
    ("batch", "cronjobs", "patch"): "a changed BackupSchedule patches its CronJobs",
    ("batch", "cronjobs", "delete"): "a CronJob labelled with a schedule that no longer builds it is deleted",
    ("rbac.authorization.k8s.io", "roles", "patch"): "a backup jobs' Role whose rules a newer operator changed",
}


def granted(path: Path) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every rule: the role uses no wildcards and no resourceNames."""
    role = yaml.safe_load(path.read_text())
    grants = set()
    for rule in role["rules"]:
        assert "resourceNames" not in rule and "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        grants |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return grants


def policy() -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RiskPolicy",
        "metadata": {"name": "standard-risk"},
        "spec": {"perTrade": {"minPercent": 1, "maxPercent": 10}},
    }


def account() -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": "testnet-binance"},
        "spec": {
            "exchange": "binance",
            "mode": "testnet",
            "credentials": {"secretRef": {"name": "binance-testnet-keys"}},
            "riskPolicyRef": {"name": "standard-risk"},
        },
    }


def credentials_secret() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "binance-testnet-keys", "labels": {"slsbot.io/credentials": "true"}},
        "data": {"apiKey": "a2V5", "secret": "c2VjcmV0"},
    }


def strategy(port: int, fast: int = 10) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": "btc-trend"},
        "spec": {
            "accountRef": {"name": "testnet-binance"},
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": fast, "slow": 30}}]},
            "marketData": {"source": "exchange"},  # a testnet account trades the exchange's own candles
            "runtime": {"port": port},
        },
    }


def backup_schedule() -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "BackupSchedule",
        "metadata": {"name": "hourly"},
        "spec": {"repository": "s3:s3.example/bucket", "passwordSecretRef": {"name": "restic", "key": "password"}},
    }


def experiment() -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "tune"},
        "spec": {
            "type": "tuning",
            "strategyRef": {"name": "btc-trend"},
            "searchSpace": [{"name": "sma.fast", "type": "int", "low": 5, "high": 20}],
        },
    }


def ready(body: dict[str, Any] | None, type: str = "Ready") -> bool:
    conditions = ((body or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == type and c["status"] == "True" for c in conditions)


async def test_every_call_of_a_whole_life_cycle_is_granted_and_every_grant_is_used(
    kube, start_operator, runtime_stub, tmp_path
):
    await start_operator(
        namespaces=["trading"],
        runtime_url="http://127.0.0.1:{port}",
        study_storage=f"sqlite:///{tmp_path / 'study.db'}",
        tuning_dir=tmp_path / "tuning",
        experiment_interval_seconds=1.0,
    )
    await kube.apply(policy())
    await kube.apply(credentials_secret())
    await kube.apply(account())
    await kube.apply(strategy(runtime_stub.port))
    await kube.apply(experiment())
    await kube.apply(backup_schedule())

    await kube.eventually(lambda: kube.get("deployments", RUNTIME), what="the runtime Deployment")
    await kube.eventually(lambda: kube.get("cronjobs", "slsbot-backup-hourly-drill"), what="the backup CronJobs")
    # A tuning run: its storage Secret, plan ConfigMap and Job.
    await kube.eventually(lambda: kube.get("jobs", "slsbot-tune-tune-r1"), what="the tuning run's Job")
    await kube.mark_runtime_ready("btc-trend")

    async def strategy_ready() -> bool:
        return ready(await kube.get("strategies", "btc-trend"))

    await kube.eventually(strategy_ready, what="Ready=True")

    # A new config (every object patched; the tuning run, which measured the old one, is replaced), then a pause
    # (the ConfigMap patched, the runtime called).
    first = await kube.get("deployments", RUNTIME)
    await kube.patch("strategies", "btc-trend", {"spec": strategy(runtime_stub.port, fast=12)["spec"]})

    async def rolled() -> bool:
        deployment = await kube.get("deployments", RUNTIME) or first
        return deployment["metadata"]["generation"] != first["metadata"]["generation"]

    await kube.eventually(rolled, what="the new config rolled out")
    await kube.mark_runtime_ready("btc-trend")
    await kube.eventually(strategy_ready, what="Ready=True on the new config")
    await kube.patch("strategies", "btc-trend", {"spec": {"paused": True}})
    await kube.eventually(lambda: _value(runtime_stub.posts("/pause")), what="POST /pause")

    # The tuning run the new config made stale is replaced: its Job deleted, the next run's created.
    await kube.eventually(lambda: kube.get("jobs", "slsbot-tune-tune-r2"), what="the next tuning run's Job")
    assert await kube.get("jobs", "slsbot-tune-tune-r1") is None

    async def account_counted() -> bool:
        body = await kube.get("tradingaccounts", "testnet-binance")
        return ready(body) and body["status"]["strategies"] == 1

    await kube.eventually(account_counted, what="the account validated, counting its strategy")

    await kube.delete("strategies", "btc-trend")

    async def gone() -> bool:
        return await kube.get("strategies", "btc-trend") is None

    await kube.eventually(gone, within=60, what="the Strategy drained, its objects deleted, the finalizer removed")
    assert runtime_stub.posts("/shutdown")
    assert await kube.get("networkpolicies", RUNTIME) is None

    calls = kube.operator_calls()
    used = {(c.group, c.resource, c.verb) for c in calls}
    # Single-namespace mode: every request stays in the served namespace, so a Role there is enough.
    assert {c.namespace for c in calls} == {"trading"}, sorted({(c, c.namespace) for c in used})
    for path in (CLUSTER_ROLE, ROLE):
        grants = granted(path)
        assert not used - grants, f"{path.relative_to(REPO)} does not grant {sorted(used - grants)}"
        unused = grants - used - set(UNCALLED) - set(OTHER_FLOWS)
        assert not unused, f"{path.relative_to(REPO)} grants what the operator never calls: {sorted(unused)}"
        assert set(UNCALLED) <= grants
    # Secrets: their metadata is read, never their data; the control Secret is replaced, never patched.
    secret_calls = [c for c in calls if c.resource == "secrets"]
    assert {c.verb for c in secret_calls} == {"get", "create", "delete"}
    assert all(c.accept == PARTIAL_METADATA for c in secret_calls if c.verb == "get")


async def _value(value: Any) -> Any:
    return value
