"""The process table as the local process backend needs it: handles on runtime processes (started here, or
adopted from an earlier supervisor), liveness through ``/proc``, free ports, and signals to a process group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from slsbot.domain.errors import BackendUnavailable

LOCALHOST = "127.0.0.1"


class ChildProcess:
    """A runtime this supervisor started: its exit code is known."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid

    def alive(self) -> bool:
        return self._popen.poll() is None

    @property
    def exit_code(self) -> int | None:
        return self._popen.returncode


class AdoptedProcess:
    """A runtime started by an earlier supervisor: only its liveness can be seen, not its exit code."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def alive(self) -> bool:
        return pid_runs(self.pid)

    @property
    def exit_code(self) -> int | None:
        return None


def pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust the signal
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """Whether a server could listen on ``port`` (with SO_REUSEADDR, as HTTP servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOCALHOST, *, avoid: Sequence[int] = ()) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        if port not in avoid:
            return port
    raise BackendUnavailable(f"no free port on {host}")


def signal_group(pid: int | None, sig: signal.Signals) -> None:
    """Signal the runtime's process group (it leads its own session), or the pid alone if the group is gone."""
    if pid is None:
        return
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    except PermissionError as exc:
        raise BackendUnavailable(f"cannot signal runtime pid {pid}: {exc}") from exc
