"""``slsbot runtime`` as a process: health, readiness, status, metrics, orders, pause/resume, shutdown."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from slsbot.api import RiskPolicySpec

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_serves_trades_pauses_and_resumes(kit: Any, btc_slice_dir: Path, tmp_path: Path) -> None:
    config = kit.runtime_config(btc_slice_dir, secondsPerCandle=0.004, loop=True, warmupCandles=150)
    started = time.time()
    runtime = kit.start(kit.write_config(tmp_path, config), tmp_path / "state.db")

    assert runtime.get("/healthz").status_code == 200
    first_ready = runtime.get("/readyz")
    assert first_ready.status_code == 503  # 150 candles of warmup at 4 ms each: not ready yet
    assert first_ready.json()["phase"] in ("starting", "reconciling", "warming_up")
    kit.wait_for(lambda: runtime.get("/readyz").status_code == 200, what="/readyz 200")

    trades = kit.wait_for(lambda: runtime.status()["trade_count"] >= 4 and runtime.status(), what="trades")
    assert trades["phase"] == "running" and trades["name"] == "it-btc" and trades["paused"] is False
    assert set(trades) >= {
        "name",
        "phase",
        "equity",
        "cash",
        "open_positions",
        "trade_count",
        "orders_total",
        "last_candle_ts",
        "heartbeat",
        "paused",
        "starting_equity",
        "return_pct",
        "realized_pnl",
        "unrealized_pnl",
        "closed_trades",
        "win_rate_pct",
        "drawdown_pct",
        "max_drawdown_pct",
        "idle_reason",
        "idle_message",
    }
    assert trades["heartbeat"].endswith("Z") and trades["starting_equity"] == 10_000
    assert trades["return_pct"] == pytest.approx((trades["equity"] / 10_000 - 1) * 100)
    # each order and fill is one line of the runtime's log, naming the strategy
    log = kit.wait_for(lambda: "default/it-btc: fill: " in (text := runtime.stderr()) and text, what="a fill line")
    assert "default/it-btc: order sent: buy " in log
    kit.wait_for(lambda: runtime.status()["trade_count"] > trades["trade_count"], what="trade_count to grow")

    metrics = runtime.get("/metrics").text
    for name in (
        "slsbot_runtime_candles_processed_total",
        "slsbot_runtime_decision_latency_seconds_bucket",
        'slsbot_runtime_orders{status="filled"}',
        "slsbot_runtime_equity",
        "slsbot_runtime_feed_gaps_total",
        "slsbot_runtime_loop_heartbeat_timestamp_seconds",
    ):
        assert name in metrics
    # what the alerts read (charts/slsbot/files/prometheus-rules.yaml): the start time, the risk manager's state
    values = {s.name: s.value for f in text_string_to_metric_families(metrics) for s in f.samples if not s.labels}
    assert started - 1 <= values["slsbot_runtime_start_time_seconds"] <= time.time()
    assert values["slsbot_runtime_drawdown_limit_percent"] == RiskPolicySpec().max_drawdown_percent
    assert values["slsbot_runtime_drawdown_percent"] >= 0 and values["slsbot_runtime_kill_switch"] == 0
    assert values["slsbot_runtime_breaker_level"] in (0, 1, 2, 3)

    orders = kit.wait_for(lambda: len(runtime.get("/orders?limit=3").json()) == 3 and runtime.get("/orders?limit=3"))
    listed = orders.json()
    assert [o["created_at"] for o in listed] == sorted((o["created_at"] for o in listed), reverse=True)
    assert set(listed[0]) == {
        "client_order_id",
        "symbol",
        "side",
        "quantity",
        "filled_quantity",
        "status",
        "created_at",
        "updated_at",
    }
    assert runtime.get("/orders?limit=0").status_code == 400
    assert "limit" in runtime.get("/orders?limit=x").json()["error"]

    assert runtime.post("/pause").json() == {"paused": True}
    paused = runtime.status()
    assert paused["paused"] is True and paused["phase"] in ("paused", "warming_up")
    assert paused["idle_reason"] in ("Paused", "WarmingUp")
    entries_before = _entries(runtime)
    kit.wait_for(
        lambda: runtime.status()["last_candle_ts"] > paused["last_candle_ts"] + 100 * 3_600_000,
        what="100 candles while paused",
    )
    assert _entries(runtime) == entries_before  # exits may happen, entries do not
    assert runtime.post("/resume").json() == {"paused": False}
    kit.wait_for(lambda: _entries(runtime) > entries_before, what="an entry after resume")

    assert runtime.post("/shutdown", {"cancelOrders": True, "flatten": False}).status_code == 202
    drained = _stays_up_drained(kit, runtime)
    assert drained["open_orders"] == 0 and drained["drain"] == {"cancelOrders": True, "flatten": False}
    final = kit.report(runtime.state)
    assert all(o["status"] in ("filled", "canceled", "rejected") for o in final["orders"])
    assert "flatten at shutdown" not in [o["reason"] for o in final["orders"]]


def test_shutdown_with_flatten_leaves_no_position(kit: Any, btc_slice_dir: Path, tmp_path: Path) -> None:
    config = kit.runtime_config(btc_slice_dir, secondsPerCandle=0.05, loop=True)
    config["ensemble"]["members"][0]["params"] = {"fast": 20, "slow": 60}  # positions last dozens of candles
    runtime = kit.start(kit.write_config(tmp_path, config), tmp_path / "state.db")
    kit.wait_for(lambda: runtime.status()["open_positions"] == 1, what="an open position")
    bad = runtime.post("/shutdown", {"flatten": "yes"})
    assert bad.status_code == 400 and "flatten" in bad.json()["error"]
    assert runtime.status()["phase"] == "running"  # a rejected request changes nothing
    assert runtime.post("/shutdown", {"cancelOrders": True, "flatten": True}).status_code == 202
    drained = _stays_up_drained(kit, runtime)
    assert drained["open_positions"] == 0 and drained["open_orders"] == 0
    final = kit.report(runtime.state)
    assert final["summary"]["open_positions"] == 0
    assert all(o["status"] in ("filled", "canceled", "rejected") for o in final["orders"])
    assert final["orders"][-1]["reason"] == "flatten at shutdown"
    assert final["orders"][-1]["status"] == "filled"


def _stays_up_drained(kit: Any, runtime: Any) -> dict[str, Any]:
    """After a drain the runtime reports ``drained`` and stays up, trading nothing, until SIGTERM (exit 0)."""
    drained = kit.wait_for(lambda: (s := runtime.status())["phase"] == "drained" and s, what="phase drained")
    assert runtime.get("/readyz").status_code == 200 and runtime.get("/healthz").status_code == 200
    assert runtime.process.poll() is None
    assert runtime.post("/pause").status_code == 503  # nothing left to pause
    assert runtime.status()["trade_count"] == drained["trade_count"]
    runtime.process.send_signal(signal.SIGTERM)
    assert runtime.wait() == 0
    return drained


def _entries(runtime: Any) -> int:
    return sum(1 for o in runtime.get("/orders?limit=1000").json() if o["side"] == "buy")


def test_sigterm_stops_cleanly(kit: Any, btc_slice_dir: Path, tmp_path: Path) -> None:
    config = kit.runtime_config(btc_slice_dir, secondsPerCandle=0.002, loop=True)
    runtime = kit.start(kit.write_config(tmp_path, config), tmp_path / "state.db")
    kit.wait_for(lambda: kit.cursor_of(runtime.state) > 0, what="a first commit")
    runtime.process.send_signal(signal.SIGTERM)
    assert runtime.wait(timeout=60) == 0
    status_at_stop = kit.report(runtime.state)["summary"]
    assert status_at_stop["cursor"]["BTC/USDT"] >= kit.cursor_of(runtime.state) > 0
    assert "default/it-btc: stopped after " in runtime.stderr()


@pytest.mark.long  # about 20-30 s: in make test-long, to keep make test under 15 minutes
def test_a_restarted_runtime_resumes_without_resending(kit: Any, btc_slice_dir: Path, tmp_path: Path) -> None:
    # Paced (2 ms a candle, 10 s for the 5,000), so that the first part can be stopped after 20 of its orders: at full
    # speed the whole replay can end before the shutdown request arrives.
    config_path = kit.write_config(tmp_path, kit.runtime_config(btc_slice_dir, secondsPerCandle=0.002))
    whole = kit.start(config_path, tmp_path / "whole.db", "--until-end")
    assert whole.wait() == 0
    expected = kit.report(whole.state)

    first = kit.start(config_path, tmp_path / "parts.db")
    kit.wait_for(lambda: first.status()["orders_total"] >= 20, what="20 orders")
    assert first.post("/shutdown", {}).status_code == 202  # stop, keeping orders and positions
    assert first.wait() == 0
    before = kit.report(first.state)
    assert 20 <= len(before["orders"]) < len(expected["orders"])

    second = kit.start(config_path, tmp_path / "parts.db", "--until-end")
    assert second.wait() == 0
    log = second.stderr()
    assert " 0 resent" in log
    after = kit.report(second.state)
    ids = [o["client_order_id"] for o in after["orders"]]
    assert len(ids) == len(set(ids))
    # the orders of the candles already processed are the same orders (same ids, same decisions)
    for old, new in zip(before["orders"], after["orders"], strict=False):
        assert (old["client_order_id"], old["side"], old["quantity"], old["created_ts"]) == (
            new["client_order_id"],
            new["side"],
            new["quantity"],
            new["created_ts"],
        )
    assert after == expected

    third = kit.start(config_path, tmp_path / "parts.db", "--until-end")  # nothing left to do
    assert third.wait() == 0
    assert "the feed ended after 0 candles" in third.stderr()
    assert kit.report(third.state) == expected


def test_bad_config_exits_2_naming_the_field(kit: Any, btc_slice_dir: Path, tmp_path: Path) -> None:
    import subprocess

    config = kit.runtime_config(btc_slice_dir)
    config["account"]["paper"]["feeRate"] = 0.5
    config["marketData"]["secondsPerCandel"] = 1
    path = kit.write_config(tmp_path, config)
    done = subprocess.run(
        [*kit.slsbot, "runtime", "--config", str(path)], capture_output=True, text=True, env=kit.env(), timeout=120
    )
    assert done.returncode == 2
    assert "account.paper.feeRate: Input should be less than or equal to 0.05" in done.stderr
    assert "marketData.secondsPerCandel: unknown field" in done.stderr
    missing = subprocess.run(
        [*kit.slsbot, "runtime", "--config", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        env=kit.env(),
        timeout=120,
    )
    assert missing.returncode == 2 and "--config: cannot read" in missing.stderr
