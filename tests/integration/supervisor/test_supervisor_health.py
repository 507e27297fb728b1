"""The local supervisor heals what a kubelet would heal on a cluster, and says why a runtime failed.

A real ``slsbot up`` with real runtimes: one is frozen with SIGSTOP (alive, silent) and must be killed and restarted
after the liveness timeout, with a Warning Event; one cannot start (its candle file is corrupt) and the reason it
gives must reach the Strategy's condition message and a Warning Event, not only its log.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _events(running, name: str) -> list[dict]:
    with running.client() as client:
        response = client.get("/api/v1/events", params={"name": name, "limit": 200})
    response.raise_for_status()
    return response.json()


def _condition(strategy: dict, type_: str) -> dict:
    return next((c for c in strategy["conditions"] if c["type"] == type_), {})


def test_a_frozen_runtime_is_killed_and_restarted_with_a_warning_event(kit, tmp_path: Path):
    running = kit.start(
        kit.write_manifests(tmp_path / "manifests"),
        tmp_path / "state",
        kit.environment(SLSBOT_ADMIN_TOKEN=kit.operator_token, SLSBOT_LIVENESS_TIMEOUT="3"),
    )
    try:
        kit.wait_for(
            lambda: all(s["phase"] == "Running" for s in running.strategies().values()),
            timeout=120,
            interval=0.25,
            what="both strategies Running",
        )
        frozen = running.strategies()["btc-trend"]["pid"]
        os.kill(frozen, signal.SIGSTOP)
        seen_unresponsive = kit.wait_for(
            lambda: _condition(running.strategies()["btc-trend"], "Ready").get("reason") == "RuntimeUnresponsive",
            timeout=30,
            interval=0.1,
            what="btc-trend reported unresponsive while frozen",
        )
        assert seen_unresponsive
        assert running.strategies()["btc-trend"]["phase"] == "Degraded"
        healed = kit.wait_for(
            lambda: (
                (
                    (s := running.strategies()["btc-trend"])["phase"] == "Running"
                    and s["pid"] not in (None, frozen)
                    and s["restarts"] >= 1
                )
                and s
            ),
            timeout=90,
            interval=0.25,
            what="btc-trend restarted and Running again",
        )
        assert healed["restarts"] == 1
        assert not Path(f"/proc/{frozen}").exists() or "Z" in Path(f"/proc/{frozen}/stat").read_text().split()[2]
        warnings = [e for e in _events(running, "btc-trend") if e["type"] == "Warning"]
        liveness = [e for e in warnings if e["reason"] == "LivenessFailed"]
        assert len(liveness) == 1, warnings
        assert "has not answered its health check" in liveness[0]["message"]
        assert running.strategies()["eth-trend"]["restarts"] == 0  # the other bot was left alone
    finally:
        assert running.stop() == 0


CORRUPT_STRATEGY = """\
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: broken-data}
spec:
  accountRef: {name: paper-binance}
  symbols: [BTC/USDT]
  timeframe: 1h
  ensemble:
    members:
      - {name: sma, strategy: sma_cross, params: {fast: 5, slow: 15}}
  marketData: {source: replay, dataDir: %(data)s, secondsPerCandle: 0.05, warmupCandles: 20}
"""


def test_why_a_runtime_cannot_start_reaches_the_condition_and_a_warning_event(kit, tmp_path: Path):
    data = tmp_path / "candles"
    data.mkdir()
    (data / "BTC_USDT-1h.json").write_text('{"not": "candles"')  # found by name, unreadable as candles
    folder = kit.write_manifests(tmp_path / "manifests")
    for extra in folder.glob("30-*.yaml"):
        extra.unlink()
    (folder / "30-broken-data.yaml").write_text(CORRUPT_STRATEGY % {"data": data})
    running = kit.start(folder, tmp_path / "state", kit.environment(SLSBOT_ADMIN_TOKEN=kit.operator_token))
    try:
        strategy = kit.wait_for(
            lambda: (
                (s := running.strategies().get("broken-data"))
                and "not valid JSON" in _condition(s, "Ready").get("message", "")
                and s
            ),
            timeout=90,
            interval=0.25,
            what="the runtime's own error in the Ready condition",
        )
        assert strategy["phase"] == "Degraded"
        message = _condition(strategy, "Ready")["message"]
        assert "exit code 1" in message and "DataError" in message and "BTC_USDT-1h.json" in message
        warnings = kit.wait_for(
            lambda: [
                e for e in _events(running, "broken-data") if e["type"] == "Warning" and "DataError" in e["message"]
            ],
            timeout=30,
            what="a Warning event with the runtime's error",
        )
        assert any("not valid JSON" in e["message"] for e in warnings)
    finally:
        assert running.stop() == 0
