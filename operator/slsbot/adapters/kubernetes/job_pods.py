"""Pure builders of what the pods that run one ``slsbot`` command to completion share: the backup CronJobs
(``backup_manifests``), the daily report CronJob (``report_manifests``) and the restore Job (``restore_manifests``).
No I/O: dicts in, dicts out.

- The container runs as ``RUNNER_USER``, not root, with a read-only root filesystem, no privilege escalation and
  no capabilities; the pod's ``fsGroup`` is the same user, so it can read the files of the volumes it mounts.
- A Secret is mounted read-only as files (0400) under ``SECRETS_ROOT/<namespace>/<secret>/``, the layout
  ``--secrets-dir`` reads: never an environment variable listed by ``kubectl describe``, never an argument.
- A runtime's state claim is mounted at ``STATE_ROOT/<strategy>/`` where ``--state-root`` reads it. The claims are
  ReadWriteOnce: a pod that mounts some must run on the node of the runtimes' pods, which ``same_node_affinity``
  asks for.
- A CronJob (``run_once_cronjob``) never overlaps its previous run, still starts late after a missed one, keeps a
  short history, and does not retry a failed run (its next firing does).

A pod's volume and the container's mount of it are built together, as a ``Volume`` pair; ``volumes_and_mounts``
splits a list of them into the pod's ``volumes`` and the container's ``volumeMounts``, in the same order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from slsbot.api import API_VERSION

Manifest = dict[str, object]
#: A pod's volume and the container's mount of it.
Volume = tuple[Manifest, Manifest]

MANAGED_BY = "slsbot-operator"
RUNNER_USER = 10001
SECRETS_ROOT = "/var/run/slsbot/secrets"
STATE_ROOT = "/state"
TMP_DIR = "/tmp"  # noqa: S108 - a private emptyDir (the root filesystem is read-only)
CRONJOB_NAME_LIMIT = 52  # a CronJob's name, so that its Jobs' generated names fit in 63 characters
JOB_NAME_LIMIT = 63
STARTING_DEADLINE_SECONDS = 3600


def shortened_name(name: str, limit: int) -> str:
    """``name``, or past ``limit`` characters its head and a digest of the whole (so two long names stay apart)."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def controller_reference(kind: str, name: str, uid: str | None) -> Manifest:
    """The owner reference of an object ``kind``/``name`` of slsbot's API group controls: deleting it deletes ours."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def empty_dir(name: str, path: str) -> Volume:
    return {"name": name, "emptyDir": {}}, {"name": name, "mountPath": path}


def secret_files(namespace: str, name: str, secret: str) -> Volume:
    """``secret`` mounted read-only, one file per key (0400), at ``SECRETS_ROOT/<namespace>/<secret>``."""
    return (
        {"name": name, "secret": {"secretName": secret, "defaultMode": 0o400}},
        {"name": name, "mountPath": f"{SECRETS_ROOT}/{namespace}/{secret}", "readOnly": True},
    )


def claim(name: str, claim_name: str, path: str, *, read_only: bool) -> Volume:
    """The PersistentVolumeClaim ``claim_name`` mounted at ``path``."""
    if not read_only:
        return (
            {"name": name, "persistentVolumeClaim": {"claimName": claim_name}},
            {"name": name, "mountPath": path},
        )
    return (
        {"name": name, "persistentVolumeClaim": {"claimName": claim_name, "readOnly": True}},
        {"name": name, "mountPath": path, "readOnly": True},
    )


def state_claims(claims: Iterable[tuple[str, str]]) -> list[Volume]:
    """Each ``(strategy, claim)``'s claim mounted read-only at ``STATE_ROOT/<strategy>``, named ``state-<index>`` in
    the order given."""
    return [
        claim(f"state-{index}", claim_name, f"{STATE_ROOT}/{strategy}", read_only=True)
        for index, (strategy, claim_name) in enumerate(claims)
    ]


def volumes_and_mounts(volumes: Iterable[Volume]) -> tuple[list[Manifest], list[Manifest]]:
    """The pod's ``volumes`` and the container's ``volumeMounts``, in the order of ``volumes``."""
    pairs = list(volumes)
    return [volume for volume, _ in pairs], [mount for _, mount in pairs]


def same_node_affinity(label: str, values: Sequence[str]) -> Manifest:
    """Run on the node of a pod whose ``label`` is one of ``values`` (the pods whose ReadWriteOnce claims we mount)."""
    return {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchExpressions": [{"key": label, "operator": "In", "values": list(values)}]},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }


def runner_container(
    name: str, *, image: str, arguments: list[str], mounts: list[Manifest], env: list[Manifest] | None = None
) -> Manifest:
    """The one container of the pod: ``slsbot <arguments>`` (the image's entrypoint) as ``RUNNER_USER``."""
    return {
        "name": name,
        "image": image,
        "args": arguments,
        **({"env": env} if env else {}),
        "volumeMounts": mounts,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNNER_USER,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def runner_pod(
    container: Manifest,
    volumes: list[Manifest],
    *,
    service_account: str | None = None,
    automount_token: bool | None = None,
    affinity: Manifest | None = None,
) -> Manifest:
    """The pod spec that runs ``container`` once (``restartPolicy: Never``) with ``volumes``; as ``service_account``
    if given, with its token mounted or not as ``automount_token`` says (the ServiceAccount's own setting if None)."""
    return {
        **({"affinity": affinity} if affinity else {}),
        **({"serviceAccountName": service_account} if service_account else {}),
        **({"automountServiceAccountToken": automount_token} if automount_token is not None else {}),
        "restartPolicy": "Never",
        "securityContext": {"fsGroup": RUNNER_USER},
        "containers": [container],
        "volumes": volumes,
    }


def run_once_cronjob(
    *,
    name: str,
    namespace: str,
    labels: dict[str, str],
    owner: Manifest,
    schedule: str,
    pod: Manifest,
) -> Manifest:
    """A CronJob running ``pod`` on ``schedule`` (UTC): never two runs at once, a missed run still started within
    ``STARTING_DEADLINE_SECONDS``, three runs of each outcome kept, no retry of a failed run."""
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "ownerReferences": [owner]},
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 0,
                    "template": {"metadata": {"labels": labels}, "spec": pod},
                },
            },
        },
    }
