"""``slsbot restore --kubernetes`` against the real operator on the Kubernetes API emulator, with a real restic
repository in tmp_path. kmock runs no controllers: the test plays the Deployment controller (it removes the runtime's
pod once the Deployment is scaled to 0) and the Job (it runs the restore Job's own command, its paths pointed into
tmp_path, then marks the Job succeeded). Refused, changing nothing, while the Strategy is not paused; then the runtime
is held (the operator leaves it at 0 replicas and says so), the state file put back, and the runtime scaled up again
and released."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.test_secrets import BACKUP_RESTORE_RESTIC_PASSWORD as RESTIC_PASSWORD

from slsbot.adapters.kubernetes.backup_manifests import SECRETS_ROOT, WORK_DIR
from slsbot.adapters.kubernetes.restore_manifests import RESTORE_STATE_FILE
from slsbot.domain.restore_plan import ANNOTATION_RESTORE
from slsbot.interfaces.cli import main
from slsbot_runtime.domain.types import Fill, Order, OrderStatus, Side
from slsbot_runtime.persistence.store import StateStore

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(150),
    pytest.mark.skipif(shutil.which("restic") is None, reason="no restic binary: make restic (apt-get install restic)"),
]

NAMESPACE = "trading"
RUNTIME = "slsbot-runtime-btc-trend"


def documents(port: int, repository: Path) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "RiskPolicy",
            "metadata": {"name": "standard-risk"},
            "spec": {"perTrade": {"minPercent": 1, "maxPercent": 10}},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "binance-testnet-keys", "labels": {"slsbot.io/credentials": "true"}},
            "data": {"apiKey": "a2V5", "secret": "c2VjcmV0"},
        },
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": "testnet-binance"},
            "spec": {
                "exchange": "binance",
                "mode": "testnet",
                "credentials": {"secretRef": {"name": "binance-testnet-keys"}},
                "riskPolicyRef": {"name": "standard-risk"},
            },
        },
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "btc-trend"},
            "spec": {
                "accountRef": {"name": "testnet-binance"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]},
                "marketData": {"source": "exchange"},
                "runtime": {"port": port},
            },
        },
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "BackupSchedule",
            "metadata": {"name": "hourly"},
            "spec": {"repository": str(repository), "passwordSecretRef": {"name": "restic", "key": "password"}},
        },
    ]


def write_trades(path: Path, first: int, last: int) -> None:
    store = StateStore.open(path)
    try:
        for i in range(first, last):
            cid = f"o-{i}"
            store.stage_order(Order(cid, "BTC/USDT", Side.BUY, 0.01, status=OrderStatus.FILLED, filled_quantity=0.01))
            store.stage_fill(Fill(f"f-{i}", cid, "BTC/USDT", Side.BUY, 0.01, 100.0 + i, 0.01, "USDT", 1_000 + i))
            store.commit()
    finally:
        store.close()


def orders_in(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]


async def test_restore_on_a_cluster_holds_the_runtime_runs_the_job_and_starts_it_again(
    kube, start_operator, runtime_stub, kubeconfig, tmp_path
) -> None:
    secret = tmp_path / "secrets" / NAMESPACE / "restic"  # the Secret as the Jobs mount it
    secret.mkdir(parents=True)
    (secret / "password").write_text(RESTIC_PASSWORD)
    (secret / "password").chmod(0o400)
    claim = tmp_path / "claim"  # the runtime's state claim
    write_trades(claim / "state.db", 0, 5)
    await start_operator(namespaces=[NAMESPACE], runtime_url="http://127.0.0.1:{port}")
    for document in documents(runtime_stub.port, tmp_path / "repo"):
        await kube.apply(document)
    await kube.eventually(lambda: kube.get("deployments", RUNTIME), what="the runtime's Deployment")
    await kube.eventually(lambda: kube.get("persistentvolumeclaims", RUNTIME), what="the runtime's state claim")
    await kube.mark_runtime_ready("btc-trend")

    # A backup of 5 orders (the backup CronJob's command, as a backup Job would run it), then the bot trades on.
    work = tmp_path / "work"
    cronjob = await kube.eventually(lambda: kube.get("cronjobs", "slsbot-backup-hourly-backup"), what="the CronJob")
    schedule_json = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][5]
    (tmp_path / "roots").mkdir()
    (tmp_path / "roots" / "btc-trend").symlink_to(claim)  # mounted at <state root>/<strategy>, as the CronJob does
    backup = [
        *(
            "backup",
            "run",
            "--job",
            "backup",
            "--schedule-json",
            schedule_json,
            "--state-root",
            str(tmp_path / "roots"),
        ),
        *("--secrets-dir", str(tmp_path / "secrets"), "--state-dir", str(work)),
    ]
    assert await asyncio.to_thread(main, backup) == 0
    write_trades(claim / "state.db", 5, 12)

    restore = [
        *("restore", "--kubernetes", "--kubeconfig", str(kubeconfig), "--namespace", NAMESPACE),
        *("--strategy", "btc-trend", "--image", "registry.example/slsbot:1", "--timeout", "30"),
    ]
    # Refused while the Strategy is not paused: nothing changed.
    assert await asyncio.to_thread(main, restore) == 1
    strategy = await kube.get("strategies", "btc-trend")
    assert ANNOTATION_RESTORE not in (strategy["metadata"].get("annotations") or {})
    assert (await kube.get("deployments", RUNTIME))["spec"]["replicas"] == 1
    assert orders_in(claim / "state.db") == 12

    await kube.patch("strategies", "btc-trend", {"spec": {"paused": True}})
    running = asyncio.create_task(asyncio.to_thread(main, restore))

    # Play the Deployment controller: scaled to 0, its pod goes.
    async def scaled_down() -> bool:
        body = await kube.get("deployments", RUNTIME)
        return bool(body) and body["spec"]["replicas"] == 0

    await kube.eventually(scaled_down, what="the runtime scaled to 0")
    strategy = await kube.get("strategies", "btc-trend")
    assert (strategy["metadata"].get("annotations") or {}).get(ANNOTATION_RESTORE, "").startswith("latest@")
    _, pods = await kube._call("GET", kube.path("pods"))
    for pod in pods["items"]:
        await kube.delete("pods", pod["metadata"]["name"])
    await kube.patch("deployments", RUNTIME, {"status": {"replicas": 0, "readyReplicas": 0}}, subresource="status")

    # Play the Job: its own command, with the pod's paths moved into tmp_path.
    async def restore_job() -> dict[str, Any] | None:
        _, jobs = await kube._call("GET", kube.path("jobs"))
        found = [j for j in jobs["items"] if j["metadata"]["name"].startswith("slsbot-restore-btc-trend-")]
        return found[0] if found else None

    job = await kube.eventually(restore_job, what="the restore Job")
    assert (await kube.get("deployments", RUNTIME))["spec"]["replicas"] == 0  # the operator left it held

    async def held() -> bool:
        return "RestoreInProgress" in await kube.event_reasons("btc-trend")

    await kube.eventually(held, what="the operator saying it leaves the held runtime alone")
    container = job["spec"]["template"]["spec"]["containers"][0]
    moved = {SECRETS_ROOT: str(tmp_path / "secrets"), WORK_DIR: str(work), RESTORE_STATE_FILE: str(claim / "state.db")}
    assert await asyncio.to_thread(main, [moved.get(arg, arg) for arg in container["args"]]) == 0
    await kube.patch("jobs", job["metadata"]["name"], {"status": {"succeeded": 1}}, subresource="status")

    assert await asyncio.wait_for(running, 60) == 0
    assert orders_in(claim / "state.db") == 5  # the snapshot's
    assert list(claim.glob("state.db.before-restore-*")), "the previous state file was not kept aside"
    strategy = await kube.get("strategies", "btc-trend")
    assert ANNOTATION_RESTORE not in (strategy["metadata"].get("annotations") or {})
    assert strategy["spec"]["paused"] is True  # resumed by a person, once its orders look right
    assert (await kube.get("deployments", RUNTIME))["spec"]["replicas"] == 1
