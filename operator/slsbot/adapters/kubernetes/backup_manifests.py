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

import json
from collections.abc import Sequence
from dataclasses import dataclass

from slsbot.adapters.kubernetes.job_pods import (
    CRONJOB_NAME_LIMIT,
    MANAGED_BY,
    SECRETS_ROOT,
    STATE_ROOT,
    TMP_DIR,
    Manifest,
    Volume,
    controller_reference,
    empty_dir,
    run_once_cronjob,
    runner_container,
    runner_pod,
    same_node_affinity,
    secret_files,
    shortened_name,
    state_claims,
    volumes_and_mounts,
)
from slsbot.api import API_VERSION, BackupSchedule
from slsbot.api.backup import BackupJobKind, BackupScheduleSpec
from slsbot.domain.admission import BACKUP_SERVICE_ACCOUNT
from slsbot.domain.backup_plan import cron_of

BACKUP_PREFIX = "slsbot-backup-"
LABEL_SCHEDULE = "slsbot.io/backup-schedule"
LABEL_JOB = "slsbot.io/backup-job"
LABEL_STRATEGY = "slsbot.io/strategy"
WORK_DIR = "/var/lib/slsbot"
RUNNER_SERVICE_ACCOUNT = BACKUP_SERVICE_ACCOUNT  # with its Role and RoleBinding, one of each per namespace
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
    return shortened_name(f"{BACKUP_PREFIX}{schedule}-{BackupJobKind(job).value}", CRONJOB_NAME_LIMIT)


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


def restic_secret_files(namespace: str, spec: BackupScheduleSpec) -> list[Volume]:
    """The repository's Secrets as files: its password, and its backend's environment when that is another Secret."""
    files = [secret_files(namespace, "restic-password", spec.password_secret_ref.name)]
    if spec.environment_secret_ref is not None and spec.environment_secret_ref.name != spec.password_secret_ref.name:
        files.append(secret_files(namespace, "restic-environment", spec.environment_secret_ref.name))
    return files


def build_backup_cronjob(
    schedule: BackupSchedule,
    job: BackupJobKind | str,
    *,
    image: str,
    runtimes: Sequence[BackedUpRuntime] = (),
) -> Manifest:
    job = BackupJobKind(job)
    namespace = schedule.namespace
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
    password, *environment = restic_secret_files(namespace, schedule.spec)
    volumes = [password, empty_dir("work", WORK_DIR), empty_dir("tmp", TMP_DIR), *environment]
    affinity = None
    if job is BackupJobKind.BACKUP:
        backed_up = sorted(runtimes, key=lambda r: r.strategy)
        arguments += ["--state-root", STATE_ROOT]
        arguments += [argument for r in backed_up for argument in ("--account-of", f"{r.strategy}={r.account}")]
        volumes += state_claims((r.strategy, r.claim) for r in backed_up)
        if backed_up:
            affinity = same_node_affinity(LABEL_STRATEGY, [r.strategy for r in backed_up])
    pod_volumes, mounts = volumes_and_mounts(volumes)
    labels = {
        "app.kubernetes.io/name": "slsbot-backup",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_SCHEDULE: schedule.name,
        LABEL_JOB: job.value,
    }
    container = runner_container("backup", image=image, arguments=arguments, mounts=mounts)
    return run_once_cronjob(
        name=cronjob_name(schedule.name, job),
        namespace=namespace,
        labels=labels,
        owner=controller_reference("BackupSchedule", schedule.name, schedule.metadata.uid),
        schedule=cron_of(schedule.spec, job),  # a failed run is a result (its incident), retried at the next firing
        pod=runner_pod(
            container,
            pod_volumes,
            service_account=RUNNER_SERVICE_ACCOUNT,
            automount_token=True,
            affinity=affinity,
        ),
    )


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
