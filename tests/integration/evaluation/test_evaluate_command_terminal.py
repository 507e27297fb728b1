"""``slsbot evaluate`` as a person runs it in a terminal: stderr is a pseudo-terminal, and each stage of a long
evaluation (the lookahead check, then the backtests) shows a progress bar there; the summary goes to stdout."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest
from tests.integration.backtest.test_backtest_command_terminal import read_terminal

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # a minute: make test-long


def test_a_long_evaluation_shows_a_progress_bar_per_stage_on_a_terminal(repo_root) -> None:
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    args = ["--config", "examples/evaluate/ensemble-ml-btc-eth.yaml", "--from", "2025-06-01", "--to", "2025-08-01"]
    process = subprocess.Popen(
        [sys.executable, "-m", "slsbot.interfaces.cli", "evaluate", *args, "--folds", "2"],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
    )
    os.close(secondary)
    try:
        terminal = read_terminal(primary, process, timeout=600)
        stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(primary)
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, terminal
    assert "lookahead:" in terminal and "runs/s" in terminal
    assert "backtests:" in terminal and "candles/s" in terminal
    assert "held out 2025-06-01T00:00:00Z -> 2025-08-01T00:00:00Z, 2 folds" in stdout
    assert "  buy-and-hold " in stdout
