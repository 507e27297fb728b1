"""``POST /allocation`` and ``GET /performance`` on a real ``slsbot runtime`` process: the override is in the state
file before the answer, survives a SIGKILL and a restart, sizes the entries; bad input changes nothing."""

from __future__ import annotations

import json
import signal
import sqlite3
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HOUR = 3_600_000


def stored_allocation(state: Path) -> dict[str, Any] | None:
    """The ``allocation`` meta entry as the state file holds it now (read-only, beside the runtime)."""
    connection = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
    try:
        row = connection.execute("SELECT value FROM meta WHERE key = 'allocation'").fetchone()
    finally:
        connection.close()
    return None if row is None else json.loads(row[0])


def test_an_override_is_persisted_before_the_answer_survives_a_kill_and_zero_leaves_the_runtime_flat(
    kit: Any, btc_slice_dir: Path, tmp_path: Path
) -> None:
    config = kit.runtime_config(btc_slice_dir, secondsPerCandle=0.004, loop=True)
    config["allocationPercent"] = 80
    config_path = kit.write_config(tmp_path, config)
    state = tmp_path / "state.db"
    runtime = kit.start(config_path, state)
    status = kit.wait_for(lambda: (s := runtime.status())["trade_count"] >= 2 and s, what="trades")
    assert status["allocation"] == {"percent": 80, "source": "spec", "specPercent": 80}

    # bad input: 400 naming the field and the fix, nothing changed
    for body, field in (
        ({"percent": 150}, "percent: 150 is outside 0..100"),
        ({"percent": "25"}, "percent: '25' is not a number"),
        ({"percent": True}, "percent: True is not a number"),
        ({}, "percent: missing"),
        ({"percent": 25, "pct": 25}, "pct: unknown field"),
        ([25], "body: expected a JSON object"),
    ):
        refused = runtime.post("/allocation", body)
        assert refused.status_code == 400, body
        assert refused.json()["error"].startswith(field), refused.json()
    not_json = httpx.post(
        runtime.base_url + "/allocation", content=b"{percent", headers=runtime._headers(), trust_env=False
    )
    assert not_json.status_code == 400 and not_json.json()["error"].startswith("body: not JSON")
    assert runtime.status()["allocation"]["source"] == "spec"
    assert (stored_allocation(state) or {}).get("override") is None
    unauthorized = httpx.post(runtime.base_url + "/allocation", json={"percent": 1}, trust_env=False)
    assert unauthorized.status_code == 401
    assert runtime.get("/performance?since=soon").status_code == 400
    assert runtime.get("/performance?since=-1").json()["error"].startswith("since: must be between 0")

    answer = runtime.post("/allocation", {"percent": 25})
    assert answer.status_code == 200 and answer.json() == {"allocationPercent": 25, "source": "controller"}
    stored = stored_allocation(state)  # read right after the answer: written before it
    assert stored is not None and stored["override"] == 25 and stored["changes"][-1][1] == 25
    changed_from = stored["changes"][-1][0]
    assert runtime.status()["allocation"] == {"percent": 25, "source": "controller", "specPercent": 80}

    kit.wait_for(lambda: runtime.status()["last_candle_ts"] > changed_from + 5 * HOUR, what="more candles")
    performance = runtime.get(f"/performance?since={changed_from - 3 * HOUR}").json()
    assert performance["allocationPercent"] == 25
    periods = performance["periods"]
    assert [p[0] for p in periods] == sorted({p[0] for p in periods})  # one per candle, in order
    assert periods[0][0] == changed_from - 1 - 2 * HOUR  # the change applies after the last candle seen
    for ts, equity, allocated, _ in periods:
        assert allocated == pytest.approx(equity * (0.25 if ts >= changed_from else 0.8))
    for before, after in pairwise(periods):
        assert after[3] == pytest.approx((after[1] - before[1]) / before[2])
    assert performance["lastCandleTs"] == periods[-1][0]
    assert performance["drawdownPercent"] >= 0 and performance["breakerLevel"] == 0
    later = runtime.get(f"/performance?since={performance['lastCandleTs']}").json()
    assert all(p[0] > performance["lastCandleTs"] for p in later["periods"])

    runtime.process.send_signal(signal.SIGKILL)
    runtime.wait(timeout=30)
    restarted = kit.start(config_path, state)
    kit.wait_for(lambda: restarted.status()["phase"] == "running", what="running again")
    assert restarted.status()["allocation"] == {"percent": 25, "source": "controller", "specPercent": 80}

    # zero: the position is closed through the normal exit, nothing opens, and the trades stop counting up
    assert restarted.post("/allocation", {"percent": 0}).json() == {"allocationPercent": 0, "source": "controller"}
    idle = kit.wait_for(
        lambda: (s := restarted.status())["open_positions"] == 0 and s["idle_reason"] == "NoAllocation" and s,
        what="flat at zero allocation",
    )
    flat_at = idle["last_candle_ts"]
    kit.wait_for(lambda: restarted.status()["last_candle_ts"] > flat_at + 100 * HOUR, what="candles at zero")
    orders = restarted.get("/orders?limit=1000").json()
    assert [o for o in orders if o["side"] == "buy" and o["created_at"] > _iso(flat_at + HOUR)] == []
    assert restarted.status()["open_positions"] == 0
    performance = restarted.get("/performance").json()
    assert performance["closedTrades"] == restarted.status()["closed_trades"]
    assert performance["periods"][-1][2] == 0.0

    cleared = restarted.post("/allocation", {"percent": None})
    assert cleared.json() == {"allocationPercent": 80, "source": "spec"}
    assert stored_allocation(state)["override"] is None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
