"""``slsbot restore --namespace N --strategy S [--snapshot ID|latest] -f DIR``: put a Strategy's state file back from
a restic snapshot of its BackupSchedule (docs/concepts/backups.md).

Refused, changing nothing, while the Strategy's runtime runs or while ``slsbot up`` holds the state folder (it would
start the runtime again mid-restore): stop ``slsbot up`` first (Ctrl-C; its runtimes stop with it). The restore holds
the state folder's lock meanwhile, so ``slsbot up`` cannot start during it. The restored copy is checked
(``PRAGMA integrity_check``, and its summary against the one recorded at snapshot time) before it replaces the file;
the previous file is kept aside as ``state.db.before-restore-<UTC time>``. On its next start the runtime reconciles
its orders with the exchange before it trades (docs/concepts/backups.md, "After a restore").

On a cluster, ``--kubernetes`` (``adapters.kubernetes.restore``): refused unless the Strategy is paused; then its
runtime is held (annotation ``slsbot.io/restore``: the operator leaves it alone) and scaled to 0, a Job runs this
command in its file mode (``--state-file``, the runtime's state claim mounted read-write) and the runtime is scaled
back to 1 and released; it reconciles with the exchange before it trades.

Exit codes: 0 restored, 1 refused (the reason on stderr), 2 unusable arguments, schedule or Secrets.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from slsbot.interfaces.commands.backup import add_schedule_arguments, folder_settings, load_schedule
from slsbot.interfaces.commands.cluster_args import add_cluster_arguments, cluster_api

if TYPE_CHECKING:
    from slsbot.adapters.restic import ResticRepository
    from slsbot.settings import ControlPlaneSettings

HELP = "Put a Strategy's state back from a backup snapshot (its runtime stopped)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", required=True, help="The Strategy whose state file to restore.")
    parser.add_argument("--snapshot", default="latest", help="A snapshot id (or its prefix), or latest (default).")
    add_schedule_arguments(parser)
    add_cluster_arguments(parser, what="Restore on a cluster: hold the runtime, run the restore Job, start it again")
    parser.add_argument("--image", default=None, help="--kubernetes: the restore Job's image (default: slsbot's).")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="--kubernetes: seconds to wait for each step (default 600)."
    )
    parser.add_argument("--schedule-json", help=argparse.SUPPRESS)  # the restore Job's: the schedule as JSON
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="The restore Job's mode: restore this state file (its runtime is stopped by whoever runs this).",
    )


def _say(code: int, message: str) -> int:
    print(f"slsbot restore: {message}", file=sys.stderr, flush=True)
    return code


def running_runtime(database: Path, namespace: str, strategy: str) -> int | None:
    """The pid of the Strategy's runtime when one runs (as the supervisor's database records it), else None."""
    from sqlmodel import Session

    from slsbot.adapters.process_table import command_line, pid_runs
    from slsbot.adapters.store import create_store_engine, get_runtime_record

    if not database.is_file():
        return None
    engine = create_store_engine(database)
    try:
        with Session(engine) as session:
            record = get_runtime_record(session, namespace=namespace, name=strategy)
    finally:
        engine.dispose()
    if record is None or record.pid is None or not pid_runs(record.pid):
        return None
    if record.config_path and record.config_path not in command_line(record.pid):
        return None  # the pid was reused by another program
    return record.pid


def run(args: argparse.Namespace) -> int:
    if args.kubernetes:
        return run_on_cluster(args)
    if args.state_file is not None:
        return run_in_job(args)
    return run_locally(args)


def run_on_cluster(args: argparse.Namespace) -> int:
    """Hold the runtime, run the restore Job, start the runtime again (``adapters.kubernetes.restore``)."""
    from slsbot.adapters.kubernetes.restore import KubernetesRestore
    from slsbot.api.strategy import RuntimeSettings
    from slsbot.domain.errors import SlsbotError

    try:
        api = cluster_api(args)
        schedule = cluster_schedule(api, args.namespace, args.schedule)
    except (ValueError, SlsbotError) as exc:
        return _say(2, str(exc))
    image = args.image or RuntimeSettings.model_fields["image"].default
    restore = KubernetesRestore(api, image, timeout=args.timeout, say=lambda m: print(m, flush=True))
    try:
        outcome = restore.run(schedule, strategy=args.strategy, snapshot=args.snapshot)
    except SlsbotError as exc:  # ClusterRestoreRefused among them
        return _say(1, str(exc))
    print(
        f"restored {args.namespace}/{args.strategy} from snapshot {outcome.snapshot} (Job {outcome.job}); its "
        "runtime starts again and reconciles with the exchange before it trades. It is still paused: resume it "
        "when its orders look right.",
        flush=True,
    )
    return 0


def cluster_schedule(api: Any, namespace: str, name: str | None) -> Any:
    """The BackupSchedule named, or the only one of the namespace. Raises ValueError."""
    from slsbot.adapters.kubernetes.client import resource_path
    from slsbot.adapters.kubernetes.objects import InvalidObjectError, parse_object
    from slsbot.api import GROUP, VERSION, BackupSchedule

    bodies = api.list(resource_path(GROUP, VERSION, BackupSchedule.kind_info.plural, namespace=namespace))
    found = [b for b in bodies if name is None or (b.get("metadata") or {}).get("name") == name]
    if len(found) != 1:
        what = "no" if not found else "more than one"
        hint = "; pass --schedule NAME" if found else ""
        raise ValueError(f"{what} BackupSchedule{f' {name}' if name else ''} in namespace {namespace}{hint}")
    try:
        return parse_object(BackupSchedule, found[0])
    except InvalidObjectError as exc:
        raise ValueError(str(exc)) from None


def schedule_repository(args: argparse.Namespace) -> tuple[ControlPlaneSettings, ResticRepository]:
    """The settings (``folder_settings``) and the restic repository of the schedule ``args`` name, its Secrets read
    from the settings' secrets folder. Raises ValueError, ValidationError or SlsbotError."""
    from slsbot.interfaces.local_backups import build_repository

    settings = folder_settings(args)
    schedule, _strategies = load_schedule(args)
    repository = build_repository(
        schedule, settings.incident_secrets_dir, cache_dir=settings.state_dir / "restic-cache"
    )
    return settings, repository


def run_in_job(args: argparse.Namespace) -> int:
    """The restore Job's own run: the state file on the mounted claim, its runtime stopped by ``run_on_cluster``."""
    from slsbot.adapters.sqlite_snapshot import SqliteCopies
    from slsbot.domain.errors import SlsbotError
    from slsbot.services.backups import restore_state

    try:
        _settings, repository = schedule_repository(args)
        outcome = restore_state(
            repository,
            SqliteCopies(),
            namespace=args.namespace,
            strategy=args.strategy,
            state_file=args.state_file,
            snapshot=args.snapshot,
            now=datetime.now(UTC),
        )
    except (ValueError, ValidationError) as exc:
        return _say(2, str(exc))
    except SlsbotError as exc:
        return _say(1, str(exc))
    aside = ", ".join(str(p) for p in outcome.kept_aside) or "none (there was no state file)"
    print(f"restored {outcome.state_file} from snapshot {outcome.snapshot_id[:8]}; kept aside: {aside}", flush=True)
    return 0


def run_locally(args: argparse.Namespace) -> int:
    from slsbot.adapters.sqlite_snapshot import SqliteCopies
    from slsbot.adapters.state_folder import StateFolderError, claim_state_folder
    from slsbot.domain.errors import SlsbotError
    from slsbot.services.backups import restore_state

    try:
        settings, repository = schedule_repository(args)
    except (ValueError, ValidationError, SlsbotError) as exc:
        return _say(2, str(exc))
    namespace, strategy = args.namespace, args.strategy
    stop_first = "stop slsbot up first (Ctrl-C in its terminal, or SIGTERM: its runtimes stop with it), then restore"
    try:
        claim = claim_state_folder(settings.state_dir)
    except StateFolderError as exc:
        if "is using it" in str(exc):
            return _say(1, f"{namespace}/{strategy}: slsbot up is running on {settings.state_dir}; {stop_first}")
        return _say(2, str(exc))
    try:
        pid = running_runtime(settings.database_path, namespace, strategy)
        if pid is not None:
            return _say(1, f"the runtime of {namespace}/{strategy} is running (pid {pid}); {stop_first}")
        state_file = settings.state_dir / namespace / strategy / "state.db"
        state_file.parent.mkdir(parents=True, exist_ok=True)
        outcome = restore_state(
            repository,
            SqliteCopies(),
            namespace=namespace,
            strategy=strategy,
            state_file=state_file,
            snapshot=args.snapshot,
            now=datetime.now(UTC),
        )
    except SlsbotError as exc:
        return _say(1, str(exc))
    finally:
        claim.release()
    aside = ", ".join(str(p) for p in outcome.kept_aside) or "none (there was no state file)"
    print(
        f"restored {outcome.state_file} from snapshot {outcome.snapshot_id[:8]}; previous file kept aside: {aside}. "
        "Start slsbot up again: the runtime reconciles its orders with the exchange before it trades.",
        flush=True,
    )
    return 0
