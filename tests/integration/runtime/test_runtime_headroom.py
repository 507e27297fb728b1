"""``POST /headroom`` on a real ``slsbot runtime`` process (paced replay of real BTC candles): bad input changes
nothing; a headroom is in the state file before the answer; ``halt_entries`` stops entries until the headroom expires,
then the runtime trades on its own policy limits again (a control plane that went away); the kill switch cancels and
flattens before the answer and holds across a restart."""

from __future__ import annotations

import json
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HOUR = 3_600_000


def stored_headroom(state: Path) -> dict[str, Any] | None:
    connection = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
    try:
        row = connection.execute("SELECT value FROM meta WHERE key = 'headroom'").fetchone()
    finally:
        connection.close()
    return None if row is None else json.loads(row[0])


def headroom(seconds: float, **changes: Any) -> dict[str, Any]:
    expires = datetime.now(UTC) + timedelta(seconds=seconds)
    return {
        "scope": "account",
        "policy": "acct-risk",
        "total_exposure": None,
        "symbol_exposure": {},
        "halt_entries": False,
        "size_multiplier": 1.0,
        "kill_switch": False,
        "reason": "test",
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
        **changes,
    }


def buys_after(runtime: Any, ts: int) -> list[dict[str, Any]]:
    since = datetime.fromtimestamp(ts / 1000, UTC).isoformat().replace("+00:00", "Z")
    return [o for o in runtime.get("/orders?limit=1000").json() if o["side"] == "buy" and o["created_at"] > since]


@pytest.mark.long  # about 20-30 s: in make test-long, to keep make test under 15 minutes
def test_headroom_halts_entries_until_it_expires_and_the_kill_switch_flattens_at_once(
    kit: Any, btc_slice_dir: Path, tmp_path: Path
) -> None:
    config_path = kit.write_config(tmp_path, kit.runtime_config(btc_slice_dir, secondsPerCandle=0.004, loop=True))
    state = tmp_path / "state.db"
    runtime = kit.start(config_path, state)
    status = kit.wait_for(lambda: (s := runtime.status())["trade_count"] >= 2 and s, what="trades")
    assert status["headroom"] is None
    assert {"exposure", "total_exposure", "pnl_today", "equity_day_start"} <= set(status)

    for body, field in (
        (headroom(30, scope="cluster"), "scope:"),
        (headroom(30, size_multiplier=0), "size_multiplier:"),
        (headroom(30, expires_at="soon"), "expires_at:"),
        ({"scope": "account"}, "policy: missing"),
    ):
        refused = runtime.post("/headroom", body)
        assert refused.status_code == 400 and refused.json()["error"].startswith(field), refused.json()
    assert runtime.status()["headroom"] is None and stored_headroom(state) is None

    # halted for 3 s of wall time (hundreds of candles at 4 ms each): no entry; then its own limits again
    answer = runtime.post("/headroom", headroom(3, halt_entries=True, reason="account daily loss"))
    assert answer.status_code == 200 and answer.json()["halt_entries"] is True
    assert stored_headroom(state)["halt_entries"] is True  # read right after the answer: written before it
    halted_from = runtime.status()["last_candle_ts"] + 2 * HOUR  # an order already on its way may still go out
    shown = kit.wait_for(lambda: (s := runtime.status())["headroom"]["expired"] and s, timeout=30, what="expiry")
    assert shown["headroom"]["reason"] == "account daily loss"
    expired_at = shown["last_candle_ts"]
    assert expired_at > halted_from + 100 * HOUR  # hundreds of candles went by while it was in force
    assert [o for o in buys_after(runtime, halted_from) if o["created_at"] <= _iso(expired_at - HOUR)] == []
    kit.wait_for(lambda: buys_after(runtime, expired_at), timeout=60, what="entries again after the expiry")

    # the kill switch: orders cancelled and positions closed before the answer; halted, also after a restart
    kit.wait_for(lambda: runtime.status()["open_positions"] >= 1, timeout=60, what="a position to close")
    killed = runtime.post("/headroom", headroom(30, kill_switch=True, reason="killSwitch on acct-risk"))
    assert killed.status_code == 200
    assert (killed.json()["open_orders"], killed.json()["open_positions"]) == (0, 0)
    status = kit.wait_for(lambda: (s := runtime.status())["phase"] == "halted" and s, timeout=10, what="halted")
    assert status["open_positions"] == 0 and status["exposure"] == {} and status["total_exposure"] == 0
    runtime.process.send_signal(signal.SIGKILL)
    runtime.wait(timeout=30)
    restarted = kit.start(config_path, state)
    again = kit.wait_for(
        lambda: (s := restarted.status())["phase"] == "halted" and s, timeout=60, what="halted after the restart"
    )
    assert again["headroom"]["kill_switch"] is True and again["open_positions"] == 0


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
