"""``slsbot backtest`` as a person runs it in a terminal: stderr is a pseudo-terminal, and a run that lasts more
than a second (the eight-symbol ensemble in step mode over three months: 17,664 candles, several seconds even
on a fast machine) shows a progress bar there; the summary on stdout gives returns in percent."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def read_terminal(primary: int, process: subprocess.Popen, *, timeout: float) -> str:
    """Everything written to the terminal until the process closes it, within ``timeout`` seconds."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif process.poll() is not None:
            break
    return b"".join(chunks).decode(errors="replace")


def test_a_long_backtest_shows_a_progress_bar_on_a_terminal_and_percent_in_its_summary(repo_root) -> None:
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 24 rows, 120 columns
    args = ["--config", "examples/backtest/ensemble-8-symbols.yaml", "--from", "2025-06-01", "--to", "2025-09-01"]
    args += ["--mode", "step"]  # fast mode would finish before a second is up
    process = subprocess.Popen(
        [sys.executable, "-m", "slsbot.interfaces.cli", "backtest", *args],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
    )
    os.close(secondary)
    try:
        terminal = read_terminal(primary, process, timeout=240)
        stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(primary)
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, terminal
    assert "backtest:" in terminal and "candles/s" in terminal and "/17.7k" in terminal
    assert "17,664 candles" in stdout and "(step mode)" in stdout
    assert "  total return    " in stdout and stdout.split("total return")[1].split("\n")[0].strip().endswith("%")
