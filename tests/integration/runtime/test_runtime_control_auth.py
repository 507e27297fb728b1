"""``slsbot runtime``'s control endpoints need its bearer token; a drained runtime, restarted, does not trade.

Real runtime processes on 127.0.0.1 replaying real candles: every protected endpoint answers 401 without the token
and with a wrong one (and a refused request changes nothing), the probes stay open, the token never reaches the
log or an answer; without a token the control endpoints are off unless ``--insecure-control``.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROTECTED = [
    ("GET", "/status", None),
    ("GET", "/orders?limit=5", None),
    ("POST", "/pause", None),
    ("POST", "/resume", None),
    ("POST", "/shutdown", {"cancelOrders": True, "flatten": True}),
]
OPEN = ["/healthz", "/readyz", "/metrics"]


def call(runtime: Any, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None):
    return httpx.request(method, runtime.base_url + path, json=body, headers=headers or {}, timeout=10, trust_env=False)


def test_every_control_endpoint_needs_the_token_and_the_token_is_never_shown(
    kit: Any, btc_slice_dir: Path, tmp_path: Path
) -> None:
    config = kit.write_config(tmp_path, kit.runtime_config(btc_slice_dir, secondsPerCandle=0.01, loop=True))
    runtime = kit.start(config, tmp_path / "state.db")
    kit.wait_for(lambda: runtime.status()["trade_count"] >= 1, what="a first trade")

    wrong = [
        {},
        {"Authorization": "Bearer not-the-token-0000000000"},
        {"Authorization": f"Bearer {kit.token}x"},
        {"Authorization": f"Basic {kit.token}"},
        {"Authorization": kit.token},
    ]
    for method, path, body in PROTECTED:
        for headers in wrong:
            answer = call(runtime, method, path, body, headers=headers)
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            assert "Authorization" in answer.json()["error"] and kit.token not in answer.text
    for path in OPEN:
        assert call(runtime, "GET", path).status_code == 200, path
    status = runtime.status()  # with the token
    assert status["phase"] in ("running", "warming_up") and status["paused"] is False  # refused POSTs: no effect
    assert runtime.process.poll() is None and isinstance(status["open_orders"], int)
    assert runtime.get("/orders?limit=5").status_code == 200
    assert runtime.post("/pause").json() == {"paused": True} and runtime.post("/resume").json() == {"paused": False}

    assert runtime.post("/shutdown", {"cancelOrders": True, "flatten": True}).status_code == 202
    drained = kit.wait_for(lambda: (s := runtime.status())["phase"] == "drained" and s, what="phase drained")
    assert drained["open_orders"] == 0 and drained["open_positions"] == 0 and drained["drained_at"].endswith("Z")
    metrics = kit.wait_for(
        lambda: 'slsbot_runtime_phase{phase="drained"} 1.0' in (m := runtime.get("/metrics").text) and m,
        what="the phase gauge at drained",
    )
    assert 'slsbot_runtime_phase{phase="running"} 0.0' in metrics
    runtime.process.send_signal(signal.SIGTERM)
    assert runtime.wait() == 0
    log = runtime.stderr()
    assert "drained" in log and kit.token not in log and kit.token not in metrics
    before = kit.report(runtime.state)

    # Restarted on its drained state file (as a kubelet would), it connects to nothing and trades nothing.
    again = kit.start(config, tmp_path / "state.db")
    restarted = again.status()
    assert restarted["phase"] == "drained" and again.get("/readyz").status_code == 200
    assert (restarted["trade_count"], restarted["orders_total"]) == (drained["trade_count"], drained["orders_total"])
    assert restarted["drained_at"] == drained["drained_at"]
    assert again.post("/resume").status_code == 503
    assert again.post("/shutdown", {"cancelOrders": True}).status_code == 202  # again: nothing to do
    assert again.status()["trade_count"] == drained["trade_count"]
    again.process.send_signal(signal.SIGTERM)
    assert again.wait() == 0
    assert "was drained at" in again.stderr()
    assert kit.report(again.state) == before  # not one order, fill or candle more


def test_without_a_token_the_control_endpoints_are_off_unless_insecure(
    kit: Any, btc_slice_dir: Path, tmp_path: Path
) -> None:
    config = kit.write_config(tmp_path, kit.runtime_config(btc_slice_dir, secondsPerCandle=0.01, loop=True))
    closed = kit.start(config, tmp_path / "closed.db", token=None)
    kit.wait_for(lambda: closed.get("/readyz").status_code == 200, what="/readyz 200")
    for method, path, body in PROTECTED:
        answer = call(closed, method, path, body, headers={"Authorization": "Bearer anything-at-all-12345"})
        assert answer.status_code == 403 and "SLSBOT_RUNTIME_TOKEN" in answer.json()["error"], (method, path)
    assert closed.process.poll() is None  # the refused /shutdown did nothing
    closed.process.send_signal(signal.SIGTERM)
    assert closed.wait() == 0
    assert "no SLSBOT_RUNTIME_TOKEN" in closed.stderr()

    open_ = kit.start(config, tmp_path / "open.db", "--insecure-control", token=None)
    kit.wait_for(lambda: open_.get("/status").status_code == 200, what="/status without a token")
    assert open_.post("/pause").json() == {"paused": True}
    open_.process.send_signal(signal.SIGTERM)
    assert open_.wait() == 0
    assert "--insecure-control" in open_.stderr()


def test_a_token_too_short_to_be_one_is_a_config_error(kit: Any, btc_slice_dir: Path, tmp_path: Path) -> None:
    import subprocess

    config = kit.write_config(tmp_path, kit.runtime_config(btc_slice_dir))
    done = subprocess.run(
        [*kit.slsbot, "runtime", "--config", str(config), "--state", str(tmp_path / "s.db")],
        capture_output=True,
        text=True,
        env=kit.env("short"),
        timeout=120,
    )
    assert done.returncode == 2 and "SLSBOT_RUNTIME_TOKEN: shorter than 16 characters" in done.stderr
    assert not (tmp_path / "s.db").exists()
