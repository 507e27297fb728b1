"""The restore Job, built without a cluster: the runtime's claim read-write, the Secrets as files, no API token, one
try, and a command ``slsbot restore`` parses in its file mode."""

from __future__ import annotations

import argparse
import json

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
