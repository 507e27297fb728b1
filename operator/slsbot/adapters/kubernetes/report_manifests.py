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

from collections.abc import Sequence

from slsbot.adapters.kubernetes.job_pods import (
    CRONJOB_NAME_LIMIT,
    MANAGED_BY,
    STATE_ROOT,
    TMP_DIR,
    Manifest,
    controller_reference,
    empty_dir,
    run_once_cronjob,
    runner_container,
    runner_pod,
    same_node_affinity,
    shortened_name,
    state_claims,
    volumes_and_mounts,
)
from slsbot.adapters.kubernetes.manifests import LABEL_STRATEGY, runtime_object_name
from slsbot.api import TradingAccount

REPORT_PREFIX = "slsbot-report-"
LABEL_ACCOUNT = "slsbot.io/account"


def report_cronjob_name(account: str) -> str:
    return shortened_name(f"{REPORT_PREFIX}{account}", CRONJOB_NAME_LIMIT)


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
    volumes, mounts = volumes_and_mounts(
        [empty_dir("tmp", TMP_DIR), *state_claims((strategy, runtime_object_name(strategy)) for strategy in names)]
    )
    labels = {
        "app.kubernetes.io/name": "slsbot-report",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_ACCOUNT: account.name,
    }
    container = runner_container(
        "report",
        image=image,
        arguments=arguments,
        mounts=mounts,
        env=[{"name": "MPLCONFIGDIR", "value": f"{TMP_DIR}/matplotlib"}],
    )
    return run_once_cronjob(
        name=report_cronjob_name(account.name),
        namespace=namespace,
        labels=labels,
        owner=controller_reference("TradingAccount", account.name, account.metadata.uid),
        schedule=schedule,
        pod=runner_pod(
            container,
            volumes,
            service_account=service_account,
            affinity=same_node_affinity(LABEL_STRATEGY, names) if names else None,
        ),
    )
