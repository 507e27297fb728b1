"""The local supervisor's state folder, claimed before anything starts: created when missing, checked writable, locked
so that one supervisor at a time uses it, and its database checked usable. Each failure is ``StateFolderError``,
one line naming the path and the fix, instead of a database traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from slsbot.adapters.store import create_store_engine
from slsbot.domain.errors import SlsbotError

LOCK_NAME = "supervisor.lock"
PROBE_TIMEOUT = 2.0  # seconds to wait for another program's write lock on the database before giving up


class StateFolderError(SlsbotError):
    """The state folder or its database cannot be used: not writable, read-only, used by another supervisor, locked,
    or not a database. ``slsbot up`` stops before it starts anything (exit code 2)."""


@dataclass(slots=True)
class StateFolderClaim:
    """Held while the supervisor runs: an exclusive lock on ``<state folder>/supervisor.lock`` (released by the
    system when the process ends, however it ends; the runtimes do not inherit it)."""

    folder: Path
    descriptor: int

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.descriptor)


def _fix(folder: Path) -> str:
    return f"make {folder} writable, or pass another folder with --state-dir (or SLSBOT_STATE_DIR)"


def claim_state_folder(folder: Path) -> StateFolderClaim:
    """Create ``folder`` if needed and lock it for this process. StateFolderError when it cannot be used."""
    if folder.exists() and not folder.is_dir():
        raise StateFolderError(f"state folder {folder}: not a folder; pass a folder with --state-dir")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateFolderError(f"state folder {folder}: cannot create it ({exc.strerror}); {_fix(folder)}") from exc
    lock_path = folder / LOCK_NAME
    try:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StateFolderError(f"state folder {folder}: cannot write in it ({exc.strerror}); {_fix(folder)}") from exc
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _read_pid(descriptor)
        os.close(descriptor)
        who = f"another slsbot up (pid {holder})" if holder else "another slsbot up"
        raise StateFolderError(
            f"state folder {folder}: {who} is using it; stop that one first, or pass another folder with --state-dir"
        ) from exc
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
    except OSError as exc:
        os.close(descriptor)
        raise StateFolderError(f"state folder {folder}: cannot write in it ({exc.strerror}); {_fix(folder)}") from exc
    return StateFolderClaim(folder, descriptor)


def _read_pid(descriptor: int) -> int | None:
    try:
        text = os.pread(descriptor, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def database_error(path: Path, exc: sqlite3.Error) -> StateFolderError:
    """The one-line error for a database that SQLite refused, naming ``path`` and what to do."""
    message = str(exc)
    lowered = message.lower()
    if "locked" in lowered or "busy" in lowered:
        return StateFolderError(
            f"state database {path}: locked by another program (a sqlite3 shell, a backup?); close it and start "
            "again, or pass another folder with --state-dir"
        )
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return StateFolderError(
            f"state database {path}: damaged or not a SQLite database ({message}); move it aside to start with an "
            f"empty store (the runtimes' own state under {path.parent}/<namespace>/<name>/ is kept), or pass "
            "another folder with --state-dir"
        )
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered or "disk i/o" in lowered:
        return StateFolderError(f"state database {path}: cannot write it ({message}); {_fix(path.parent)}")
    return StateFolderError(f"state database {path}: unusable ({message}); {_fix(path.parent)}")


def check_database(path: Path, *, timeout: float = PROBE_TIMEOUT) -> None:
    """Open ``path`` (created when missing) and take its write lock once, waiting at most ``timeout`` seconds for
    another program's: what the supervisor needs of it, asked before anything starts."""
    try:
        connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise database_error(path, exc) from exc
    try:
        connection.execute("PRAGMA schema_version").fetchone()  # reads the header: a damaged file fails here
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise database_error(path, exc) from exc
    finally:
        connection.close()


def store_failure(path: Path, exc: DBAPIError) -> StateFolderError:
    """``database_error`` for a failure that came through SQLAlchemy."""
    original = exc.orig if isinstance(exc.orig, sqlite3.Error) else sqlite3.Error(str(exc.orig))
    return database_error(path, original)


def open_state_store(path: Path) -> Engine:
    """``create_store_engine`` after ``check_database``; either failure is StateFolderError."""
    check_database(path)
    try:
        return create_store_engine(path)
    except DBAPIError as exc:
        raise store_failure(path, exc) from exc
