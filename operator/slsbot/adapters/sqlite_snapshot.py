"""A consistent copy of a live SQLite database, and a summary of what a runtime's state file holds.

``snapshot_database`` copies through SQLite's online backup API (``sqlite3.Connection.backup``) in one step, inside
one read transaction of the source: the copy is the database as one committed transaction left it, even while a
runtime keeps writing (WAL lets the writer go on meanwhile). Never a file copy: a copy of a file in use can hold half
of a transaction, or miss what still sits in the ``-wal`` file. The copy is written in rollback-journal mode, so it is
one self-contained file.

``summarize_state`` reads a state file (the runtime's schema: ``slsbot_runtime/persistence/schema.py``) read-only
and tolerantly: for each of orders, fills, positions and equity that exists, its row count and a SHA-256 digest of
its rows (sorted, so the physical order does not matter), plus the newest equity. Tables it does not know are
ignored and a table it knows but the file lacks is left out, so an older or newer schema still summarises. The drill
compares the summary recorded at snapshot time with the one recomputed from the restored copy
(``domain.backup_plan.drill_verdict``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from slsbot.domain.errors import SlsbotError

#: The state file's tables a drill compares, as the runtime names them.
SUMMARY_TABLES = ("orders", "fills", "positions", "equity")
BUSY_TIMEOUT_S = 10.0


class SnapshotError(SlsbotError):
    """A database could not be copied or read (missing, not a database, damaged, locked past the timeout). The job
    that asked fails with this message (naming the file) and its incident opens; the live file is never changed."""


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise SnapshotError(f"database {path}: no such file")
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise SnapshotError(f"database {path}: cannot open it read-only ({exc})") from exc


def snapshot_database(source: Path, target: Path) -> None:
    """Write a consistent copy of ``source`` to ``target`` (replaced if present; written aside, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    live = _open_read_only(source)
    try:
        copy = sqlite3.connect(partial)
        try:
            live.backup(copy, pages=-1)  # one step: one read transaction of the source, so one consistent state
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.commit()
        finally:
            copy.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise SnapshotError(f"database {source}: the online backup failed ({exc})") from exc
    finally:
        live.close()
    os.replace(partial, target)


def integrity_problems(path: Path) -> list[str]:
    """``PRAGMA integrity_check`` of ``path``: [] when sound, else SQLite's findings (or why it cannot be read)."""
    try:
        connection = _open_read_only(path)
    except SnapshotError as exc:
        return [str(exc)]
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.Error as exc:
        return [f"database {path}: {exc}"]
    finally:
        connection.close()
    findings = [str(row[0]) for row in rows]
    return [] if findings == ["ok"] else findings


def _digest(rows: list[tuple[Any, ...]]) -> str:
    hasher = hashlib.sha256()
    for line in sorted(json.dumps(list(row), default=str) for row in rows):
        hasher.update(line.encode())
        hasher.update(b"\n")
    return hasher.hexdigest()


def summarize_state(path: Path) -> dict[str, Any]:
    """What a runtime's state file holds, for a drill to compare: ``{"tables": {name: {"rows", "digest"}},
    "lastEquity": float | None}``; SnapshotError when the file cannot be read."""
    connection = _open_read_only(path)
    try:
        present = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables: dict[str, Any] = {}
        for table in SUMMARY_TABLES:
            if table in present:
                rows = connection.execute(f"SELECT * FROM {table}").fetchall()  # a fixed table name
                tables[table] = {"rows": len(rows), "digest": _digest(rows)}
        last_equity = None
        if "equity" in present:
            try:
                row = connection.execute("SELECT equity FROM equity ORDER BY ts DESC LIMIT 1").fetchone()
            except sqlite3.Error:  # an older or newer layout of the table: the digest still covers it
                row = None
            last_equity = float(row[0]) if row and row[0] is not None else None
    except sqlite3.Error as exc:
        raise SnapshotError(f"database {path}: cannot read it ({exc})") from exc
    finally:
        connection.close()
    return {"tables": tables, "lastEquity": last_equity}


def summarize_database(path: Path) -> dict[str, Any]:
    """A summary of any SQLite database (the control plane's store): each table's row count and digest."""
    connection = _open_read_only(path)
    try:
        names = sorted(
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not str(row[0]).startswith("sqlite_")
        )
        tables = {}
        for name in names:
            rows = connection.execute(f'SELECT * FROM "{name}"').fetchall()  # names from the schema
            tables[name] = {"rows": len(rows), "digest": _digest(rows)}
    except sqlite3.Error as exc:
        raise SnapshotError(f"database {path}: cannot read it ({exc})") from exc
    finally:
        connection.close()
    return {"tables": tables}


class SqliteCopies:
    """The backups service's ``DatabaseCopies`` port over the functions above."""

    def snapshot(self, source: Path, target: Path) -> None:
        snapshot_database(source, target)

    def summarize(self, path: Path, *, kind: str) -> dict[str, Any]:
        return summarize_state(path) if kind == "state" else summarize_database(path)

    def integrity_problems(self, path: Path) -> list[str]:
        return integrity_problems(path)
