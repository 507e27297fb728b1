"""``slsbot backup run --job backup|check|prune|drill``: run one job of a BackupSchedule and exit (0 when it
succeeded, 1 when it failed, 2 when the arguments, the schedule or its Secrets are unusable).

Locally (``-f DIR``): the schedule and the Strategies come from the folder ``slsbot up`` reads, the state files from
its state folder, the Secrets from its secrets folder. In a CronJob (``--schedule-json``, built by
``adapters.kubernetes.backup_manifests``): the schedule is the argument, the state files are under ``--state-root``
(one mounted claim per Strategy, ``<root>/<strategy>/state.db``) and the Secrets are mounted under ``--secrets-dir``.
The job is the one ``slsbot up`` runs on its schedule (``services.backups``). With ``--kubernetes`` (the CronJobs pass
it) the result is written into the BackupSchedule's status and an Event on it (``adapters.kubernetes.backup_results``);
the operator turns that status into the incident and the metrics. A result that could not be written exits 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from slsbot.api.backup import BackupJobKind, JobOutcome
from slsbot.interfaces.commands.cluster_args import add_cluster_arguments, cluster_api

if TYPE_CHECKING:
    from slsbot.settings import ControlPlaneSettings

HELP = "Run one job of a BackupSchedule (backup, check, prune or a restore drill) and exit"


def add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filename", dest="folder", type=Path, help="Folder of slsbot YAML (as slsbot up).")
    parser.add_argument("--schedule", help="The BackupSchedule's name (default: the only one in the namespace).")
    parser.add_argument("--namespace", default="default", help="Namespace (default: default).")
    parser.add_argument("--state-dir", type=Path, default=None, help="slsbot up's state folder (or SLSBOT_STATE_DIR).")
    parser.add_argument("--secrets-dir", type=Path, default=None, help="Secrets folder (or SLSBOT_SECRETS_DIR).")


def folder_settings(args: argparse.Namespace) -> ControlPlaneSettings:
    """The control plane's settings, with ``--state-dir`` and ``--secrets-dir`` (``add_schedule_arguments``) over
    the environment's. Raises ValidationError."""
    from slsbot.settings import ControlPlaneSettings

    folders = {name: getattr(args, name) for name in ("state_dir", "secrets_dir")}
    return ControlPlaneSettings(**{name: folder for name, folder in folders.items() if folder is not None})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run_parser = sub.add_parser("run", help="Run one job now and exit.")
    run_parser.add_argument("--job", required=True, choices=[j.value for j in BackupJobKind])
    add_schedule_arguments(run_parser)
    run_parser.add_argument("--schedule-json", help="The BackupSchedule object as JSON (a CronJob's argument).")
    run_parser.add_argument(
        "--state-root", type=Path, help="CronJob layout: <root>/<strategy>/state.db for each mounted state claim."
    )
    run_parser.add_argument(
        "--account-of", action="append", default=[], metavar="STRATEGY=ACCOUNT", help="Tag a strategy's account."
    )
    add_cluster_arguments(run_parser, what="Report the result on the cluster: the BackupSchedule's status and an Event")


def _fail(message: str) -> int:
    print(f"slsbot backup: {message}", file=sys.stderr, flush=True)
    return 2


def load_schedule(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The BackupSchedule and the Strategies, from ``--schedule-json`` or the folder. Raises ValueError."""
    from slsbot.adapters.manifest_folder import load_manifest_folder
    from slsbot.api import BackupSchedule, Strategy

    if getattr(args, "schedule_json", None):
        return BackupSchedule.model_validate(json.loads(args.schedule_json)), []
    if args.folder is None:
        raise ValueError("pass -f DIR (the folder slsbot up reads) or --schedule-json")
    resources = load_manifest_folder(args.folder).resources
    schedules = [
        r
        for r in resources
        if isinstance(r, BackupSchedule)
        and r.namespace == args.namespace
        and (args.schedule is None or r.name == args.schedule)
    ]
    if len(schedules) != 1:
        found = "no" if not schedules else "more than one"
        raise ValueError(
            f"{found} BackupSchedule in namespace {args.namespace} of {args.folder}"
            + ("; pass --schedule NAME" if schedules else "; declare one (docs/concepts/backups.md)")
        )
    return schedules[0], [r for r in resources if isinstance(r, Strategy)]


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from slsbot.domain.errors import SlsbotError
    from slsbot.interfaces.local_backups import build_service
    from slsbot.services.backups import BackupSource

    try:
        settings = folder_settings(args)
        schedule, strategies = load_schedule(args)
    except (ValueError, ValidationError, SlsbotError) as exc:
        return _fail(str(exc))
    report = None
    if args.kubernetes:
        from slsbot.adapters.kubernetes.backup_results import KubernetesBackupReporter

        try:
            report = KubernetesBackupReporter(cluster_api(args), schedule)
        except SlsbotError as exc:
            return _fail(str(exc))
    sources = None
    if args.state_root is not None:
        accounts = dict(item.split("=", 1) for item in args.account_of if "=" in item)
        root: Path = args.state_root
        sources = lambda: [  # noqa: E731
            BackupSource("state", path.parent.name, path, account=accounts.get(path.parent.name))
            for path in sorted(root.glob("*/state.db"))
        ]
    service = build_service(
        schedule,
        strategies=lambda: strategies,
        state_dir=settings.state_dir,
        secrets_dir=settings.incident_secrets_dir,
        store_path=settings.database_path if args.state_root is None else None,
        sources=sources,
        report=report,
    )
    result = service.run(args.job)
    print(json.dumps({"job": args.job, **result.to_wire()}), flush=True)
    if report is not None and report.error is not None:
        print(f"slsbot backup: {report.error}", file=sys.stderr, flush=True)
        return 1
    return 0 if result.outcome == JobOutcome.SUCCEEDED else 1
