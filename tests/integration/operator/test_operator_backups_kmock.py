"""The operator turns a BackupSchedule into its CronJobs on the Kubernetes API emulator: one per job kind, owned by
the schedule; the backup CronJob mounts the state claims of the Strategies it selects (read-only), follows a
Strategy that comes later, and a changed schedule patches them."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

JOBS = ("backup", "check", "prune", "drill")


def schedule(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "BackupSchedule",
        "metadata": {"name": "hourly"},
        "spec": {
            "repository": "s3:s3.example/bucket/slsbot",
            "passwordSecretRef": {"name": "restic", "key": "password"},
            "selector": {"account": "paper-binance"},
            **spec,
        },
    }


def strategy(name: str, account: str = "paper-binance") -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": name},
        "spec": {
            "accountRef": {"name": account},
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]},
        },
    }


def claim(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": f"slsbot-runtime-{name}"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def mounted_claims(cronjob: dict[str, Any] | None) -> list[str]:
    pod = (cronjob or {}).get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    volumes = pod.get("volumes", [])
    return sorted(v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v)


async def test_a_backup_schedule_becomes_its_cronjobs(kube, start_operator) -> None:
    await start_operator(namespaces=["trading"], backup_image="registry.example/slsbot:1")
    # The Strategies' claims stand for their runtimes' (kmock runs no controller; the operator would make them).
    await kube.apply(claim("btc"))
    await kube.apply(claim("other"))
    await kube.apply(strategy("btc"))
    await kube.apply(strategy("other", account="bybit"))  # not selected
    created = await kube.apply(schedule())

    async def all_there() -> list[dict[str, Any]]:
        found = [await kube.get("cronjobs", f"slsbot-backup-hourly-{job}") for job in JOBS]
        return found if all(found) else []

    cronjobs = dict(zip(JOBS, await kube.eventually(all_there, what="the four CronJobs"), strict=True))
    for job, body in cronjobs.items():
        owner = body["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("BackupSchedule", "hourly", created["metadata"]["uid"])
        container = body["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "registry.example/slsbot:1"
        assert container["args"][:4] == ["backup", "run", "--job", job]
    assert cronjobs["backup"]["spec"]["schedule"] == "0 * * * *"
    assert mounted_claims(cronjobs["backup"]) == ["slsbot-runtime-btc"]
    assert mounted_claims(cronjobs["check"]) == []

    # A Strategy of the account that comes later is mounted too.
    await kube.apply(claim("eth"))
    await kube.apply(strategy("eth"))

    async def eth_mounted() -> bool:
        return mounted_claims(await kube.get("cronjobs", "slsbot-backup-hourly-backup")) == [
            "slsbot-runtime-btc",
            "slsbot-runtime-eth",
        ]

    await kube.eventually(eth_mounted, what="the new Strategy's claim in the backup CronJob")

    # A changed schedule patches its CronJob.
    await kube.patch("backupschedules", "hourly", {"spec": {"restoreDrill": {"schedule": "0 6 * * 1"}}})

    async def drill_moved() -> bool:
        body = await kube.get("cronjobs", "slsbot-backup-hourly-drill")
        return bool(body) and body["spec"]["schedule"] == "0 6 * * 1"

    await kube.eventually(drill_moved, what="the drill CronJob's new schedule")
