"""A TradingAccount's daily report CronJob, built without a cluster: its command parses as ``slsbot report``'s, each
Strategy's state claim is mounted read-only where ``--state-root`` reads it, and the pod runs beside the runtimes."""

from __future__ import annotations

import argparse
import json

from slsbot.adapters.kubernetes.report_manifests import (
    CRONJOB_NAME_LIMIT,
    build_daily_report_cronjob,
    report_cronjob_name,
)
from slsbot.api import TradingAccount
from slsbot.interfaces.commands.report import add_arguments

ACCOUNT = TradingAccount.model_validate(
    {
        "metadata": {"name": "main", "namespace": "trading", "uid": "u-7"},
        "spec": {"exchange": "binance", "mode": "paper", "paper": {"startingBalance": 1000, "quoteCurrency": "USDT"}},
    }
)


def build(strategies=("eth", "btc")) -> dict:
    return build_daily_report_cronjob(
        ACCOUNT, list(strategies), image="ghcr.io/slsbot/slsbot:1", schedule="5 0 * * *", service_account="reports"
    )


def pod_of(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_one_cronjob_per_account_on_the_schedule_owned_by_the_account() -> None:
    cronjob = build()
    assert cronjob["kind"] == "CronJob" and cronjob["metadata"]["name"] == "slsbot-report-main"
    assert cronjob["metadata"]["namespace"] == "trading"
    [owner] = cronjob["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("TradingAccount", "main", "u-7")
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == ("5 0 * * *", "Etc/UTC", "Forbid")
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0  # a retry could post the report twice


def test_the_command_is_slsbot_report_daily_on_the_cluster_and_parses() -> None:
    container = pod_of(build())["containers"][0]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(container["args"][1:])
    assert container["args"][0] == "report"
    assert (args.daily, args.kubernetes, args.slack, args.account) == (True, True, True, "trading/main")
    assert str(args.state_root) == "/state"


def test_each_strategys_state_claim_is_mounted_read_only_beside_its_runtime() -> None:
    pod = pod_of(build())
    assert pod["serviceAccountName"] == "reports"
    claims = {v["name"]: v["persistentVolumeClaim"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert {c["claimName"]: mounts[name]["mountPath"] for name, c in claims.items()} == {
        "slsbot-runtime-btc": "/state/btc",
        "slsbot-runtime-eth": "/state/eth",
    }
    assert all(c["readOnly"] and mounts[name]["readOnly"] for name, c in claims.items())
    [term] = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"]["matchExpressions"][0]["values"] == ["btc", "eth"]
    security = pod["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"]


def test_an_account_without_strategies_mounts_no_state_and_asks_no_affinity() -> None:
    pod = pod_of(build(()))
    assert "affinity" not in pod
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]


def test_a_long_account_name_is_shortened_to_the_cronjob_limit() -> None:
    name = report_cronjob_name("a" * 70)
    assert len(name) <= CRONJOB_NAME_LIMIT and name.startswith("slsbot-report-aaa")
    assert report_cronjob_name("a" * 70) != report_cronjob_name("a" * 69)


def test_the_cronjob_is_exactly_this() -> None:
    """The whole manifest, field by field (``--cronjob`` prints it in this order for ``kubectl apply``)."""
    labels = {
        "app.kubernetes.io/name": "slsbot-report",
        "app.kubernetes.io/managed-by": "slsbot-operator",
        "slsbot.io/account": "main",
    }
    pod = {
        "affinity": {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {
                            "matchExpressions": [
                                {"key": "slsbot.io/strategy", "operator": "In", "values": ["btc", "eth"]}
                            ]
                        },
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
        "serviceAccountName": "reports",
        "restartPolicy": "Never",
        "securityContext": {"fsGroup": 10001},
        "containers": [
            {
                "name": "report",
                "image": "ghcr.io/slsbot/slsbot:1",
                "args": [
                    "report",
                    "--daily",
                    "--kubernetes",
                    "--account",
                    "trading/main",
                    "--state-root",
                    "/state",
                    "--slack",
                ],
                "env": [{"name": "MPLCONFIGDIR", "value": "/tmp/matplotlib"}],
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "state-0", "mountPath": "/state/btc", "readOnly": True},
                    {"name": "state-1", "mountPath": "/state/eth", "readOnly": True},
                ],
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "state-0", "persistentVolumeClaim": {"claimName": "slsbot-runtime-btc", "readOnly": True}},
            {"name": "state-1", "persistentVolumeClaim": {"claimName": "slsbot-runtime-eth", "readOnly": True}},
        ],
    }
    expected = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "slsbot-report-main",
            "namespace": "trading",
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "slsbot.io/v1alpha1",
                    "kind": "TradingAccount",
                    "name": "main",
                    "uid": "u-7",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "schedule": "5 0 * * *",
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": pod}},
            },
        },
    }
    built = build()
    assert built == expected
    assert json.dumps(built) == json.dumps(expected)  # the same keys in the same order: the printed YAML is unchanged
