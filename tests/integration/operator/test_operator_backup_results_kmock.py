"""A BackupSchedule's run on a cluster reports its result, on the Kubernetes API emulator with a real restic
repository in tmp_path: the operator builds the CronJobs and the jobs' ServiceAccount, Role and RoleBinding; the test
plays the Job (kmock runs none) by running the backup CronJob's own command, with its paths pointed into tmp_path, as
that ServiceAccount. A failing run, then a passing one: the schedule's status, the Event and the Incident follow.
Every request the job made is allowed by the Role the operator made (the emulator evaluates RBAC as the API server's
authorizer does), and each rule of that Role is used."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.fakes.test_secrets import BACKUP_RESTORE_RESTIC_PASSWORD as RESTIC_PASSWORD

from slsbot.adapters.kubernetes.backup_manifests import (
    RUNNER_RULES,
    RUNNER_SERVICE_ACCOUNT,
    SECRETS_ROOT,
    STATE_ROOT,
    WORK_DIR,
)
from slsbot.interfaces.cli import main
from slsbot_runtime.domain.types import Fill, Order, OrderStatus, Side
from slsbot_runtime.persistence.store import StateStore

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("restic") is None, reason="no restic binary: make restic (apt-get install restic)"),
]

NAMESPACE = "trading"
JOB_TOKEN = "backup-job-token"  # the token of the job's ServiceAccount in its kubeconfig: tells its requests apart


def schedule(repository: Path) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "BackupSchedule",
        "metadata": {"name": "hourly"},
        "spec": {"repository": str(repository), "passwordSecretRef": {"name": "restic", "key": "password"}},
    }


def write_state(path: Path) -> None:
    store = StateStore.open(path)
    try:
        store.stage_order(Order("o-1", "BTC/USDT", Side.BUY, 0.01, status=OrderStatus.FILLED, filled_quantity=0.01))
        store.stage_fill(Fill("f-1", "o-1", "BTC/USDT", Side.BUY, 0.01, 100.0, 0.01, "USDT", 1_000))
        store.commit()
    finally:
        store.close()


def job_kubeconfig(path: Path, operator_kubeconfig: Path) -> Path:
    """The operator's kubeconfig with the job's token: what the pod's mounted ServiceAccount token gives it."""
    config = yaml.safe_load(operator_kubeconfig.read_text())
    config["users"][0]["user"]["token"] = JOB_TOKEN
    path.write_text(yaml.safe_dump(config))
    return path


def job_arguments(cronjob: dict[str, Any], tmp: Path, kubeconfig: Path) -> list[str]:
    """The CronJob's container arguments with the pod's paths moved into ``tmp``."""
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    moved = {SECRETS_ROOT: str(tmp / "secrets"), STATE_ROOT: str(tmp / "state"), WORK_DIR: str(tmp / "work")}
    return [moved.get(arg, arg) for arg in container["args"]] + ["--kubeconfig", str(kubeconfig)]


def job_requests(kube) -> list[dict[str, str]]:
    """The job's requests (its token), as RBAC's resource attributes."""
    verbs = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
    found = []
    for request in kube.emulator:
        if request.headers.get("Authorization") != f"Bearer {JOB_TOKEN}" or request.resource is None:
            continue
        if request.resource.plural is None:
            continue  # discovery
        verb = verbs[str(request.method.value)]
        if verb == "get" and request.name is None:
            verb = "list"
        found.append(
            {
                "verb": verb,
                "group": request.resource.group or "",
                "resource": request.resource.plural,
                "subresource": request.subresource or "",
                "namespace": request.namespace or "",
                "name": request.name or "",
            }
        )
    return found


def incidents(listed: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [i for i in (listed or {}).get("items", []) if i["spec"]["rule"] == "BackupFailed"]


async def test_a_cronjob_run_reports_its_result_as_status_event_and_incident(
    kube, start_operator, kubeconfig, tmp_path
) -> None:
    await start_operator(namespaces=[NAMESPACE], incidents_interval_seconds=2.0)
    created = await kube.apply(schedule(tmp_path / "repo"))
    secret = tmp_path / "secrets" / NAMESPACE / "restic"  # the Secret as the pod mounts it
    secret.mkdir(parents=True)
    (secret / "password").write_text(RESTIC_PASSWORD)
    (secret / "password").chmod(0o400)  # as the Secret volume mounts it (defaultMode 0400)
    (tmp_path / "state").mkdir()

    cronjob = await kube.eventually(lambda: kube.get("cronjobs", "slsbot-backup-hourly-backup"), what="the CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == RUNNER_SERVICE_ACCOUNT
    for plural in ("serviceaccounts", "roles", "rolebindings"):
        await kube.eventually(lambda p=plural: kube.get(p, RUNNER_SERVICE_ACCOUNT), what=f"the jobs' {plural}")
    arguments = job_arguments(cronjob, tmp_path, job_kubeconfig(tmp_path / "job-kubeconfig.yaml", kubeconfig))

    # A failing run: no selected Strategy has a state file yet (restic itself ran: it created the repository).
    assert await asyncio.to_thread(main, arguments) == 1
    assert (tmp_path / "repo" / "config").is_file()

    async def last_backup(outcome: str) -> dict[str, Any] | None:
        body = await kube.get("backupschedules", "hourly")
        status = (body or {}).get("status") or {}
        return status if (status.get("lastBackup") or {}).get("outcome") == outcome else None

    status = await kube.eventually(lambda: last_backup("Failed"), what="the failed run in the status")
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "BackupFailed")
    assert "no state to back up" in status["lastBackup"]["message"]
    events = await kube.events("hourly")
    assert [(e["type"], e["reason"]) for e in events] == [("Warning", "BackupFailed")]
    assert events[0]["involvedObject"]["uid"] == created["metadata"]["uid"]

    async def incident(state: str, *, cleared: bool) -> dict[str, Any] | None:
        _, listed = await kube._call("GET", kube.path("incidents"))
        found = incidents(listed)
        assert len(found) <= 1, found
        status = (found[0].get("status") or {}) if found else {}  # created first, its status written next
        if found and status.get("state") == state and bool(status.get("clearSince")) == cleared:
            return found[0]
        return None

    opened = await kube.eventually(lambda: incident("open", cleared=False), what="the BackupFailed incident")
    assert opened["spec"]["severity"] == 2
    assert opened["spec"]["objects"] == ["BackupSchedule/hourly"]
    assert "no state to back up" in opened["spec"]["message"]

    # A passing run: the runtime's state file is there now.
    write_state(tmp_path / "state" / "btc" / "state.db")
    assert await asyncio.to_thread(main, arguments) == 0
    status = await kube.eventually(lambda: last_backup("Succeeded"), what="the passing run in the status")
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "JobsSucceeded")
    assert len(status["lastBackup"]["snapshotIds"]) == 1 and status["lastBackup"]["sizeBytes"] > 0
    reasons = [(e["type"], e["reason"]) for e in await kube.events("hourly")]
    assert reasons == [("Warning", "BackupFailed"), ("Normal", "BackupSucceeded")]
    await kube.eventually(lambda: incident("open", cleared=True), what="the incident cleared")

    # The job's requests: each allowed to its ServiceAccount by the Role the operator made, each rule used.
    requests = job_requests(kube)
    assert requests, "the job made no request with its token"
    user = f"system:serviceaccount:{NAMESPACE}:{RUNNER_SERVICE_ACCOUNT}"
    for attributes in requests:
        review = kube.emulator._access_review({"spec": {"user": user, "groups": [], "resourceAttributes": attributes}})
        assert review["allowed"], f"the jobs' Role does not allow {attributes}"
        assert attributes["namespace"] == NAMESPACE
    used = {
        (a["group"], a["resource"] + (f"/{a['subresource']}" if a["subresource"] else ""), a["verb"]) for a in requests
    }
    granted = {
        (g, r, v) for rule in RUNNER_RULES for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    assert used == granted
