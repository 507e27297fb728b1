"""Pure builder of the Job that puts a Strategy's state file back from a restic snapshot on a cluster (``slsbot restore
--kubernetes`` creates it, ``adapters.kubernetes.restore`` follows it). No I/O: dicts in, dicts out.

The Job runs ``slsbot restore`` in its file mode (``--state-file``): the same ``services.backups.restore_state`` as
``slsbot restore`` locally (restored into a scratch folder beside the file, checked, the old file kept aside, the copy
renamed into place). It mounts the runtime's state claim read-write at ``/state`` (the runtime is scaled to 0
first, so the ReadWriteOnce claim is free), and the repository's Secrets read-only as files (0400), as the backup
CronJobs do. It needs nothing from the API: no ServiceAccount token is mounted. One try (``backoffLimit: 0``): a
refused restore changes nothing and is not tried again by itself.
"""

from __future__ import annotations

import hashlib
import json

from slsbot.adapters.kubernetes.backup_manifests import (
    MANAGED_BY,
    RUNNER_USER,
    SECRETS_ROOT,
    WORK_DIR,
    Manifest,
    schedule_argument,
)
from slsbot.adapters.kubernetes.manifests import LABEL_STRATEGY, RUNTIME_PREFIX, owner_reference
from slsbot.api import BackupSchedule

RESTORE_PREFIX = "slsbot-restore-"
RESTORE_STATE_DIR = "/state"
RESTORE_STATE_FILE = f"{RESTORE_STATE_DIR}/state.db"  # the runtime's STATE_PATH, on the same claim
JOB_NAME_LIMIT = 63
ACTIVE_DEADLINE_SECONDS = 3600
TTL_SECONDS_AFTER_FINISHED = 7 * 24 * 3600  # its log says what was restored: kept a week


def restore_job_name(strategy: str, stamp: str) -> str:
    name = f"{RESTORE_PREFIX}{strategy}-{stamp}"
    if len(name) <= JOB_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: JOB_NAME_LIMIT - 9].rstrip('-')}-{digest}"


def build_restore_job(
    schedule: BackupSchedule,
    *,
    strategy: str,
    strategy_uid: str,
    snapshot: str,
    image: str,
    stamp: str,
) -> Manifest:
    """The Job restoring ``strategy``'s state from ``snapshot`` (an id, its prefix, or ``latest``) of ``schedule``'s
    repository; ``stamp`` (UTC, e.g. 20260302t100000z) makes its name unique. Owned by the Strategy."""
    namespace = schedule.namespace
    spec = schedule.spec
    arguments = [
        "restore",
        "--namespace",
        namespace,
        "--strategy",
        strategy,
        "--snapshot",
        snapshot,
        "--schedule-json",
        json.dumps(schedule_argument(schedule), sort_keys=True),
        "--secrets-dir",
        SECRETS_ROOT,
        "--state-dir",
        WORK_DIR,
        "--state-file",
        RESTORE_STATE_FILE,
    ]
    secrets = [(spec.password_secret_ref.name, "restic-password")]
    if spec.environment_secret_ref is not None and spec.environment_secret_ref.name != spec.password_secret_ref.name:
        secrets.append((spec.environment_secret_ref.name, "restic-environment"))
    volumes: list[Manifest] = [
        {"name": "state", "persistentVolumeClaim": {"claimName": f"{RUNTIME_PREFIX}{strategy}"}},
        {"name": "work", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[Manifest] = [
        {"name": "state", "mountPath": RESTORE_STATE_DIR},
        {"name": "work", "mountPath": WORK_DIR},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
    ]
    for secret, volume in secrets:
        volumes.append({"name": volume, "secret": {"secretName": secret, "defaultMode": 0o400}})
        mounts.append({"name": volume, "mountPath": f"{SECRETS_ROOT}/{namespace}/{secret}", "readOnly": True})
    labels = {
        "app.kubernetes.io/name": "slsbot-restore",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_STRATEGY: strategy,
    }
    container: Manifest = {
        "name": "restore",
        "image": image,
        "args": arguments,
        "volumeMounts": mounts,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNNER_USER,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": restore_job_name(strategy, stamp),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(strategy, strategy_uid)],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": TTL_SECONDS_AFTER_FINISHED,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {"fsGroup": RUNNER_USER},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
