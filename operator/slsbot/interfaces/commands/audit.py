"""``slsbot audit``: the admin API's audit trail, read from a supervisor's store (docs/concepts/admin-api-security.md).

    slsbot audit verify [--state-dir DIR | --database FILE]
    slsbot audit export [--since 2026-03-01T00:00:00Z] [--state-dir DIR | --database FILE] > audit.jsonl

``verify`` checks the hash chain (``domain.audit_chain``) from its anchor to its newest record and prints OK with the
count and the head (the newest record's id and hash: write it down elsewhere to notice a loss of the newest
records later), or names the first broken record and why. ``export`` writes one JSON object per line, oldest first,
for a log system (Loki, Elasticsearch, a SIEM): ``id``, ``at`` (UTC, ISO 8601), ``actor``, ``action``, ``target``,
``result``, ``prev_hash``, ``hash``. Both only read; they run beside a running supervisor.

The store: ``--database``, else ``supervisor.db`` in ``--state-dir`` (default ``SLSBOT_STATE_DIR``, else
``var/slsbot``). Exit codes: 0 done (verify: the chain is whole), 1 the chain is broken or there is no store, 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slsbot.adapters.store import AuditRecord

HELP = "Verify the admin API's audit trail (its hash chain) or export it as JSON lines"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["verify", "export"], help="verify the chain, or export the records")
    parser.add_argument(
        "--state-dir", type=Path, help="the supervisor's state folder (default: SLSBOT_STATE_DIR, else var/slsbot)"
    )
    parser.add_argument("--database", type=Path, metavar="FILE", help="the store's SQLite file (overrides --state-dir)")
    parser.add_argument(
        "--since",
        metavar="TIME",
        help="export: only records written at or after TIME (ISO 8601, e.g. 2026-03-01 or 2026-03-01T12:00:00Z; "
        "UTC when no zone is given)",
    )


def parse_since(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since: {text[:64]!r} is not an ISO 8601 time; give e.g. 2026-03-01 or 2026-03-01T12:00:00Z"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def export_line(row: AuditRecord) -> str:
    return json.dumps(
        {
            "id": row.id,
            "at": row.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "actor": row.actor,
            "action": row.action,
            "target": row.target,
            "result": row.result,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def run(args: argparse.Namespace) -> int:
    from sqlmodel import Session

    from slsbot.adapters.store import StoreNotFound, iter_audit, open_existing_store, verify_audit
    from slsbot.settings import AdminClientSettings, supervisor_database_path

    try:
        since = parse_since(args.since) if args.since is not None else None
    except ValueError as exc:
        print(f"slsbot audit: {exc}", file=sys.stderr)
        return 2
    if since is not None and args.action != "export":
        print("slsbot audit: --since is for export only", file=sys.stderr)
        return 2
    state_dir = args.state_dir if args.state_dir is not None else AdminClientSettings().state_dir
    path = args.database if args.database is not None else supervisor_database_path(state_dir)
    try:
        engine = open_existing_store(path)
    except StoreNotFound as exc:
        print(f"slsbot audit: {exc}", file=sys.stderr)
        return 1
    try:
        with Session(engine) as session:
            if args.action == "export":
                for row in iter_audit(session, since=since):
                    sys.stdout.write(export_line(row) + "\n")
                sys.stdout.flush()
                return 0
            verdict = verify_audit(session)
    finally:
        engine.dispose()
    if verdict.broken is not None:
        print(
            f"audit chain BROKEN in {path}: {verdict.broken}; "
            f"{verdict.checked - 1} records before it verified (up to record {verdict.head.last_id})"
        )
        return 1
    print(
        f"audit chain OK: {verdict.checked} record{'' if verdict.checked == 1 else 's'} in {path}, "
        f"head record {verdict.head.last_id} hash {verdict.head.hash}"
    )
    return 0
