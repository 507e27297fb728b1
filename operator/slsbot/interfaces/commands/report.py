"""``slsbot report``, two reports:

- ``--state PATH``: a runtime's orders, fills, positions, equity curve and summary, read-only from its state file (safe
  while the runtime runs). Returns, drawdowns and the win rate are in percent (keys ``*_pct``).
- ``--daily``: the daily account report of a local supervisor (docs/how-to/daily-report.md): for every
  TradingAccount (or ``--account NS/NAME``), one UTC day (``--date``, default yesterday): PnL, win rate, drawdown,
  best and worst Strategies, incidents and risk decisions; printed, written as a PDF (``--pdf FILE``) and posted to
  the Slack receivers of the namespace's RiskPolicies (``--slack``). It reads the supervisor's store and the runtimes'
  state files in ``--state-dir`` (read-only: safe while ``slsbot up`` runs), the webhook URLs from ``--secrets-dir``.

Exit codes: 0 done; 1 a state file could not be read (``--state``) or a Slack receiver failed (the others were
sent); 2 the arguments are unusable (nothing written or sent; one line on stderr names the fix).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from slsbot.interfaces.commands.cluster_args import add_cluster_arguments, cluster_api

HELP = "Print a runtime's orders, fills, positions and equity from its state file, or the daily account report"
DAILY_ONLY = (
    "account", "date", "pdf", "slack", "state_dir", "secrets_dir", "kubernetes", "kubeconfig", "context", "state_root",
    "cronjob",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--state", metavar="PATH", help="the runtime's SQLite state file")
    which.add_argument(
        "--daily", action="store_true", help="the daily account report (of slsbot up's --state-dir, or --kubernetes)"
    )
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON (default: a summary)")
    daily = parser.add_argument_group("--daily")
    daily.add_argument("--account", metavar="NS/NAME", help="one TradingAccount (default: every one)")
    daily.add_argument("--date", metavar="YYYY-MM-DD", help="the UTC day (default: yesterday)")
    daily.add_argument("--pdf", type=Path, metavar="FILE", help="write the report as a PDF (every account in one file)")
    daily.add_argument("--slack", action="store_true", help="post each account's report to its Slack receivers")
    daily.add_argument(
        "--state-dir", type=Path, default=None, help="slsbot up's state folder (default var/slsbot or SLSBOT_STATE_DIR)"
    )
    daily.add_argument(
        "--secrets-dir",
        type=Path,
        default=None,
        help="where the receivers' webhook URLs are (default <state-dir>/secrets, or SLSBOT_SECRETS_DIR)",
    )
    cluster = parser.add_argument_group("--daily on a cluster")
    add_cluster_arguments(
        cluster, what="Read the objects, incidents and receivers' Secrets from the Kubernetes API (needs --account)"
    )
    cluster.add_argument(
        "--state-root", type=Path, default=None, help="the runtimes' state files as <root>/<strategy>/state.db"
    )
    cluster.add_argument(
        "--cronjob",
        metavar="IMAGE",
        default=None,
        help="print the CronJob (YAML) that runs this report daily on the cluster with IMAGE, and exit",
    )
    cluster.add_argument(
        "--service-account",
        default="slsbot-report",
        help="the CronJob's ServiceAccount (default slsbot-report; docs/how-to/daily-report.md has its Role)",
    )


def run(args: argparse.Namespace) -> int:
    if args.daily:
        return run_daily(args)
    given = [f"--{name.replace('_', '-')}" for name in DAILY_ONLY if getattr(args, name) not in (None, False)]
    if given:
        return _fail(f"{', '.join(given)} go with --daily only; drop them, or pass --daily instead of --state")
    from slsbot_runtime.domain.errors import StateError
    from slsbot_runtime.persistence.report import build_report

    try:
        report = build_report(args.state)
    except StateError as error:
        print(f"slsbot report: {error}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(render_summary(report["summary"]))
    return 0


def render_summary(summary: dict) -> str:
    """One ``key: value`` line per figure; percentages with two decimals and a % sign."""
    lines = []
    for key, value in summary.items():
        if key.endswith("_pct") and isinstance(value, int | float):
            value = f"{value:.2f} %"
        lines.append(f"{key:>24}: {value}")
    return "\n".join(lines)


def parse_account(value: str) -> tuple[str, str]:
    namespace, slash, name = value.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise ValueError(f"--account {value!r}: give NAMESPACE/NAME, e.g. --account trading/binance-main")
    return namespace, name


def parse_day(value: str | None, now: datetime) -> date:
    from slsbot.domain.daily_report import previous_day

    if value is None:
        return previous_day(now)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--date {value!r}: give a day as YYYY-MM-DD, e.g. --date 2026-03-02") from None


def run_daily(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from slsbot.domain.daily_report import summary_lines, title
    from slsbot.domain.errors import SlsbotError
    from slsbot.settings import ControlPlaneSettings

    if args.json:
        return _fail("--json goes with --state only; the daily report prints a summary, --pdf writes it whole")
    try:
        overrides: dict[str, Any] = {}
        if args.state_dir is not None:
            overrides["state_dir"] = args.state_dir
        if args.secrets_dir is not None:
            overrides["secrets_dir"] = args.secrets_dir
        settings = ControlPlaneSettings(**overrides)
        account = parse_account(args.account) if args.account else None
        day = parse_day(args.date, datetime.now(UTC))
        if args.kubernetes or args.cronjob:
            if account is None:
                raise ValueError("--kubernetes and --cronjob report on one account: pass --account NAMESPACE/NAME")
            if args.cronjob:
                return print_cronjob(args, account, settings.daily_report.cron)
            if args.state_root is None:
                raise ValueError("--kubernetes reads the state files in --state-root ROOT: <root>/<strategy>/state.db")
            reports, close = cluster_reports(args, account[0])
        else:
            reports, close = local_reports(args, settings)
    except (ValueError, ValidationError, SlsbotError) as exc:
        return _fail(str(exc))
    try:
        result = reports.run(day, account=account, pdf=args.pdf, slack=args.slack)
    except SlsbotError as exc:
        return _fail(str(exc))
    finally:
        close()
    for report in result.reports:
        print(title(report))
        for label, value in summary_lines(report):
            print(f"{label:>24}: {value}")
        print()
    if not result.reports:
        print("no TradingAccount: nothing to report")
    if result.pdf is not None:
        print(f"PDF: {result.pdf} ({result.pages} pages)")
    for line in result.sent:
        print(f"sent: {line}")
    for line in result.failed:
        print(f"slsbot report: not sent: {line}", file=sys.stderr)
    if args.slack and not result.sent and not result.failed:
        print("no Slack receiver in the accounts' RiskPolicies' notifications: nothing sent", file=sys.stderr)
    return 1 if result.failed else 0


def local_reports(args: argparse.Namespace, settings: Any) -> tuple[Any, Callable[[], None]]:
    """Over ``slsbot up``'s store (objects, incidents) and state folder; the webhook URLs from the secrets folder."""
    from slsbot.adapters.notifiers import FolderSecrets, WebhookSender
    from slsbot.adapters.store import open_existing_store
    from slsbot.adapters.supervisor_store import SqlSupervisorStore
    from slsbot.interfaces.local_reports import local_daily_reports

    engine = open_existing_store(settings.database_path)
    store = SqlSupervisorStore(engine)
    sender = (
        WebhookSender(
            FolderSecrets(settings.incident_secrets_dir),
            timeout=settings.notify_timeout,
            runbook_base_url=settings.runbook_base_url,
        )
        if args.slack
        else None
    )
    reports = local_daily_reports(
        resources=lambda: [item.resource for item in store.desired_objects() if not item.deleting],
        state_dir=settings.state_dir,
        engine=engine,
        sender=sender,
    )

    def close() -> None:
        if sender is not None:
            sender.close()
        engine.dispose()

    return reports, close


def cluster_reports(args: argparse.Namespace, namespace: str) -> tuple[Any, Callable[[], None]]:
    """Over the Kubernetes API (objects, Incidents, Secrets) and the state files mounted under ``--state-root``."""
    from slsbot.adapters.kubernetes.incidents import KubernetesIncidentStore, KubernetesSecretValues
    from slsbot.adapters.kubernetes.report_objects import namespace_objects
    from slsbot.adapters.notifiers import WebhookSender
    from slsbot.adapters.report_pdf import write_report_pdf
    from slsbot.adapters.runtime_state import read_strategy_record
    from slsbot.services.daily_reports import DailyReports

    api = cluster_api(args)
    root: Path = args.state_root
    sender = WebhookSender(KubernetesSecretValues(api)) if args.slack else None
    reports = DailyReports(
        resources=lambda: namespace_objects(api, namespace),
        records=lambda _namespace, strategy: read_strategy_record(root / strategy / "state.db", strategy),
        incidents=KubernetesIncidentStore(api, namespaces=[namespace]),
        sender=sender,
        write_pdf=write_report_pdf,
    )

    def close() -> None:
        if sender is not None:
            sender.close()
        api.close()

    return reports, close


def print_cronjob(args: argparse.Namespace, account: tuple[str, str], schedule: str) -> int:
    import yaml

    from slsbot.adapters.kubernetes.report_manifests import build_daily_report_cronjob
    from slsbot.adapters.kubernetes.report_objects import namespace_objects
    from slsbot.api import Strategy, TradingAccount
    from slsbot.domain.errors import NotFoundError

    api = cluster_api(args)
    try:
        objects = namespace_objects(api, account[0])
    finally:
        api.close()
    owner = next((o for o in objects if isinstance(o, TradingAccount) and o.name == account[1]), None)
    if owner is None:
        raise NotFoundError(f"--account {account[0]}/{account[1]}: no such TradingAccount on the cluster")
    strategies = [o.name for o in objects if isinstance(o, Strategy) and o.spec.account_ref.name == account[1]]
    manifest = build_daily_report_cronjob(
        owner, strategies, image=args.cronjob, schedule=schedule, service_account=args.service_account
    )
    sys.stdout.write(yaml.safe_dump(manifest, sort_keys=False))
    return 0


def _fail(message: str) -> int:
    print(f"slsbot report: {message}", file=sys.stderr, flush=True)
    return 2
