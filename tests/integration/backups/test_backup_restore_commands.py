"""``slsbot backup run`` and ``slsbot restore`` on a local layout with a real restic: the restore refuses while the
runtime (or slsbot up) runs and changes nothing then; otherwise it puts the snapshot back and keeps the old file."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session
from tests.fakes.test_secrets import BACKUP_RESTORE_RESTIC_PASSWORD as RESTIC_PASSWORD

from slsbot.adapters.state_folder import claim_state_folder
from slsbot.adapters.store import RuntimeRecord, create_store_engine, save_runtime_record
from slsbot.interfaces.cli import main
from slsbot_runtime.domain.types import Fill, Order, OrderStatus, Side
from slsbot_runtime.persistence.store import StateStore

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("restic") is None, reason="no restic binary: apt-get install restic"),
]


SCHEDULE = """\
apiVersion: slsbot.io/v1alpha1
kind: BackupSchedule
metadata:
  name: hourly
  namespace: trading
spec:
  repository: {repository}
  passwordSecretRef: {{name: restic, key: password}}
"""


def write_trades(path: Path, first: int, last: int) -> None:
    store = StateStore.open(path)
    try:
        for i in range(first, last):
            cid = f"o-{i}"
            store.stage_order(Order(cid, "BTC/USDT", Side.BUY, 0.01, status=OrderStatus.FILLED, filled_quantity=0.01))
            store.stage_fill(Fill(f"f-{i}", cid, "BTC/USDT", Side.BUY, 0.01, 100.0 + i, 0.01, "USDT", 1_000 + i))
            store.commit()
    finally:
        store.close()


def orders_in(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    state_dir = tmp_path / "state"
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "backup.yaml").write_text(SCHEDULE.format(repository=tmp_path / "repo"))
    secret = state_dir / "secrets" / "trading" / "restic"
    secret.mkdir(parents=True)
    (secret / "password").touch(mode=0o600)  # a Secret as mounted: owner-only (the secret scan skips those)
    (secret / "password").write_text(RESTIC_PASSWORD + "\n")
    (secret / "password").chmod(0o400)  # as a mounted Secret: the secret scan skips owner-only files
    state = state_dir / "trading" / "btc" / "state.db"
    write_trades(state, 0, 5)
    return {"state_dir": state_dir, "folder": folder, "state": state}


def common(layout: dict[str, Path]) -> list[str]:
    return ["-f", str(layout["folder"]), "--namespace", "trading", "--state-dir", str(layout["state_dir"])]


def test_restore_refuses_a_running_runtime_then_restores_and_keeps_the_old_file(
    layout: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    state_root = layout["state_dir"] / "trading"
    assert main(["backup", "run", "--job", "backup", "--state-root", str(state_root), *common(layout)]) == 0
    write_trades(layout["state"], 5, 8)  # the bot traded on after the backup
    assert orders_in(layout["state"]) == 8

    # a runtime runs for the strategy, as the supervisor's database records it
    config = layout["state"].parent / "runtime.yaml"
    config.write_text("{}\n")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(config)])
    engine = create_store_engine(layout["state_dir"] / "supervisor.db")
    try:
        with Session(engine) as session:
            record = RuntimeRecord(namespace="trading", name="btc", pid=sleeper.pid, config_path=str(config))
            save_runtime_record(session, record=record, now=datetime.now(UTC))
        capfd.readouterr()
        assert main(["restore", "--strategy", "btc", *common(layout)]) == 1
        err = capfd.readouterr().err
        assert f"the runtime of trading/btc is running (pid {sleeper.pid})" in err
        assert "stop slsbot up first" in err
        assert orders_in(layout["state"]) == 8  # nothing changed
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
        engine.dispose()

    # slsbot up holds the state folder: refused too
    claim = claim_state_folder(layout["state_dir"])
    try:
        assert main(["restore", "--strategy", "btc", *common(layout)]) == 1
        assert "slsbot up is running" in capfd.readouterr().err
    finally:
        claim.release()
    assert orders_in(layout["state"]) == 8

    assert main(["restore", "--strategy", "btc", "--snapshot", "nope", *common(layout)]) == 1
    assert "--snapshot nope: no state snapshot of trading/btc matches" in capfd.readouterr().err

    assert main(["restore", "--strategy", "btc", "--snapshot", "latest", *common(layout)]) == 0
    out = capfd.readouterr().out
    assert "restored" in out and "kept aside" in out
    assert orders_in(layout["state"]) == 5  # the snapshot's state
    aside = list(layout["state"].parent.glob("state.db.before-restore-*"))
    assert [p.name.endswith(("-wal", "-shm")) for p in aside].count(False) == 1
    kept = next(p for p in aside if not p.name.endswith(("-wal", "-shm")))
    assert orders_in(kept) == 8  # the file it replaced, whole
    assert not list(layout["state"].parent.glob(".restore-*"))
    assert RESTIC_PASSWORD not in out + capfd.readouterr().err


def test_backup_run_without_the_password_secret_fails_naming_it(
    layout: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    (layout["state_dir"] / "secrets" / "trading" / "restic" / "password").unlink()
    assert main(["backup", "run", "--job", "backup", *common(layout)]) == 1
    out = capfd.readouterr().out
    assert '"outcome": "Failed"' in out
    assert "Secret trading/restic key password" in out
