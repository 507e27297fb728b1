"""A replay run killed with SIGKILL at random moments and restarted each time ends with exactly the same
orders, fills, positions and equity as an uninterrupted run."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOUR = 3_600_000


@pytest.mark.long  # about 20-30 s: in make test-long, to keep make test under 15 minutes
def test_sigkill_at_random_moments_changes_nothing(kit: Any, btc_slice_dir: Path, tmp_path: Path) -> None:
    # small volume participation: orders fill over several candles, so kills also land between partial fills.
    # Paced (1 ms a candle, about 5 s for the slice) so that each kill lands in its fifth of the data: at full speed a
    # restarted runtime can pass its target and the end of the replay between two looks at its cursor.
    config = kit.runtime_config(btc_slice_dir, secondsPerCandle=0.001)
    config["account"]["paper"]["maxVolumeParticipation"] = 0.00002
    config_path = kit.write_config(tmp_path, config)

    whole = kit.start(config_path, tmp_path / "whole.db", "--until-end")
    assert whole.wait() == 0
    expected = kit.report(whole.state)
    assert len(expected["orders"]) > 30 and len(expected["fills"]) > len(expected["orders"])
    first_ts = expected["equity_curve"][0]["ts"]
    last_ts = expected["equity_curve"][-1]["ts"]

    state = tmp_path / "killed.db"
    rng = random.Random(20180208)
    kills = 5
    killed_at = []
    for k in range(kills):
        # a random point in the k-th fifth of the data (progress read from the state file's cursor)
        target = first_ts + (last_ts - first_ts) * (k + rng.uniform(0.1, 0.9)) / kills
        runtime = kit.start(config_path, state, "--until-end")
        deadline = time.monotonic() + 120
        while kit.cursor_of(state) < target and runtime.process.poll() is None and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.0, 0.01))
        runtime.process.send_signal(signal.SIGKILL)
        runtime.wait(timeout=30)
        killed_at.append(kit.cursor_of(state))
    assert killed_at == sorted(killed_at) and killed_at[-1] < last_ts  # each kill landed mid-run

    final = kit.start(config_path, state, "--until-end")
    assert final.wait() == 0
    result = kit.report(state)
    for key in ("orders", "fills", "positions", "equity_curve", "summary"):
        assert result[key] == expected[key], key

    # The kills above land just after a commit (that is when the cursor moves). These land a random instant (0-50 ms)
    # after the runtime is seen working on new candles, so between commits: some fall between sending an order and
    # committing what followed. They are timed from the runtime's own progress, not from how long the uninterrupted
    # run took: under a changing load a run can take half as long as it did, and a kill timed from that may miss.
    wall = tmp_path / "wall.db"
    mid_run = 0
    for _ in range(10):
        runtime = kit.start(config_path, wall, "--until-end")
        before = kit.cursor_of(wall)
        deadline = time.monotonic() + 60
        while kit.cursor_of(wall) <= before and runtime.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.05))  # the random kill instant itself, not a wait for something
        finished = runtime.process.poll() is not None
        if not finished:
            mid_run += 1
            runtime.process.send_signal(signal.SIGKILL)
        runtime.wait(timeout=30)
        if finished or mid_run == 3:
            break
    assert mid_run >= 1, "no kill landed while the runtime was working on new candles"
    final = kit.start(config_path, wall, "--until-end")
    assert final.wait() == 0
    result = kit.report(wall)
    for key in ("orders", "fills", "positions", "equity_curve", "summary"):
        assert result[key] == expected[key], key
