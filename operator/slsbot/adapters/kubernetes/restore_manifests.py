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

import json

from slsbot.adapters.kubernetes.backup_manifests import WORK_DIR, restic_secret_files, schedule_argument
from slsbot.adapters.kubernetes.job_pods import (
    JOB_NAME_LIMIT,
    MANAGED_BY,
    SECRETS_ROOT,
    TMP_DIR,
    Manifest,
    claim,
    empty_dir,
    runner_container,
    runner_pod,
    shortened_name,
    volumes_and_mounts,
)
from slsbot.adapters.kubernetes.manifests import LABEL_STRATEGY, owner_reference, runtime_object_name
from slsbot.api import BackupSchedule

RESTORE_PREFIX = "slsbot-restore-"
RESTORE_STATE_DIR = "/state"
RESTORE_STATE_FILE = f"{RESTORE_STATE_DIR}/state.db"  # the runtime's STATE_PATH, on the same claim
ACTIVE_DEADLINE_SECONDS = 3600
TTL_SECONDS_AFTER_FINISHED = 7 * 24 * 3600  # its log says what was restored: kept a week


def restore_job_name(strategy: str, stamp: str) -> str:
    return shortened_name(f"{RESTORE_PREFIX}{strategy}-{stamp}", JOB_NAME_LIMIT)


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
    volumes, mounts = volumes_and_mounts(
        [
            claim("state", runtime_object_name(strategy), RESTORE_STATE_DIR, read_only=False),
            empty_dir("work", WORK_DIR),
            empty_dir("tmp", TMP_DIR),
            *restic_secret_files(namespace, schedule.spec),
        ]
    )
    labels = {
        "app.kubernetes.io/name": "slsbot-restore",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_STRATEGY: strategy,
    }
    container = runner_container("restore", image=image, arguments=arguments, mounts=mounts)
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
                "spec": runner_pod(container, volumes, automount_token=False),
            },
        },
    }
