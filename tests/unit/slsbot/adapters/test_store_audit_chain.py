"""The audit trail's hash chain in the store, on a real SQLite file per test: each record is chained as it is
written; a record changed, removed or moved in the file is named by ``verify_audit``; concurrent writers (threads
on one engine, and a second engine as a second process would have) make one chain; a store from before the chain
gets one when opened; retention keeps what is left verifiable."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from slsbot.adapters.store import (
    AuditAnchor,
    AuditChainBroken,
    create_store_engine,
    iter_audit,
    list_audit,
    prune_audit,
    record_audit,
    verify_audit,
)
from slsbot.domain.audit_chain import GENESIS, ChainAnchor

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "supervisor.db"


@pytest.fixture
def engine(db_path: Path):
    engine = create_store_engine(db_path)
    yield engine
    engine.dispose()


def write(engine, count: int, *, start: datetime = T0, actor: str = "operator:3fa1b2c4") -> None:
    for offset in range(count):
        with Session(engine) as session:
            record_audit(
                session,
                actor=actor,
                action="POST /api/v1/strategies/{name}/pause",
                target=f"Strategy default/s{offset}",
                result="200",
                now=start + timedelta(minutes=offset),
            )


def verdict(engine):
    with Session(engine) as session:
        return verify_audit(session)


def raw(db_path: Path, *statements: str) -> None:
    """Tamper with the file as someone with write access to it would, outside slsbot."""
    with sqlite3.connect(db_path) as db:
        for statement in statements:
            db.execute(statement)


def test_records_are_chained_as_they_are_written(engine) -> None:
    write(engine, 4)
    with Session(engine) as session:
        rows = list(iter_audit(session))
    assert [row.id for row in rows] == [1, 2, 3, 4]
    assert rows[0].prev_hash == GENESIS.hash
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(rows))
    result = verdict(engine)
    assert result.ok and result.checked == 4 and result.head == ChainAnchor(4, rows[-1].hash)


def test_a_changed_field_is_named(engine, db_path: Path) -> None:
    write(engine, 5)
    raw(db_path, "UPDATE audit_record SET result = '403' WHERE id = 3")
    assert str(verdict(engine).broken) == (
        "audit record 3: its fields do not match its hash (changed after it was written)"
    )


def test_a_deleted_record_is_named(engine, db_path: Path) -> None:
    write(engine, 5)
    raw(db_path, "DELETE FROM audit_record WHERE id = 2")
    assert str(verdict(engine).broken) == "audit record 3: record 2 is missing before it (removed)"


def test_reordered_records_are_named(engine, db_path: Path) -> None:
    write(engine, 5)
    # Swap the contents of records 2 and 4 (hashes and all), keeping the ids in place.
    columns = "at, actor, action, target, result, prev_hash, hash"
    raw(
        db_path,
        f"CREATE TABLE swap AS SELECT id, {columns} FROM audit_record WHERE id IN (2, 4)",
        "UPDATE audit_record SET (at, actor, action, target, result, prev_hash, hash) = "
        f"(SELECT {columns} FROM swap WHERE swap.id = 6 - audit_record.id) WHERE id IN (2, 4)",
    )
    broken = verdict(engine).broken
    assert broken is not None and broken.record_id == 2
    assert broken.reason == "its prev_hash is not the hash of record 1 (a record was moved or replaced)"


def test_concurrent_writers_make_one_chain(engine, db_path: Path) -> None:
    second = create_store_engine(db_path)  # as a second process would open the same file
    writers = [engine, second] * 3
    per_writer = 15
    errors: list[BaseException] = []
    start = threading.Barrier(len(writers))

    def writer(index: int) -> None:
        try:
            start.wait(timeout=30)
            write(writers[index], per_writer, actor=f"operator:{index:08d}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    second.dispose()
    assert not errors, errors
    result = verdict(engine)
    assert result.ok, result.broken
    assert result.checked == len(writers) * per_writer == result.head.last_id


def test_a_store_from_before_the_chain_gets_one_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the audit table as slsbot wrote it before the chain
        db.execute(
            "CREATE TABLE audit_record (at DATETIME NOT NULL, actor VARCHAR NOT NULL, action VARCHAR NOT NULL, "
            "target VARCHAR, result VARCHAR NOT NULL, id INTEGER NOT NULL PRIMARY KEY)"
        )
        for index in range(3):
            db.execute(
                "INSERT INTO audit_record (at, actor, action, target, result) VALUES (?, ?, ?, ?, ?)",
                (f"2025-12-0{index + 1} 10:00:00.000000", "admin:aa", "POST /x", None, "200"),
            )
    engine = create_store_engine(path)
    try:
        assert verdict(engine).ok and verdict(engine).checked == 3
        write(engine, 2)
        result = verdict(engine)
        assert result.ok and result.checked == 5
        with Session(engine) as session:
            assert [row.actor for row in iter_audit(session)][:3] == ["admin:aa"] * 3
    finally:
        engine.dispose()
    # A record an older slsbot wrote after that (no hash) joins the chain at the next write.
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO audit_record (at, actor, action, target, result) "
            "VALUES ('2026-03-02 10:00:00.000000', 'admin:bb', 'POST /y', NULL, '200')"
        )
    engine = create_store_engine(path)
    try:
        assert verdict(engine).ok and verdict(engine).checked == 6
    finally:
        engine.dispose()


def test_retention_removes_the_oldest_and_keeps_the_chain_verifiable(engine) -> None:
    write(engine, 10)  # T0, T0+1min, ... T0+9min
    with Session(engine) as session:
        removed = prune_audit(session, before=T0 + timedelta(minutes=4), now=T0 + timedelta(days=1))
    assert removed == 4
    result = verdict(engine)
    assert result.ok and result.checked == 6
    with Session(engine) as session:
        assert [row.id for row in iter_audit(session)] == [5, 6, 7, 8, 9, 10]
        anchor = session.get(AuditAnchor, 1)
        assert anchor is not None and (anchor.last_id, anchor.pruned) == (4, 4)
    write(engine, 2, start=T0 + timedelta(hours=1))
    assert verdict(engine).ok and verdict(engine).checked == 8
    # Everything pruned: the next record still continues the chain from the anchor.
    with Session(engine) as session:
        assert prune_audit(session, before=T0 + timedelta(days=2), now=T0 + timedelta(days=2)) == 8
        assert list_audit(session) == []
    assert verdict(engine).ok
    write(engine, 1, start=T0 + timedelta(days=3))
    result = verdict(engine)
    assert result.ok and result.head.last_id == 13


def test_retention_refuses_to_prune_a_broken_chain(engine, db_path: Path) -> None:
    write(engine, 5)
    raw(db_path, "UPDATE audit_record SET actor = 'admin:ffffffff' WHERE id = 2")
    with Session(engine) as session, pytest.raises(AuditChainBroken, match="audit record 2"):
        prune_audit(session, before=T0 + timedelta(minutes=3), now=T0 + timedelta(days=1))
    with Session(engine) as session:
        assert len(list(iter_audit(session))) == 5  # nothing removed: the break is still there to see
