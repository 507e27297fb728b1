"""The CronJobs of a BackupSchedule, built without a cluster."""

from __future__ import annotations

import json

from slsbot.adapters.kubernetes.backup_manifests import (
    CRONJOB_NAME_LIMIT,
    RUNNER_SERVICE_ACCOUNT,
    BackedUpRuntime,
    build_backup_cronjobs,
    build_backup_rbac,
    cronjob_name,
)
from slsbot.api import BackupSchedule
from slsbot.interfaces.commands.backup import add_arguments

SCHEDULE = BackupSchedule.model_validate(
    {
        "metadata": {"name": "nightly", "namespace": "trading", "uid": "u-1"},
        "spec": {
            "repository": "s3:s3.example/bucket/slsbot",
            "passwordSecretRef": {"name": "restic", "key": "password"},
            "environmentSecretRef": {"name": "restic-s3"},
            "restoreDrill": {"schedule": "0 6 * * 0"},
        },
    }
)
RUNTIMES = [
    BackedUpRuntime("eth", "bybit", "slsbot-runtime-eth"),
    BackedUpRuntime("btc", "binance", "slsbot-runtime-btc"),
]


def by_job(manifests: list[dict]) -> dict[str, dict]:
    return {m["metadata"]["labels"]["slsbot.io/backup-job"]: m for m in manifests}


def test_one_cronjob_per_job_kind_on_its_schedule_owned_by_the_schedule() -> None:
    jobs = by_job(build_backup_cronjobs(SCHEDULE, image="ghcr.io/slsbot/runtime:1", runtimes=RUNTIMES))
    assert sorted(jobs) == ["backup", "check", "drill", "prune"]
    assert jobs["backup"]["spec"]["schedule"] == "0 * * * *"
    assert jobs["drill"]["spec"]["schedule"] == "0 6 * * 0"
    for job in jobs.values():
        assert job["metadata"]["namespace"] == "trading"
        assert job["metadata"]["ownerReferences"][0]["kind"] == "BackupSchedule"
        assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        assert job["spec"]["timeZone"] == "Etc/UTC"


def test_the_command_is_slsbot_backup_run_and_parses() -> None:
    """The container's arguments are what ``slsbot backup run`` accepts, with the schedule as JSON."""
    import argparse

    jobs = by_job(build_backup_cronjobs(SCHEDULE, image="img", runtimes=RUNTIMES))
    container = jobs["backup"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(container["args"][1:])
    assert (args.action, args.job) == ("run", "backup")
    assert BackupSchedule.model_validate(json.loads(args.schedule_json)).spec == SCHEDULE.spec
    assert args.account_of == ["btc=binance", "eth=bybit"]
    assert str(args.state_root) == "/state"


def test_state_claims_are_mounted_read_only_and_secrets_as_files_never_env() -> None:
    jobs = by_job(build_backup_cronjobs(SCHEDULE, image="img", runtimes=RUNTIMES))
    pod = jobs["backup"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert [v["persistentVolumeClaim"] for v in claims] == [
        {"claimName": "slsbot-runtime-btc", "readOnly": True},
        {"claimName": "slsbot-runtime-eth", "readOnly": True},
    ]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/state/btc"]["readOnly"] and mounts["/state/eth"]["readOnly"]
    assert mounts["/var/run/slsbot/secrets/trading/restic"]["readOnly"]
    assert mounts["/var/run/slsbot/secrets/trading/restic-s3"]["readOnly"]
    assert "env" not in pod["containers"][0] and "envFrom" not in pod["containers"][0]
    affinity = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert affinity["labelSelector"]["matchExpressions"][0]["values"] == ["btc", "eth"]
    check = jobs["check"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert not [v for v in check["volumes"] if "persistentVolumeClaim" in v] and "affinity" not in check


def test_long_names_fit_a_cronjob() -> None:
    name = cronjob_name("a" * 60, "drill")
    assert len(name) <= CRONJOB_NAME_LIMIT
    assert name != cronjob_name("a" * 59 + "b", "drill")
    assert cronjob_name("nightly", "check") == "slsbot-backup-nightly-check"


def test_a_status_write_does_not_change_the_cronjobs() -> None:
    """Each result a job writes into the schedule's status moves its resourceVersion (and kopf or kubectl may add
    annotations): the CronJobs built from it stay the same, or every result would patch all four."""
    later = SCHEDULE.model_copy(
        update={
            "metadata": SCHEDULE.metadata.model_copy(
                update={"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}
            )
        }
    )
    later.metadata.__pydantic_extra__["resourceVersion"] = "42"  # type: ignore[index]
    later.metadata.__pydantic_extra__["managedFields"] = [{"manager": "kubectl"}]  # type: ignore[index]
    assert build_backup_cronjobs(later, image="img", runtimes=RUNTIMES) == build_backup_cronjobs(
        SCHEDULE, image="img", runtimes=RUNTIMES
    )


def test_the_jobs_run_as_their_service_account_and_report_to_the_cluster() -> None:
    for job in build_backup_cronjobs(SCHEDULE, image="img", runtimes=RUNTIMES):
        pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == RUNNER_SERVICE_ACCOUNT
        assert "--kubernetes" in pod["containers"][0]["args"]


def test_the_jobs_rbac_is_a_service_account_bound_to_a_role_of_three_rules() -> None:
    account, role, binding = build_backup_rbac("trading")
    assert (account["kind"], role["kind"], binding["kind"]) == ("ServiceAccount", "Role", "RoleBinding")
    assert {m["metadata"]["namespace"] for m in (account, role, binding)} == {"trading"}
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "trading"}
    ]
    grants = {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    assert grants == {
        ("slsbot.io", "backupschedules", "get"),
        ("slsbot.io", "backupschedules/status", "patch"),
        ("", "events", "create"),
    }
    assert not any("resourceNames" in rule for rule in role["rules"])


def test_the_backup_and_check_cronjobs_are_exactly_these() -> None:
    """The whole manifests, field by field: a change to what the operator applies shows here first."""
    schedule_json = json.dumps(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "BackupSchedule",
            "metadata": {"name": "nightly", "namespace": "trading", "uid": "u-1"},
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
                "restoreDrill": {"schedule": "0 6 * * 0"},
                "selector": {"matchLabels": {}},
            },
        },
        sort_keys=True,
    )

    def cronjob(job: str, cron: str, pod: dict, arguments: list[str], volumes: list, mounts: list) -> dict:
        labels = {
            "app.kubernetes.io/name": "slsbot-backup",
            "app.kubernetes.io/managed-by": "slsbot-operator",
            "slsbot.io/backup-schedule": "nightly",
            "slsbot.io/backup-job": job,
        }
        container = {
            "name": "backup",
            "image": "img",
            "args": [
                "backup",
                "run",
                "--job",
                job,
                "--schedule-json",
                schedule_json,
                "--secrets-dir",
                "/var/run/slsbot/secrets",
                "--state-dir",
                "/var/lib/slsbot",
                "--kubernetes",
                *arguments,
            ],
            "volumeMounts": [
                {"name": "restic-password", "mountPath": "/var/run/slsbot/secrets/trading/restic", "readOnly": True},
                {"name": "work", "mountPath": "/var/lib/slsbot"},
                {"name": "tmp", "mountPath": "/tmp"},
                {
                    "name": "restic-environment",
                    "mountPath": "/var/run/slsbot/secrets/trading/restic-s3",
                    "readOnly": True,
                },
                *mounts,
            ],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {
                "name": f"slsbot-backup-nightly-{job}",
                "namespace": "trading",
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": "slsbot.io/v1alpha1",
                        "kind": "BackupSchedule",
                        "name": "nightly",
                        "uid": "u-1",
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "schedule": cron,
                "timeZone": "Etc/UTC",
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 3600,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "backoffLimit": 0,
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                **pod,
                                "serviceAccountName": "slsbot-backup",
                                "automountServiceAccountToken": True,
                                "restartPolicy": "Never",
                                "securityContext": {"fsGroup": 10001},
                                "containers": [container],
                                "volumes": [
                                    {
                                        "name": "restic-password",
                                        "secret": {"secretName": "restic", "defaultMode": 0o400},
                                    },
                                    {"name": "work", "emptyDir": {}},
                                    {"name": "tmp", "emptyDir": {}},
                                    {
                                        "name": "restic-environment",
                                        "secret": {"secretName": "restic-s3", "defaultMode": 0o400},
                                    },
                                    *volumes,
                                ],
                            },
                        },
                    },
                },
            },
        }

    jobs = by_job(build_backup_cronjobs(SCHEDULE, image="img", runtimes=RUNTIMES))
    affinity = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {
                        "matchExpressions": [{"key": "slsbot.io/strategy", "operator": "In", "values": ["btc", "eth"]}]
                    },
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }
    assert jobs["backup"] == cronjob(
        "backup",
        "0 * * * *",
        {"affinity": affinity},
        ["--state-root", "/state", "--account-of", "btc=binance", "--account-of", "eth=bybit"],
        [
            {"name": "state-0", "persistentVolumeClaim": {"claimName": "slsbot-runtime-btc", "readOnly": True}},
            {"name": "state-1", "persistentVolumeClaim": {"claimName": "slsbot-runtime-eth", "readOnly": True}},
        ],
        [
            {"name": "state-0", "mountPath": "/state/btc", "readOnly": True},
            {"name": "state-1", "mountPath": "/state/eth", "readOnly": True},
        ],
    )
    assert jobs["check"] == cronjob("check", "30 3 * * *", {}, [], [], [])
