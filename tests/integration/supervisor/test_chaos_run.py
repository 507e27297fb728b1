"""``python -m e2e.chaos`` for a minute with two bots: ``slsbot up`` with testnet bots on the fake exchange behind
the fault proxy, runtimes SIGKILLed, feeds stalled, exchange calls failing. Nothing may be lost or duplicated, every
killed runtime comes back and trades, and the report says what was injected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # minutes: make test-long


def test_a_one_minute_chaos_run_with_two_bots_loses_and_duplicates_no_order(tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    command = [sys.executable, "-m", "e2e.chaos", "--minutes", "1", "--bots", "2", "--seed", "7"]
    done = subprocess.run(
        [*command, "--workdir", str(tmp_path / "run"), "--json", str(report_file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    report = json.loads(report_file.read_text())
    assert report["ok"] is True
    assert report["orders"]["lost"] == 0 and report["orders"]["duplicated"] == 0
    assert report["orders"]["sent"] > 0, "no bot traded: the run proved nothing"
    injected = report["faults_injected"]
    assert injected["runtime_kill"] >= 1 and injected["feed_stall"] >= 1
    assert sum(injected[k] for k in ("timeout", "http_5xx", "rate_limit", "drop_before", "drop_after")) > 0
    assert report["kills_not_back"] == 0 and len(report["kill_to_trading_s"]) == injected["runtime_kill"]
    assert "seed: 7 (replay: python -m e2e.chaos --minutes 1 --bots 2 --seed 7)" in done.stdout
    assert "orders: " in done.stdout and "lost 0, duplicated 0" in done.stdout
