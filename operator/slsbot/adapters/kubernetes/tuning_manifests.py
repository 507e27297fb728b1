"""Pure builders of the Kubernetes objects of a tuning run. No I/O, no client: dicts in, dicts out.

A run's workers are one indexed Job, ``slsbot-tune-<experiment>-r<run>``: ``parallelism`` pods at once, each
running the engine's worker (``python -m slsbot_runtime.tuning.worker``) with its completion index as its
``--worker-index``; each exits 0 once the study is done, so the Job completes when the study does. The Job replaces a
failed pod itself, up to ``backoffLimit`` (one less than the failures that fail the run). The plan is a ConfigMap of
the same name, mounted read-only; the study storage's URL, which may hold a database password, is in a Secret of
the Experiment's own (``slsbot-tune-<experiment>-storage``, immutable, replaced when the URL changes, never
patched) that the container reads as ``SLSBOT_STUDY_STORAGE``: never in the Job, the ConfigMap or the status.

Every object is owned by the Experiment (``ownerReferences`` with ``controller: true``): the garbage collector
removes them with it. The pods run as the runtime does: non-root, read-only root file system, no service account
token, the tuned Strategy's image and resources.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from slsbot.api import API_VERSION
from slsbot.domain.tuning_plan import LABEL_EXPERIMENT, LABEL_RUN, TuningRun

Manifest = dict[str, Any]

TUNING_PREFIX = "slsbot-tune-"
MANAGED_BY = "slsbot-operator"
ANNOTATION_STUDY = "slsbot.io/study"
LABEL_STORAGE = "slsbot.io/storage"  # on the storage Secret: a fingerprint of the URL it holds
STORAGE_SECRET_SUFFIX = "-storage"  # noqa: S105 - a name, not a secret
STORAGE_SECRET_KEY = "url"  # noqa: S105
STORAGE_ENV = "SLSBOT_STUDY_STORAGE"
PLAN_DIR = "/etc/slsbot-tuning"
PLAN_FILE = "plan.json"
PLAN_PATH = f"{PLAN_DIR}/{PLAN_FILE}"
CONTAINER = "worker"
WORKER_COMMAND = ["python", "-m", "slsbot_runtime.tuning.worker"]
RUNTIME_USER = 10001
_MAX_NAME = 63


def tuning_object_name(experiment: str, run: int | None = None, suffix: str = "") -> str:
    """``slsbot-tune-<experiment>[-r<run>]<suffix>``, shortened with a hash to a DNS label's 63 characters."""
    name = f"{TUNING_PREFIX}{experiment}" + (f"-r{run}" if run is not None else "") + suffix
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def storage_secret_name(experiment: str) -> str:
    return tuning_object_name(experiment, suffix=STORAGE_SECRET_SUFFIX)


def storage_fingerprint(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def owner_reference(experiment: str, uid: str) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "name": experiment,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def tuning_labels(run: TuningRun) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "slsbot-tuning-worker",
        "app.kubernetes.io/instance": run.experiment,
        "app.kubernetes.io/component": "tuning",
        "app.kubernetes.io/part-of": "slsbot",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_EXPERIMENT: run.experiment,
        LABEL_RUN: str(run.run),
    }


def _metadata(run: TuningRun, name: str, owner_uid: str) -> Manifest:
    return {
        "name": name,
        "namespace": run.namespace,
        "labels": tuning_labels(run),
        "annotations": {ANNOTATION_STUDY: run.study},
        "ownerReferences": [owner_reference(run.experiment, owner_uid)],
    }


def build_tuning_plan_configmap(run: TuningRun, *, owner_uid: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(run, tuning_object_name(run.experiment, run.run), owner_uid),
        "data": {PLAN_FILE: json.dumps(run.plan, indent=1, sort_keys=True)},
    }


def build_tuning_storage_secret(run: TuningRun, storage_url: str, *, owner_uid: str) -> Manifest:
    """The Secret holding the study storage's URL, owned by the Experiment, immutable, labelled with the URL's
    fingerprint. Never log or return this manifest."""
    meta = _metadata(run, storage_secret_name(run.experiment), owner_uid)
    del meta["annotations"]
    meta["labels"] = {**meta["labels"], LABEL_STORAGE: storage_fingerprint(storage_url)}
    del meta["labels"][LABEL_RUN]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "immutable": True,
        "data": {STORAGE_SECRET_KEY: base64.b64encode(storage_url.encode()).decode()},
    }


def build_tuning_job(run: TuningRun, *, owner_uid: str, worker_failures: int) -> Manifest:
    """The run's workers: an indexed Job of ``run.parallelism`` pods, ``backoffLimit`` one less than the
    failures that fail the run (the Job gives up exactly when the controller would)."""
    name = tuning_object_name(run.experiment, run.run)
    labels = tuning_labels(run)
    runtime = run.runtime
    container: Manifest = {
        "name": CONTAINER,
        "image": runtime.image,
        "imagePullPolicy": runtime.image_pull_policy,
        "command": list(WORKER_COMMAND),
        "args": [
            "--plan",
            PLAN_PATH,
            "--storage",
            f"$({STORAGE_ENV})",
            "--study",
            run.study,
            "--worker-index",
            "$(JOB_COMPLETION_INDEX)",
        ],
        "env": [
            {"name": "PYTHONUNBUFFERED", "value": "1"},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            {
                "name": STORAGE_ENV,
                "valueFrom": {"secretKeyRef": {"name": storage_secret_name(run.experiment), "key": STORAGE_SECRET_KEY}},
            },
        ],
        "resources": runtime.resources.to_wire(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "plan", "mountPath": PLAN_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir, not a shared /tmp
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(run, name, owner_uid),
        "spec": {
            "completionMode": "Indexed",
            "completions": run.parallelism,
            "parallelism": run.parallelism,
            "backoffLimit": max(worker_failures - 1, 0),
            "template": {
                "metadata": {"labels": labels, "annotations": {ANNOTATION_STUDY: run.study}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUNTIME_USER,
                        "runAsGroup": RUNTIME_USER,
                        "fsGroup": RUNTIME_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "plan", "configMap": {"name": name, "items": [{"key": PLAN_FILE, "path": PLAN_FILE}]}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
