"""The healing ladder under a real ``slsbot up``.

- With real runtimes: a runtime killed with SIGKILL is back and trading within 5 s (the issue's target; the
  measured time is printed), the Healing condition names the class and the rung, and the admin API's ``/metrics``
  has the detection and recovery measured.
- With a fake runtime that speaks the runtime's issue-9 contract (``/status`` health block, ``POST /trading-mode``;
  ``tests/fakes/fake_health_runtime.py``, the other part's side): stale data climbs Restart -> SafeMode and comes back
  to normal after ``recoverAfter``; a state mismatch goes to safe mode at once, with no restart.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
FAKE_RUNTIME = REPO / "tests" / "fakes" / "fake_health_runtime.py"
KILLED_BACK_WITHIN_S = 5.0


def _condition(strategy: dict, type_: str) -> dict:
    return next((c for c in strategy["conditions"] if c["type"] == type_), {})


def _events(running, name: str) -> list[dict]:
    with running.client() as client:
        response = client.get("/api/v1/events", params={"name": name, "limit": 200})
    response.raise_for_status()
    return response.json()


def _metrics(running) -> str:
    response = httpx.get(f"{running.url}/metrics", timeout=10, trust_env=False)  # open, as Prometheus scrapes it
    response.raise_for_status()
    return response.text


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and line.split("{", 1)[1].split("}", 1)[0] == wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_killed_runtime_is_back_and_trading_within_5_seconds(kit, tmp_path: Path, secret_scan):
    running = kit.start(
        kit.write_manifests(tmp_path / "manifests"),
        tmp_path / "state",
        kit.environment(SLSBOT_ADMIN_TOKEN=kit.operator_token),
    )
    try:
        kit.wait_for(
            lambda: all(s["phase"] == "Running" for s in running.strategies().values()),
            timeout=120,
            interval=0.25,
            what="both strategies Running",
        )
        killed = running.strategies()["btc-trend"]["pid"]
        started = time.monotonic()
        os.kill(killed, signal.SIGKILL)
        # pid and restarts come from the live process record, phase and conditions from the last status written:
        # wait for a status that has seen the crash and the runtime ready again after it ("healthy since").
        back = kit.wait_for(
            lambda: (
                (s := running.strategies()["btc-trend"])["phase"] == "Running"
                and s["pid"] not in (None, killed)
                and _condition(s, "Trading").get("status") == "True"
                and "healthy since" in _condition(s, "Healing").get("message", "")
                and s
            ),
            timeout=30,
            interval=0.05,
            what="btc-trend back and trading",
        )
        took = time.monotonic() - started
        print(f"\nkilled runtime back and trading after {took:.2f}s (target {KILLED_BACK_WITHIN_S:.0f}s)")
        assert took <= KILLED_BACK_WITHIN_S, f"the killed runtime took {took:.2f}s to trade again"
        assert back["restarts"] == 1
        events = _events(running, "btc-trend")
        assert not [e for e in events if e["reason"] == "ReconcileError"], events
        healing = _condition(back, "Healing")
        assert healing.get("status") == "True" and healing.get("reason") == "Crashed_Restart", (back, events)
        assert "healthy since" in healing["message"]
        metrics = _metrics(running)
        secret_scan.observe(metrics, where="the admin API's /metrics")
        assert _sample(metrics, "slsbot_heal_detection_seconds_count", failure_class="Crashed") == 1
        assert _sample(metrics, "slsbot_heal_recovery_seconds_count", failure_class="Crashed") == 1
        assert _sample(metrics, "slsbot_heal_rungs_total", failure_class="Crashed", rung="Restart") == 1
        assert [e["reason"] for e in events].count("Crashed_Restart") == 1, events
    finally:
        assert running.stop() == 0


HEALING_SPEC = "spec:\n  healing: {restartsPerRung: 1, rungTimeout: 6s, recoverAfter: 2s, staleAfterMin: 1s}\n"


def _faults(folder: Path, name: str, **faults) -> None:
    staging = folder / f".{name}.json"
    staging.write_text(json.dumps(faults))
    staging.replace(folder / f"{name}.json")


def _pushes(running, name: str) -> list[dict]:
    path = running.state_dir / "default" / name / "pushes.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _fake_supervisor(kit, tmp_path: Path):
    folder = kit.write_manifests(tmp_path / "manifests")
    text = (folder / "10-account.yaml").read_text()
    assert "spec: {}\n" in text  # the RiskPolicy's
    (folder / "10-account.yaml").write_text(text.replace("spec: {}\n", HEALING_SPEC, 1))
    faults = tmp_path / "faults"
    faults.mkdir()
    running = kit.start(
        folder,
        tmp_path / "state",
        kit.environment(
            SLSBOT_ADMIN_TOKEN=kit.operator_token,
            SLSBOT_RUNTIME_COMMAND=json.dumps([sys.executable, str(FAKE_RUNTIME)]),
            FAKE_RUNTIME_FAULTS=str(faults),
        ),
    )
    kit.wait_for(
        lambda: all(s["phase"] == "Running" for s in running.strategies().values()),
        timeout=60,
        interval=0.1,
        what="both fake runtimes Running",
    )
    return running, faults


def test_stale_data_climbs_restart_then_safe_mode_and_comes_back_after_recover_after(kit, tmp_path: Path, secret_scan):
    running, faults = _fake_supervisor(kit, tmp_path)
    try:
        _faults(faults, "btc-trend", stale_since=time.time())
        restarted = kit.wait_for(
            lambda: (
                (s := running.strategies()["btc-trend"])["restarts"] == 1
                and _condition(s, "Healing").get("reason") == "StaleData_Restart"
                and s
            ),
            timeout=20,
            interval=0.1,
            what="stale data detected and the runtime restarted",
        )
        assert restarted["phase"] in ("Running", "Degraded", "Progressing")
        safe = kit.wait_for(
            lambda: (
                (s := running.strategies()["btc-trend"])
                and _condition(s, "Healing").get("reason") == "StaleData_SafeMode"
                and _pushes(running, "btc-trend")
                and s
            ),
            timeout=30,
            interval=0.1,
            what="the ladder's next rung: safe mode pushed to the runtime",
        )
        _faults(faults, "btc-trend")  # the feed is back
        (push,) = _pushes(running, "btc-trend")
        assert push["mode"] == "safe" and push["flatten"] is False and "StaleData" in push["reason"]
        assert safe["phase"] == "Degraded" and _condition(safe, "Trading")["reason"] == "SafeMode"
        assert safe["restarts"] == 1  # one restart per rung (restartsPerRung: 1)

        recovered = kit.wait_for(
            lambda: (
                (s := running.strategies()["btc-trend"]) and _condition(s, "Healing").get("reason") == "Recovered" and s
            ),
            timeout=30,
            interval=0.1,
            what="back to normal after recoverAfter",
        )
        assert _condition(recovered, "Healing")["status"] == "False"
        assert [p["mode"] for p in _pushes(running, "btc-trend")] == ["safe", "normal"]
        kit.wait_for(lambda: running.strategies()["btc-trend"]["phase"] == "Running", timeout=10, what="Running again")
        reasons = [e["reason"] for e in _events(running, "btc-trend")]
        for rung in ("StaleData_Restart", "StaleData_SafeMode", "Healthy", "Recovered"):
            assert reasons.count(rung) == 1, reasons  # one event per rung change, not one per pass
        metrics = _metrics(running)
        secret_scan.observe(metrics, where="the admin API's /metrics")
        assert _sample(metrics, "slsbot_heal_rungs_total", failure_class="StaleData", rung="SafeMode") == 1
        assert _sample(metrics, "slsbot_heal_recovery_seconds_count", failure_class="StaleData") >= 1
        detection = _sample(metrics, "slsbot_heal_detection_seconds_sum", failure_class="StaleData")
        print(
            "\nstale data (1 s candles, staleAfterCandles 2, staleAfterMin 1s): "
            f"detected {detection:.2f}s after the candle was due"
        )
        assert running.strategies()["eth-trend"]["restarts"] == 0  # the other bot was left alone
    finally:
        assert running.stop() == 0


def test_a_state_mismatch_stops_entries_at_once_without_a_restart(kit, tmp_path: Path):
    running, faults = _fake_supervisor(kit, tmp_path)
    try:
        _faults(faults, "eth-trend", reconcile_ok=False)
        started = time.monotonic()
        safe = kit.wait_for(lambda: _pushes(running, "eth-trend"), timeout=10, interval=0.05, what="safe mode pushed")
        print(f"\nstate mismatch: safe mode pushed after {time.monotonic() - started:.2f}s")
        assert [p["mode"] for p in safe] == ["safe"]
        strategy = running.strategies()["eth-trend"]
        assert strategy["restarts"] == 0
        kit.wait_for(
            lambda: _condition(running.strategies()["eth-trend"], "Healing").get("reason") == "StateMismatch_SafeMode",
            timeout=5,
            what="the Healing condition",
        )
    finally:
        assert running.stop() == 0
