"""The restore Job, built without a cluster: the runtime's claim read-write, the Secrets as files, no API token, one
try, and a command ``slsbot restore`` parses in its file mode."""

from __future__ import annotations

import argparse
import json

from slsbot.adapters.kubernetes.manifests import runtime_object_name
from slsbot.adapters.kubernetes.restore_manifests import JOB_NAME_LIMIT, build_restore_job, restore_job_name
from slsbot.api import BackupSchedule
from slsbot.interfaces.commands.restore import add_arguments

SCHEDULE = BackupSchedule.model_validate(
    {
        "metadata": {"name": "hourly", "namespace": "trading", "uid": "u-1"},
        "spec": {
            "repository": "s3:s3.example/bucket/slsbot",
            "passwordSecretRef": {"name": "restic", "key": "password"},
            "environmentSecretRef": {"name": "restic-s3"},
        },
    }
)


def job() -> dict:
    return build_restore_job(
        SCHEDULE, strategy="btc", strategy_uid="s-1", snapshot="3a02dd65", image="img:1", stamp="20260302t100000z"
    )


def test_the_job_mounts_the_runtime_claim_read_write_and_the_secrets_read_only() -> None:
    body = job()
    pod = body["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["state"] == {"name": "state", "persistentVolumeClaim": {"claimName": "slsbot-runtime-btc"}}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["state"]["mountPath"] == "/state" and not mounts["state"].get("readOnly")
    for name, secret in (("restic-password", "restic"), ("restic-environment", "restic-s3")):
        assert volumes[name]["secret"] == {"secretName": secret, "defaultMode": 0o400}
        assert mounts[name]["readOnly"] is True
    assert "env" not in pod["containers"][0] and "envFrom" not in pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    assert body["spec"]["backoffLimit"] == 0
    owner = body["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Strategy", "btc", "s-1")


def test_the_command_is_slsbot_restore_in_its_file_mode() -> None:
    container = job()["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "restore"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(container["args"][1:])
    assert (args.namespace, args.strategy, args.snapshot) == ("trading", "btc", "3a02dd65")
    assert str(args.state_file) == "/state/state.db" and not args.kubernetes
    assert BackupSchedule.model_validate(json.loads(args.schedule_json)).spec == SCHEDULE.spec


def test_long_names_fit_a_job() -> None:
    name = restore_job_name("a" * 63, "20260302t100000z")
    assert len(name) <= JOB_NAME_LIMIT and name.startswith("slsbot-restore-")


def test_a_long_strategy_name_mounts_the_claim_its_runtime_has() -> None:
    """The runtime's claim is named by runtime_object_name (a hash past 63 characters), not by the prefix + name."""
    strategy = "b" * 60
    body = build_restore_job(
        SCHEDULE, strategy=strategy, strategy_uid="s-1", snapshot="latest", image="img:1", stamp="20260302t100000z"
    )
    volumes = {v["name"]: v for v in body["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == runtime_object_name(strategy)
    assert len(runtime_object_name(strategy)) <= 63


def test_the_job_is_exactly_this() -> None:
    """The whole manifest, field by field: a change to the Job the restore creates shows here first."""
    schedule_json = json.dumps(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "BackupSchedule",
            "metadata": {"name": "hourly", "namespace": "trading", "uid": "u-1"},
            "spec": {
                "backup": {"schedule": "0 * * * *"},
                "check": {"schedule": "30 3 * * *"},
                "environmentSecretRef": {"name": "restic-s3"},
                "includeControlPlane": True,
                "passwordSecretRef": {"key": "password", "name": "restic"},
                "prune": {
                    "keepDaily": 7,
                    "keepHourly": 24,
                    "keepMonthly": 6,
                    "keepWeekly": 4,
                    "schedule": "15 4 * * *",
                },
                "repository": "s3:s3.example/bucket/slsbot",
                "restoreDrill": {"schedule": "0 5 * * 0"},
                "selector": {"matchLabels": {}},
            },
        },
        sort_keys=True,
    )
    labels = {
        "app.kubernetes.io/name": "slsbot-restore",
        "app.kubernetes.io/managed-by": "slsbot-operator",
        "slsbot.io/strategy": "btc",
    }
    container = {
        "name": "restore",
        "image": "img:1",
        "args": [
            "restore",
            "--namespace",
            "trading",
            "--strategy",
            "btc",
            "--snapshot",
            "3a02dd65",
            "--schedule-json",
            schedule_json,
            "--secrets-dir",
            "/var/run/slsbot/secrets",
            "--state-dir",
            "/var/lib/slsbot",
            "--state-file",
            "/state/state.db",
        ],
        "volumeMounts": [
            {"name": "state", "mountPath": "/state"},
            {"name": "work", "mountPath": "/var/lib/slsbot"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "restic-password", "mountPath": "/var/run/slsbot/secrets/trading/restic", "readOnly": True},
            {"name": "restic-environment", "mountPath": "/var/run/slsbot/secrets/trading/restic-s3", "readOnly": True},
        ],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    assert job() == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "slsbot-restore-btc-20260302t100000z",
            "namespace": "trading",
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "slsbot.io/v1alpha1",
                    "kind": "Strategy",
                    "name": "btc",
                    "uid": "s-1",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 3600,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {"fsGroup": 10001},
                    "containers": [container],
                    "volumes": [
                        {"name": "state", "persistentVolumeClaim": {"claimName": "slsbot-runtime-btc"}},
                        {"name": "work", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                        {"name": "restic-password", "secret": {"secretName": "restic", "defaultMode": 0o400}},
                        {"name": "restic-environment", "secret": {"secretName": "restic-s3", "defaultMode": 0o400}},
                    ],
                },
            },
        },
    }
