"""SIGINT stops `slsbot up` cleanly: exit code 0 and no runtime process left. The generated token is printed
once on stdout, works, and is never logged."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def test_sigint_stops_every_runtime_and_exits_0(tmp_path: Path, kit, secret_scan) -> None:
    running = kit.start(kit.write_manifests(tmp_path / "manifests"), tmp_path / "state", kit.environment())
    secret_scan.register(running.token, name="generated admin token")
    try:
        assert running.stdout_lines[1].startswith("admin token (admin role, generated; slsbot get reads it from ")
        pids = kit.wait_for(
            lambda: (
                (s := running.strategies()) and all(v["pid"] for v in s.values()) and [v["pid"] for v in s.values()]
            ),
            timeout=120,
            interval=0.25,
            what="both runtimes started",
        )
        assert len(pids) == 2
    finally:
        code = running.stop(signal.SIGINT)
    assert code == 0
    assert [pid for pid in pids if _alive(pid)] == []
    log = running.log_path.read_text()
    assert running.token not in log
    assert "stopped cleanly" in log
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and str(tmp_path) in _cmdline(p)]
    assert leftovers == []


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
