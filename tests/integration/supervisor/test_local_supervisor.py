"""`slsbot up` end to end with the real runtime: two strategies trade, a runtime killed with SIGKILL is back
within 5 s and resumes from its state without duplicating an order, pause/resume by role, events."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_strategies_run_and_their_trade_counts_grow(supervisor, kit) -> None:
    first = supervisor.strategies()
    assert {name: s["phase"] for name, s in first.items()} == {"btc-trend": "Running", "eth-trend": "Running"}
    for item in first.values():
        assert item["pid"] is not None and item["last_heartbeat"] is not None and item["equity"] > 0
    grown = kit.wait_for(
        lambda: all(
            (s["trade_count"] or 0) > (first[n]["trade_count"] or 0) + 1 for n, s in supervisor.strategies().items()
        ),
        timeout=60,
        interval=0.5,
        what="trade counts to grow",
    )
    assert grown


def test_a_killed_runtime_is_running_again_and_duplicates_no_order(supervisor, kit) -> None:
    # How fast (the 5 s target) is a figure of `make bench`, not a timed test: under load a wall-clock bound here
    # failed one clean-clone run in three while nothing was wrong.
    before = supervisor.strategies()["btc-trend"]
    with supervisor.client() as client:
        orders_before = client.get("/api/v1/strategies/btc-trend/orders", params={"limit": 1000}).json()
    config_file = supervisor.state_dir / "default" / "btc-trend" / "runtime.yaml"
    state_path = yaml.safe_load(config_file.read_text())["state"]["path"]
    os.kill(before["pid"], 9)
    after = kit.wait_for(
        lambda: (
            (s := supervisor.strategies()["btc-trend"])["phase"] == "Running"
            and s["restarts"] == before["restarts"] + 1
            and s
        ),
        timeout=30,
        interval=0.05,
        what="btc-trend Running again",
    )
    assert after["pid"] != before["pid"]
    assert yaml.safe_load(config_file.read_text())["state"]["path"] == state_path  # same state file
    assert after["trade_count"] >= before["trade_count"]  # resumed, not started over
    with supervisor.client() as client:
        orders = client.get("/api/v1/strategies/btc-trend/orders", params={"limit": 1000}).json()
        events = client.get("/api/v1/events", params={"name": "btc-trend"}).json()
    # Nothing sent before the kill is lost, and no decision was acted on twice: the runtime places at most one
    # order per symbol per candle when long-only (no flip), so a second order for one candle is a duplicate.
    assert {o["client_order_id"] for o in orders_before} <= {o["client_order_id"] for o in orders}
    per_candle = Counter((o["symbol"], o["created_at"]) for o in orders)
    duplicates = [key for key, n in per_candle.items() if n > 1]
    assert orders and duplicates == []
    assert "Restarting" in [e["reason"] for e in events]


def test_pause_and_resume_need_the_operator_role(supervisor, kit) -> None:
    with supervisor.client(kit.viewer_token) as viewer:
        assert viewer.get("/api/v1/strategies/eth-trend").status_code == 200
        assert viewer.post("/api/v1/strategies/eth-trend/pause").status_code == 403
    with supervisor.client(kit.operator_token) as operator:
        assert operator.post("/api/v1/strategies/eth-trend/pause").status_code == 200
        kit.wait_for(
            lambda: operator.get("/api/v1/strategies/eth-trend").json()["phase"] == "Paused",
            timeout=10,
            what="eth-trend Paused",
        )
        assert operator.post("/api/v1/strategies/eth-trend/resume").status_code == 200
        kit.wait_for(
            lambda: operator.get("/api/v1/strategies/eth-trend").json()["phase"] == "Running",
            timeout=10,
            what="eth-trend Running again",
        )
        audit = operator.get("/api/v1/audit").json()
    assert [(a["action"].rsplit("/", 1)[-1], a["actor"].split(":")[0], a["result"][:3]) for a in audit[:3]] == [
        ("resume", "operator", "200"),
        ("pause", "operator", "200"),
        ("pause", "viewer", "403"),
    ]


def test_tokens_are_not_in_the_supervisor_log(supervisor, kit) -> None:
    log = Path(supervisor.log_path).read_text()
    assert "supervisor started" in log
    assert kit.operator_token not in log and kit.viewer_token not in log
    assert kit.operator_token not in "".join(supervisor.stdout_lines)  # a token from the environment is not printed
