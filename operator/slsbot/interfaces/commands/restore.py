"""``slsbot restore --namespace N --strategy S [--snapshot ID|latest] -f DIR``: put a Strategy's state file back from
a restic snapshot of its BackupSchedule (docs/concepts/backups.md).

Refused, changing nothing, while the Strategy's runtime runs or while ``slsbot up`` holds the state folder (it would
start the runtime again mid-restore): stop ``slsbot up`` first (Ctrl-C; its runtimes stop with it). The restore holds
the state folder's lock meanwhile, so ``slsbot up`` cannot start during it. The restored copy is checked
(``PRAGMA integrity_check``, and its summary against the one recorded at snapshot time) before it replaces the file;
the previous file is kept aside as ``state.db.before-restore-<UTC time>``. On its next start the runtime reconciles
its orders with the exchange before it trades (docs/concepts/backups.md, "After a restore").

Exit codes: 0 restored, 1 refused (the reason on stderr), 2 unusable arguments, schedule or Secrets.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from slsbot.interfaces.commands.backup import add_schedule_arguments, load_schedule

HELP = "Put a Strategy's state back from a backup snapshot (its runtime stopped)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", required=True, help="The Strategy whose state file to restore.")
    parser.add_argument("--snapshot", default="latest", help="A snapshot id (or its prefix), or latest (default).")
    add_schedule_arguments(parser)


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
    from slsbot.adapters.sqlite_snapshot import SqliteCopies
    from slsbot.adapters.state_folder import StateFolderError, claim_state_folder
    from slsbot.domain.errors import SlsbotError
    from slsbot.interfaces.local_backups import build_repository
    from slsbot.services.backups import restore_state
    from slsbot.settings import ControlPlaneSettings

    try:
        overrides: dict[str, Any] = {}
        if args.state_dir is not None:
            overrides["state_dir"] = args.state_dir
        if args.secrets_dir is not None:
            overrides["secrets_dir"] = args.secrets_dir
        settings = ControlPlaneSettings(**overrides)
        schedule, _strategies = load_schedule(args)
        repository = build_repository(
            schedule, settings.incident_secrets_dir, cache_dir=settings.state_dir / "restic-cache"
        )
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
