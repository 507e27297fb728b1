"""Pure builders of a BackupSchedule's CronJobs: one per job kind (backup, check, prune, drill) in the schedule's
namespace, each running ``slsbot backup run --job <kind>`` (the command ``slsbot up``'s scheduler runs, the same code
path) and exiting. No I/O, no client: dicts in, dicts out; the operator applies them and deletes the ones a changed
schedule no longer builds.

- Named ``slsbot-backup-<schedule>-<kind>`` (shortened with a digest past 52 characters, CronJob's limit), labelled
  with the schedule and the kind, owned by the BackupSchedule (``ownerReferences``), so deleting it removes them.
- ``concurrencyPolicy: Forbid`` (a run never overlaps the previous one on the same repository), a
  ``startingDeadlineSeconds`` so a missed run still starts late rather than never, and history limits.
- The schedule itself is an argument (``--schedule-json``); the repository password and the backend's environment
  are Secrets mounted read-only under ``/var/run/slsbot/secrets/<namespace>/<secret>/`` (0400), the layout ``slsbot
  backup run --secrets-dir`` reads: never an environment variable listed by ``kubectl describe``, never an argument.
- Backup jobs mount each selected runtime's state claim read-only at ``/state/<strategy>/``. The claims are
  ReadWriteOnce: the job pod must run on the node of the runtime's pod, which a ``podAffinity`` on the strategy
  label asks for (one node for all the selected runtimes: schedule one BackupSchedule per node group otherwise).
  Check, prune and drill mount no state.
- Each job's pod runs as the ServiceAccount ``slsbot-backup`` of its namespace, which ``build_backup_rbac`` grants
  exactly what ``slsbot backup run --kubernetes`` does with it (``RUNNER_RULES``): read its schedule, write the
  schedule's status, post an Event. The operator applies the three objects with the CronJobs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from slsbot.api import API_VERSION, BackupSchedule
from slsbot.api.backup import BackupJobKind
from slsbot.domain.backup_plan import cron_of

Manifest = dict[str, object]

BACKUP_PREFIX = "slsbot-backup-"
LABEL_SCHEDULE = "slsbot.io/backup-schedule"
LABEL_JOB = "slsbot.io/backup-job"
LABEL_STRATEGY = "slsbot.io/strategy"
MANAGED_BY = "slsbot-operator"
SECRETS_ROOT = "/var/run/slsbot/secrets"
STATE_ROOT = "/state"
WORK_DIR = "/var/lib/slsbot"
CRONJOB_NAME_LIMIT = 52  # a CronJob's name, so that its Jobs' generated names fit in 63 characters
STARTING_DEADLINE_SECONDS = 3600
RUNNER_USER = 10001
RUNNER_SERVICE_ACCOUNT = "slsbot-backup"  # with its Role and RoleBinding, one of each per namespace
RBAC_GROUP = "rbac.authorization.k8s.io"
#: What a backup job's pod does on the API, and nothing more: read its schedule (the status it adds to, the uid its
#: Event names), write the schedule's status, post the Event. No Secrets (they are mounted), no Incidents (the
#: operator opens them from the status), no list or watch.
RUNNER_RULES: list[Manifest] = [
    {"apiGroups": ["slsbot.io"], "resources": ["backupschedules"], "verbs": ["get"]},
    {"apiGroups": ["slsbot.io"], "resources": ["backupschedules/status"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]


@dataclass(frozen=True, slots=True)
class BackedUpRuntime:
    """A runtime whose state a backup job copies: its Strategy, account and state claim."""

    strategy: str
    account: str
    claim: str  # the PersistentVolumeClaim's name (slsbot-runtime-<strategy>)


def cronjob_name(schedule: str, job: BackupJobKind | str) -> str:
    name = f"{BACKUP_PREFIX}{schedule}-{BackupJobKind(job).value}"
    if len(name) <= CRONJOB_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: CRONJOB_NAME_LIMIT - 9].rstrip('-')}-{digest}"


def schedule_argument(schedule: BackupSchedule) -> Manifest:
    """The schedule as the job needs it: its name, namespace, uid, labels and spec. Not its status, resourceVersion,
    annotations or managed fields, which change with every result written (the CronJobs would be patched each time)."""
    meta = schedule.metadata
    return {
        "apiVersion": API_VERSION,
        "kind": "BackupSchedule",
        "metadata": {
            "name": meta.name,
            "namespace": meta.namespace,
            **({"uid": meta.uid} if meta.uid else {}),
            **({"labels": dict(meta.labels)} if meta.labels else {}),
        },
        "spec": schedule.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def _secret_volume(volume: str, secret: str) -> Manifest:
    return {"name": volume, "secret": {"secretName": secret, "defaultMode": 0o400}}


def build_backup_cronjob(
    schedule: BackupSchedule,
    job: BackupJobKind | str,
    *,
    image: str,
    runtimes: Sequence[BackedUpRuntime] = (),
) -> Manifest:
    job = BackupJobKind(job)
    namespace = schedule.namespace
    spec = schedule.spec
    schedule_json = json.dumps(schedule_argument(schedule), sort_keys=True)
    arguments = [
        "backup",
        "run",
        "--job",
        job.value,
        "--schedule-json",
        schedule_json,
        "--secrets-dir",
        SECRETS_ROOT,
        "--state-dir",
        WORK_DIR,
        "--kubernetes",  # the result goes into the schedule's status and an Event (adapters.kubernetes.backup_results)
    ]
    volumes: list[Manifest] = [
        _secret_volume("restic-password", spec.password_secret_ref.name),
        {"name": "work", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[Manifest] = [
        {
            "name": "restic-password",
            "mountPath": f"{SECRETS_ROOT}/{namespace}/{spec.password_secret_ref.name}",
            "readOnly": True,
        },
        {"name": "work", "mountPath": WORK_DIR},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
    ]
    if spec.environment_secret_ref is not None and spec.environment_secret_ref.name != spec.password_secret_ref.name:
        volumes.append(_secret_volume("restic-environment", spec.environment_secret_ref.name))
        mounts.append(
            {
                "name": "restic-environment",
                "mountPath": f"{SECRETS_ROOT}/{namespace}/{spec.environment_secret_ref.name}",
                "readOnly": True,
            }
        )
    pod: Manifest = {}
    if job is BackupJobKind.BACKUP:
        arguments += ["--state-root", STATE_ROOT]
        for index, runtime in enumerate(sorted(runtimes, key=lambda r: r.strategy)):
            volumes.append(
                {"name": f"state-{index}", "persistentVolumeClaim": {"claimName": runtime.claim, "readOnly": True}}
            )
            mounts.append({"name": f"state-{index}", "mountPath": f"{STATE_ROOT}/{runtime.strategy}", "readOnly": True})
            arguments += ["--account-of", f"{runtime.strategy}={runtime.account}"]
        if runtimes:
            pod["affinity"] = {
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {
                                "matchExpressions": [
                                    {
                                        "key": LABEL_STRATEGY,
                                        "operator": "In",
                                        "values": sorted(r.strategy for r in runtimes),
                                    }
                                ]
                            },
                            "topologyKey": "kubernetes.io/hostname",
                        }
                    ]
                }
            }
    labels = {
        "app.kubernetes.io/name": "slsbot-backup",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_SCHEDULE: schedule.name,
        LABEL_JOB: job.value,
    }
    owner = {
        "apiVersion": API_VERSION,
        "kind": "BackupSchedule",
        "name": schedule.name,
        "uid": schedule.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    container: Manifest = {
        "name": "backup",
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
        "kind": "CronJob",
        "metadata": {
            "name": cronjob_name(schedule.name, job),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": {
            "schedule": cron_of(spec, job),
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 0,  # a failed run is a result (its incident), retried at the next firing
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            **pod,
                            "serviceAccountName": RUNNER_SERVICE_ACCOUNT,
                            "automountServiceAccountToken": True,
                            "restartPolicy": "Never",
                            "securityContext": {"fsGroup": RUNNER_USER},
                            "containers": [container],
                            "volumes": volumes,
                        },
                    },
                },
            },
        },
    }


def build_backup_cronjobs(
    schedule: BackupSchedule, *, image: str, runtimes: Sequence[BackedUpRuntime] = ()
) -> list[Manifest]:
    """The four CronJobs of ``schedule``, backup first."""
    return [build_backup_cronjob(schedule, job, image=image, runtimes=runtimes) for job in BackupJobKind]


def build_backup_rbac(namespace: str) -> list[Manifest]:
    """The ServiceAccount the backup jobs of ``namespace`` run as, its Role (``RUNNER_RULES``) and the RoleBinding
    between them; shared by every BackupSchedule of the namespace, so owned by none (they stay when the last schedule
    goes, granting nothing a pod could use without a schedule to write to)."""
    labels = {"app.kubernetes.io/name": "slsbot-backup", "app.kubernetes.io/managed-by": MANAGED_BY}
    meta = {"name": RUNNER_SERVICE_ACCOUNT, "namespace": namespace, "labels": labels}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "Role", "metadata": dict(meta), "rules": RUNNER_RULES},
        {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "RoleBinding",
            "metadata": dict(meta),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": RUNNER_SERVICE_ACCOUNT},
            "subjects": [{"kind": "ServiceAccount", "name": RUNNER_SERVICE_ACCOUNT, "namespace": namespace}],
        },
    ]
