"""An A/B Experiment (type ab) under the real operator (kopf, the shared reconcile service, the Kubernetes backend)
against kmock over HTTP. The two variants' runtimes are ``RuntimeStub`` HTTP servers on 127.0.0.1 that answer
``/performance`` and ``/allocation`` in the runtime's shapes, over one simulated market: a thread moves the market
clock one hourly candle every few milliseconds, and each variant earns its returns on the capital the operator
allocated to it. ``mark_runtime_ready`` plays the Deployment controller and the kubelet, as in the other kmock tests.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from slsbot.api import StrategySpec

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

BASELINE, CANDIDATE = "btc-trend", "btc-trend-candidate"
HOUR = 3_600_000
T0 = 1_735_689_600_000  # 2025-01-01T00:00Z
CANDLE_EVERY_S = 0.01
# Strategy.spec.allocationPercent (the allocation part of issue 8): the candidate claims no capital of its own, so the
# two fit in their account; without the field, there is no account-wide share to claim.
CLAIMS_A_SHARE = "allocation_percent" in StrategySpec.model_fields


@dataclass
class Market:
    """Both runtimes' candles, one per ``CANDLE_EVERY_S``: each variant's return on its allocated capital (None
    while it has none), a closed trade every third candle it trades, and the runtime's /performance answer."""

    stubs: dict[str, Any]
    returns: dict[str, Callable[[int], float]]
    clock: int = T0
    rows: dict[str, list[list[Any]]] = field(default_factory=lambda: {BASELINE: [], CANDIDATE: []})
    closes: dict[str, list[int]] = field(default_factory=lambda: {BASELINE: [], CANDIDATE: []})
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(CANDLE_EVERY_S):
            with self.lock:
                self.clock += HOUR
                candle = (self.clock - T0) // HOUR
                for name, stub in self.stubs.items():
                    capital = 100.0 * stub.allocation_percent
                    ret = self.returns[name](candle) if capital > 0 else None
                    self.rows[name].append([self.clock, 10_000.0, capital, ret])
                    if capital > 0 and candle % 3 == 0:
                        self.closes[name].append(self.clock)

    def answer(self, name: str) -> Callable[[int], dict[str, Any]]:
        def performance(since: int) -> dict[str, Any]:
            with self.lock:
                return {
                    "allocationPercent": self.stubs[name].allocation_percent,
                    "lastCandleTs": self.clock,
                    "periods": [row for row in self.rows[name] if row[0] > since],
                    "closedTrades": sum(1 for ts in self.closes[name] if ts > since),
                    "drawdownPercent": 0.0,
                    "breakerLevel": 0,
                }

        return performance


def _noise(seed: int, scale: float, drift: float = 0.0) -> Callable[[int], float]:
    rng = random.Random(seed)
    cache: dict[int, float] = {}
    return lambda candle: cache.setdefault(candle, drift + rng.gauss(0, scale))


def manifests(baseline_port: int, candidate_port: int) -> list[dict[str, Any]]:
    def strategy(name: str, port: int, fast: int) -> dict[str, Any]:
        share = {"allocationPercent": 0.0 if name == CANDIDATE else 100.0} if CLAIMS_A_SHARE else {}
        return {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": name},
            "spec": {
                "accountRef": {"name": "paper-binance"},
                **share,
                "symbols": ["BTC/USDT"],
                "ensemble": {
                    "members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": fast, "slow": 30}}]
                },
                "runtime": {"port": port},
            },
        }

    return [
        {"apiVersion": "slsbot.io/v1alpha1", "kind": "RiskPolicy", "metadata": {"name": "standard-risk"}, "spec": {}},
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": "paper-binance"},
            "spec": {"exchange": "binance", "mode": "paper", "riskPolicyRef": {"name": "standard-risk"}},
        },
        strategy(BASELINE, baseline_port, 10),
        strategy(CANDIDATE, candidate_port, 20),
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": "btc-ab"},
            "spec": {
                "type": "ab",
                "strategyRef": {"name": BASELINE},
                "variants": [
                    {"name": "baseline", "strategyRef": {"name": BASELINE}},
                    {"name": "candidate", "strategyRef": {"name": CANDIDATE}},
                ],
                "schedule": {"steps": [25, 50, 100], "stepInterval": "6h", "minTrades": 1},
            },
        },
    ]


async def _rollout(kube, start_operator, runtime_stubs, *, candidate_drift: float):
    stubs = {BASELINE: runtime_stubs(BASELINE), CANDIDATE: runtime_stubs(CANDIDATE, spec_allocation=0.0)}
    market = Market(stubs, {BASELINE: _noise(1, 0.004), CANDIDATE: _noise(2, 0.004, candidate_drift)})
    for name, stub in stubs.items():
        stub.performance = market.answer(name)
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    for document in manifests(stubs[BASELINE].port, stubs[CANDIDATE].port):
        await kube.apply(document)
    for name in stubs:
        await kube.eventually(
            lambda n=name: kube.get("deployments", f"slsbot-runtime-{n}"), what=f"{name}'s Deployment"
        )
        await kube.mark_runtime_ready(name)
    thread = threading.Thread(target=market.run, name="market", daemon=True)
    thread.start()
    return stubs, market, thread


async def _phase(kube, phases: set[str], *, within: float) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        body = await kube.get("experiments", "btc-ab")
        return body if ((body or {}).get("status") or {}).get("phase") in phases else None

    return await kube.eventually(reached, within=within, what=f"the experiment in phase {sorted(phases)}")


async def test_a_better_candidate_goes_through_every_step_and_is_promoted(kube, start_operator, runtime_stubs):
    stubs, market, thread = await _rollout(kube, start_operator, runtime_stubs, candidate_drift=0.002)
    try:
        first = await _phase(kube, {"Progressing"}, within=30)
        assert first["status"]["rollout"]["variants"][1]["allocationPercent"] == 25
        await kube.eventually(
            lambda: _true(stubs[CANDIDATE].allocation == 25.0 and stubs[BASELINE].allocation == 75.0),
            what="the first step's allocations on the runtimes",
        )
        deployment = await kube.get("deployments", f"slsbot-runtime-{BASELINE}")
        old_hash = deployment["spec"]["template"]["metadata"]["annotations"]["slsbot.io/config-hash"]
        await _phase(kube, {"Promoting", "Promoted"}, within=90)
        # The candidate's logic went into the baseline's spec: its reconciler rolls the Deployment out again, and
        # kmock has no controller to make the new pod ready: the test does.
        baseline = await kube.eventually(
            lambda: _with(
                kube.get("strategies", BASELINE),
                lambda b: b["spec"]["ensemble"]["members"][0]["params"]["fast"] == 20,
            ),
            what="the candidate's parameters in the baseline's spec",
        )
        assert baseline["spec"]["accountRef"] == {"name": "paper-binance"}
        await kube.eventually(
            lambda: _with(
                kube.get("deployments", f"slsbot-runtime-{BASELINE}"),
                lambda d: d["spec"]["template"]["metadata"]["annotations"]["slsbot.io/config-hash"] != old_hash,
            ),
            what="the baseline's Deployment rolled out with the promoted spec",
        )
        await kube.mark_runtime_ready(BASELINE)
        done = await _phase(kube, {"Promoted"}, within=30)
    finally:
        market.stop.set()
        thread.join(timeout=5)
    rollout = done["status"]["rollout"]
    assert [d["step"] for d in rollout["decisions"] if d["action"] == "Step"] == [0, 1, 2]
    assert rollout["verdict"] == "promote" and rollout["statistic"] >= rollout["threshold"]
    assert stubs[BASELINE].allocation is None and stubs[CANDIDATE].allocation == 0.0
    assert "not this Experiment's: it stays, with no capital" in _condition(done, "Progressing")["message"]
    reasons = await kube.eventually(
        lambda: _with(kube.event_reasons("btc-ab"), lambda r: "Promoted" in r and r), what="the Promoted event"
    )
    assert reasons.count("StepStarted") == 3 and "Promoting" in reasons
    # Allocations move down before they move up: the two never claim more than the baseline's share.
    allocation_posts = [
        (stub_name, body["percent"])
        for stub_name, stub in stubs.items()
        for method, path, body in stub.requests
        if method == "POST" and path == "/allocation"
    ]
    assert (CANDIDATE, 25.0) in allocation_posts and (BASELINE, None) in allocation_posts


async def test_a_worse_candidate_is_rolled_back_and_an_edit_cannot_revive_it(kube, start_operator, runtime_stubs):
    stubs, market, thread = await _rollout(kube, start_operator, runtime_stubs, candidate_drift=-0.002)
    try:
        done = await _phase(kube, {"RolledBack"}, within=90)
        await kube.eventually(
            lambda: _true(stubs[CANDIDATE].allocation == 0.0 and stubs[BASELINE].allocation is None),
            what="the candidate at zero capital and the baseline back on its spec share",
        )
        await kube.patch("experiments", "btc-ab", {"spec": {"promote": True}})  # a finished rollout stays so
        again = await _phase(kube, {"RolledBack"}, within=10)
    finally:
        market.stop.set()
        thread.join(timeout=5)
    assert done["status"]["rollout"]["verdict"] == "rollback"
    assert done["status"]["rollout"]["decisions"][-1]["action"] == "Rollback"
    assert again["status"]["rollout"]["decisions"] == done["status"]["rollout"]["decisions"]
    events = await kube.eventually(
        lambda: _with(kube.events("btc-ab"), lambda es: any(e["reason"] == "RolledBack" for e in es) and es),
        what="the RolledBack event",
    )
    assert next(e for e in events if e["reason"] == "RolledBack")["type"] == "Warning"
    strategy = await kube.get("strategies", BASELINE)
    assert strategy["spec"]["ensemble"]["members"][0]["params"]["fast"] == 10  # untouched


async def test_abort_by_patching_the_spec_rolls_back_at_once(kube, start_operator, runtime_stubs):
    stubs, market, thread = await _rollout(kube, start_operator, runtime_stubs, candidate_drift=0.0)
    try:
        await _phase(kube, {"Progressing"}, within=30)
        await kube.eventually(lambda: _true(stubs[CANDIDATE].allocation == 25.0), what="the first step applied")
        await kube.patch("experiments", "btc-ab", {"spec": {"abort": True}})
        done = await _phase(kube, {"Aborted"}, within=15)
    finally:
        market.stop.set()
        thread.join(timeout=5)
    assert "spec.abort" in done["status"]["rollout"]["decisions"][-1]["reason"]
    assert stubs[CANDIDATE].allocation == 0.0 and stubs[BASELINE].allocation is None


async def _true(value: bool) -> bool:
    return value


async def _with(awaitable: Any, check: Callable[[Any], Any]) -> Any:
    value = await awaitable
    return check(value) and value if value is not None else None


def _condition(body: dict[str, Any], type: str) -> dict[str, Any]:
    return next(c for c in body["status"]["conditions"] if c["type"] == type)
