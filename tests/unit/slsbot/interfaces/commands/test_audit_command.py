"""``slsbot audit verify|export`` over a real store file: OK with the count and the head, the first broken record
named with a non-zero exit, JSON lines oldest first (from ``--since``), and clear errors for no store, a store from
before the chain and a bad ``--since``. The retention pass of ``slsbot up`` keeps ``verify`` green."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from slsbot.adapters.store import create_store_engine, record_audit
from slsbot.interfaces.cli import main
from slsbot.interfaces.commands.up import run_audit_retention

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    engine = create_store_engine(folder / "supervisor.db")
    with Session(engine) as session:
        for offset in range(4):
            record_audit(
                session,
                actor="operator:3fa1b2c4",
                action="POST /api/v1/strategies/{name}/pause",
                target=f"Strategy default/s{offset}",
                result="200",
                now=T0 + timedelta(days=offset),
            )
    engine.dispose()
    return folder


def test_verify_prints_ok_with_the_count(state_dir: Path, capsys) -> None:
    assert main(["audit", "verify", "--state-dir", str(state_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("audit chain OK: 4 records in ") and "head record 4 hash " in out


def test_verify_names_the_first_broken_record_and_fails(state_dir: Path, capsys) -> None:
    with sqlite3.connect(state_dir / "supervisor.db") as db:
        db.execute("UPDATE audit_record SET target = 'Strategy default/other' WHERE id = 2")
        db.execute("DELETE FROM audit_record WHERE id = 3")
    assert main(["audit", "verify", "--database", str(state_dir / "supervisor.db")]) == 1
    out = capsys.readouterr().out
    assert "audit chain BROKEN" in out
    assert "audit record 2: its fields do not match its hash (changed after it was written)" in out


def test_export_writes_json_lines_oldest_first(state_dir: Path, capsys) -> None:
    assert main(["audit", "export", "--state-dir", str(state_dir)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["id"] for line in lines] == [1, 2, 3, 4]
    assert lines[0] == {
        "id": 1,
        "at": "2026-03-01T12:00:00Z",
        "actor": "operator:3fa1b2c4",
        "action": "POST /api/v1/strategies/{name}/pause",
        "target": "Strategy default/s0",
        "result": "200",
        "prev_hash": "0" * 64,
        "hash": lines[1]["prev_hash"],
    }
    assert main(["audit", "export", "--state-dir", str(state_dir), "--since", "2026-03-03"]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [3, 4]


def test_clear_errors(tmp_path: Path, state_dir: Path, capsys) -> None:
    assert main(["audit", "verify", "--state-dir", str(tmp_path / "nowhere")]) == 1
    assert "no store at" in capsys.readouterr().err
    assert main(["audit", "export", "--state-dir", str(state_dir), "--since", "last tuesday"]) == 2
    assert "--since: 'last tuesday' is not an ISO 8601 time" in capsys.readouterr().err
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as db:
        db.execute("CREATE TABLE audit_record (id INTEGER PRIMARY KEY, at DATETIME, actor VARCHAR)")
    assert main(["audit", "verify", "--database", str(old)]) == 1
    assert "start slsbot up on this state folder once" in capsys.readouterr().err


def test_the_retention_pass_keeps_the_chain_verifiable(state_dir: Path, capsys) -> None:
    engine = create_store_engine(state_dir / "supervisor.db")
    stop = threading.Event()
    stop.set()  # one pass, then return
    now = datetime.now(UTC)
    with Session(engine) as session:
        record_audit(session, actor="admin:aa", action="POST /x", target=None, result="200", now=now)
    run_audit_retention(engine=engine, keep=timedelta(days=1), stop=stop)
    engine.dispose()
    assert main(["audit", "verify", "--state-dir", str(state_dir)]) == 0
    assert capsys.readouterr().out.startswith("audit chain OK: 1 record in ")
    assert main(["audit", "export", "--state-dir", str(state_dir)]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [5]
