"""Pure builder of a TradingAccount's daily report CronJob: ``slsbot report --daily --kubernetes`` once a day, the same
report ``slsbot up`` sends on its schedule. No I/O: dicts in, dicts out; ``slsbot report --daily --cronjob IMAGE``
prints it for ``kubectl apply``.

- Named ``slsbot-report-<account>`` (shortened with a digest past 52 characters, CronJob's limit), owned by the
  TradingAccount (``ownerReferences``), so deleting the account removes it.
- The pod reads the account, its Strategies and RiskPolicy, the Incidents and the Slack receivers' Secrets through the
  Kubernetes API as ``service_account`` (docs/how-to/daily-report.md has the Role it needs: read only), and each
  Strategy's runtime state file from its state claim, mounted read-only at ``/state/<strategy>/``. The claims are
  ReadWriteOnce: the pod must run on the node of the runtime pods, which a ``podAffinity`` on the strategy label asks
  for (as the backup CronJobs do).
- ``concurrencyPolicy: Forbid``, a ``startingDeadlineSeconds`` so a missed run still starts late, history limits, no
  retries of a failed run (a retry could post the report twice).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from slsbot.adapters.kubernetes.manifests import LABEL_STRATEGY, runtime_object_name
from slsbot.api import API_VERSION, TradingAccount

Manifest = dict[str, object]

REPORT_PREFIX = "slsbot-report-"
LABEL_ACCOUNT = "slsbot.io/account"
MANAGED_BY = "slsbot-operator"
STATE_ROOT = "/state"
CRONJOB_NAME_LIMIT = 52
STARTING_DEADLINE_SECONDS = 3600
RUNNER_USER = 10001


def report_cronjob_name(account: str) -> str:
    name = f"{REPORT_PREFIX}{account}"
    if len(name) <= CRONJOB_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: CRONJOB_NAME_LIMIT - 9].rstrip('-')}-{digest}"


def build_daily_report_cronjob(
    account: TradingAccount,
    strategies: Sequence[str],
    *,
    image: str,
    schedule: str,
    service_account: str,
) -> Manifest:
    namespace = account.namespace
    names = sorted(strategies)
    arguments = [
        "report",
        "--daily",
        "--kubernetes",
        "--account",
        f"{namespace}/{account.name}",
        "--state-root",
        STATE_ROOT,
        "--slack",
    ]
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - a private emptyDir
    for index, strategy in enumerate(names):
        claim = runtime_object_name(strategy)
        volumes.append({"name": f"state-{index}", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        mounts.append({"name": f"state-{index}", "mountPath": f"{STATE_ROOT}/{strategy}", "readOnly": True})
    pod: Manifest = {}
    if names:
        pod["affinity"] = {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {
                            "matchExpressions": [{"key": LABEL_STRATEGY, "operator": "In", "values": names}]
                        },
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }
    labels = {
        "app.kubernetes.io/name": "slsbot-report",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_ACCOUNT: account.name,
    }
    owner = {
        "apiVersion": API_VERSION,
        "kind": "TradingAccount",
        "name": account.name,
        "uid": account.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    container: Manifest = {
        "name": "report",
        "image": image,
        "args": arguments,
        "env": [{"name": "MPLCONFIGDIR", "value": "/tmp/matplotlib"}],  # noqa: S108 - the private emptyDir
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
            "name": report_cronjob_name(account.name),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner],
        },
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
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            **pod,
                            "serviceAccountName": service_account,
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
