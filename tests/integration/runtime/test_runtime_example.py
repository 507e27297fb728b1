"""examples/runtime/replay-btc.yaml runs exactly as examples/README.md shows: to the end, exit 0, a report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_replay_example_runs_to_the_end_and_reports(kit: Any, repo_root: Path, tmp_path: Path) -> None:
    runtime = kit.start(repo_root / "examples" / "runtime" / "replay-btc.yaml", tmp_path / "replay.db", "--until-end")
    assert runtime.wait(timeout=300) == 0
    report = kit.report(runtime.state)
    assert len(report["orders"]) > 100
    assert {o["symbol"] for o in report["orders"]} == {"BTC/USDT"}
    assert all(re.fullmatch(r"sls[0-9a-f]{8}-[0-9a-f]{24}", o["client_order_id"]) for o in report["orders"])
    assert len({o["client_order_id"][:12] for o in report["orders"]}) == 1  # one strategy's tag
    curve = report["equity_curve"]
    assert curve[0]["ts"] < 1_514_764_800_000 < 1_640_995_200_000 < curve[-1]["ts"]  # 2017 ... 2022
    # state.equityRetention: every hour of the last 7 days, at most 10,000 older rows (plus a day not yet thinned)
    assert len(curve) <= 7 * 24 + 25 + 10_000
    newest = [point["ts"] for point in curve[-7 * 24 :]]
    assert newest == list(range(newest[0], newest[0] + 7 * 24 * 3_600_000, 3_600_000))
