"""Every start-up failure of a real `slsbot up` process is one line on stderr naming the path and the fix, exit code
2, no traceback, nothing started.

Tests run as root here, where file modes do not stop writes. A read-only state folder is a read-only bind mount in a
private mount namespace (`unshare -m`); an unwritable one is a mode-555 folder with the capabilities that let root
ignore modes dropped from the process (`setpriv --bounding-set`). Each case is skipped, saying why, where that tool
is not allowed.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from slsbot.adapters.control_tokens import load_or_create_control_key
from slsbot.adapters.state_folder import claim_state_folder
from slsbot.adapters.store import create_store_engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
# No Strategy: should a case wrongly start, no runtime process is left behind.
ACCOUNT = "apiVersion: slsbot.io/v1alpha1\nkind: TradingAccount\nmetadata: {name: paper}\nspec: {exchange: binance}\n"
READ_ONLY_MOUNT = ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"']
WITHOUT_ROOTS_OVERRIDES = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


def up(
    folder: Path, state: Path, *, port: int = 0, prefix: Sequence[str] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "slsbot.interfaces.cli", "up", "-f", str(folder), "--port", str(port)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SLSBOT_")}
    return subprocess.run(
        [*prefix, *command, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**environment, **(env or {})},
    )


def one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    [line] = lines
    assert line.startswith("slsbot up: ")
    for fragment in fragments:
        assert fragment in line
    return line


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "10-account.yaml").write_text(ACCOUNT)
    return folder


def holding_state(state: Path) -> Path:
    """A state folder as a previous supervisor left it: its database with the tables, and its control key."""
    create_store_engine(state / "supervisor.db").dispose()
    load_or_create_control_key(state / "control.key")
    return state


def read_only_mounts_work(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.mkdir()
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    result = subprocess.run([*READ_ONLY_MOUNT, str(probe), "touch", str(probe / "x")], capture_output=True, text=True)
    if "Read-only file system" not in result.stderr:
        pytest.skip(f"no read-only bind mount here: {result.stderr.strip()}")


def modes_stop_this_process(tmp_path: Path) -> None:
    probe = tmp_path / "probe-modes"
    probe.mkdir(mode=0o555)
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    result = subprocess.run([*WITHOUT_ROOTS_OVERRIDES, "touch", str(probe / "x")], capture_output=True, text=True)
    if "Permission denied" not in result.stderr:
        pytest.skip(f"cannot drop root's file-mode overrides here: {result.stderr.strip()}")


@pytest.mark.parametrize("previous_state", [True, False], ids=["holding-state", "empty"])
def test_a_read_only_state_folder(tmp_path: Path, folder: Path, previous_state: bool) -> None:
    read_only_mounts_work(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    if previous_state:
        holding_state(state)
    result = up(folder, state, prefix=[*READ_ONLY_MOUNT, str(state)])
    one_line(result, f"state folder {state}: cannot write in it (Read-only file system)", "--state-dir")


@pytest.mark.parametrize("previous_state", [True, False], ids=["holding-state", "empty"])
def test_an_unwritable_state_folder(tmp_path: Path, folder: Path, previous_state: bool) -> None:
    modes_stop_this_process(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    if previous_state:
        holding_state(state)
    state.chmod(0o555)
    try:
        result = up(folder, state, prefix=WITHOUT_ROOTS_OVERRIDES)
    finally:
        state.chmod(0o755)
    one_line(result, f"state folder {state}: cannot write in it (Permission denied)", "--state-dir")


def test_a_damaged_database(tmp_path: Path, folder: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "supervisor.db").write_bytes(b"not a database, whatever it was\n" * 64)
    result = up(folder, state)
    one_line(result, f"state database {state / 'supervisor.db'}: damaged or not a SQLite database", "move it aside")


def test_a_database_locked_by_another_program(tmp_path: Path, folder: Path) -> None:
    state = holding_state(tmp_path / "state")
    holder = sqlite3.connect(state / "supervisor.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = up(folder, state)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    one_line(result, f"state database {state / 'supervisor.db'}: locked by another program", "--state-dir")


def test_a_state_folder_another_supervisor_uses(tmp_path: Path, folder: Path) -> None:
    state = tmp_path / "state"
    claim = claim_state_folder(state)  # as a running `slsbot up` holds it
    try:
        result = up(folder, state)
    finally:
        claim.release()
    one_line(result, f"state folder {state}: another slsbot up (pid {os.getpid()}) is using it", "--state-dir")


def test_a_state_folder_that_is_a_file(tmp_path: Path, folder: Path) -> None:
    state = tmp_path / "state"
    state.write_text("")
    one_line(up(folder, state), f"state folder {state}: not a folder", "--state-dir")


def test_a_busy_port(tmp_path: Path, folder: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = up(folder, tmp_path / "state", port=port)
    one_line(result, f"cannot listen on 127.0.0.1:{port}", "--port")
    assert not (tmp_path / "state").exists()


def test_a_missing_manifest_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    one_line(up(missing, tmp_path / "state"), f"{missing}: not a folder", "-f")
    assert not (tmp_path / "state").exists()
