"""Claiming the state folder and checking its database: each failure is one StateFolderError line naming the path
and the fix. Real folders, real locks and real SQLite errors (a read-only open, a held write lock, a damaged file);
`slsbot up` itself meeting them is tests/integration/supervisor/test_supervisor_startup_errors.py."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from slsbot.adapters.state_folder import (
    LOCK_NAME,
    StateFolderError,
    check_database,
    claim_state_folder,
    database_error,
    open_state_store,
)
from slsbot.adapters.store import create_store_engine


def test_a_claim_creates_the_folder_and_a_second_claim_names_the_holder(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "state"
    first = claim_state_folder(folder)
    try:
        assert (folder / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(StateFolderError) as caught:
            claim_state_folder(folder)
        assert str(caught.value) == (
            f"state folder {folder}: another slsbot up (pid {os.getpid()}) is using it; stop that one first, or pass "
            "another folder with --state-dir"
        )
    finally:
        first.release()
    claim_state_folder(folder).release()  # released: free again


def test_a_file_where_the_folder_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    with pytest.raises(StateFolderError, match=r"state folder .*/state: not a folder; pass a folder with --state-dir"):
        claim_state_folder(tmp_path / "state")


def test_a_damaged_database_says_to_move_it_aside(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.db"
    path.write_bytes(b"this is not sqlite\n" * 100)
    with pytest.raises(StateFolderError) as caught:
        open_state_store(path)
    message = str(caught.value)
    assert message.startswith(f"state database {path}: damaged or not a SQLite database (file is not a database)")
    assert "move it aside" in message and "\n" not in message


def test_a_database_locked_by_another_program_is_refused_within_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.db"
    create_store_engine(path).dispose()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StateFolderError, match=r"supervisor\.db: locked by another program .*close it"):
            check_database(path, timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    check_database(path, timeout=0.2)  # free again


def test_a_read_only_database_names_the_path_and_the_fix(tmp_path: Path) -> None:
    """Tests run as root, where file modes do not stop writes: SQLite's own read-only open gives the real error."""
    path = tmp_path / "supervisor.db"
    create_store_engine(path).dispose()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as raised:
            connection.execute("CREATE TABLE t (x)")
    finally:
        connection.close()
    message = str(database_error(path, raised.value))
    assert message == (
        f"state database {path}: cannot write it (attempt to write a readonly database); make {tmp_path} writable, "
        "or pass another folder with --state-dir (or SLSBOT_STATE_DIR)"
    )


def test_a_usable_database_opens_with_its_tables(tmp_path: Path) -> None:
    engine = open_state_store(tmp_path / "supervisor.db")
    try:
        with engine.connect() as connection:
            tables = {row[0] for row in connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        engine.dispose()
    assert {"stored_object", "runtime_record", "event_record", "audit_record"} <= tables
