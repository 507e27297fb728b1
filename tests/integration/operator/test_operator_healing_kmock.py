"""The healing ladder on the operator's side: the real operator against kmock, a stand-in runtime that reports a
health block and takes ``POST /trading-mode``. A state mismatch puts the runtime in safe mode; the Strategy carries
``status.healing``, the ``Healing`` condition and one Event per rung change; healthy again for ``recoverAfter``, it
trades normally."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]


def _policy() -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RiskPolicy",
        "metadata": {"name": "standard-risk"},
        "spec": {"healing": {"recoverAfter": "2s"}},
    }


def _account() -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": "paper-binance"},
        "spec": {"exchange": "binance", "mode": "paper", "riskPolicyRef": {"name": "standard-risk"}},
    }


def _strategy(port: int) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": "btc-trend"},
        "spec": {
            "accountRef": {"name": "paper-binance"},
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]},
            "runtime": {"port": port},
        },
    }


def _health(reconcile_ok: bool) -> dict[str, Any]:
    return {
        "checked_at": datetime.now(UTC).isoformat(),
        "reconcile": {"ok": reconcile_ok, "problems": 0 if reconcile_ok else 2, "last_problem": "position differs"},
        "orders": {"consecutive_rejects": 0, "consecutive_failures": 0},
    }


def _condition(body: dict[str, Any] | None, type: str) -> dict[str, Any]:
    for cond in ((body or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type:
            return cond
    return {}


async def _strategy_where(kube, predicate):
    body = await kube.get("strategies", "btc-trend")
    return body if body is not None and predicate(body) else None


async def test_a_state_mismatch_puts_the_runtime_in_safe_mode_and_the_healing_condition_and_events_land(
    kube, start_operator, runtime_stub
):
    # max_requeue_seconds: a healthy, up-to-date runtime is looked at this often (30 s by default).
    await start_operator(runtime_url="http://127.0.0.1:{port}", max_requeue_seconds=1.0, metrics_port=0)
    await kube.apply(_policy())
    await kube.apply(_account())
    await kube.apply(_strategy(runtime_stub.port))
    await kube.eventually(lambda: kube.get("deployments", "slsbot-runtime-btc-trend"), what="the Deployment")
    runtime_stub.health = _health(reconcile_ok=True)
    await kube.mark_runtime_ready("btc-trend")
    await kube.eventually(
        lambda: _strategy_where(kube, lambda b: b["status"].get("phase") == "Running"), what="Running"
    )

    runtime_stub.health = _health(reconcile_ok=False)
    safe = await kube.eventually(
        lambda: _strategy_where(kube, lambda b: _condition(b, "Healing").get("reason") == "StateMismatch_SafeMode"),
        what="the Healing condition StateMismatch_SafeMode",
    )
    assert _condition(safe, "Healing")["status"] == "True"
    healing = safe["status"]["healing"]
    assert healing["failureClass"] == "StateMismatch" and healing["rung"] == "SafeMode"
    assert healing["tradingMode"] == "safe" and healing["detectedAt"]
    assert runtime_stub.posts("/trading-mode")[0]["mode"] == "safe"
    assert runtime_stub.trading_mode == "safe"
    assert safe["status"]["phase"] == "Degraded"
    warning = await kube.eventually(
        lambda: _events_of(kube, "StateMismatch_SafeMode"), what="a Warning event for the rung"
    )
    assert warning[0]["type"] == "Warning" and "safe mode" in warning[0]["message"]

    runtime_stub.health = _health(reconcile_ok=True)
    recovered = await kube.eventually(
        lambda: _strategy_where(kube, lambda b: _condition(b, "Healing").get("reason") == "Recovered"),
        what="back to normal after recoverAfter",
    )
    assert _condition(recovered, "Healing")["status"] == "False"
    assert recovered["status"].get("healing") is None
    assert [p["mode"] for p in runtime_stub.posts("/trading-mode")] == ["safe", "normal"]
    assert runtime_stub.refused == []  # every push carried the runtime's token
    await kube.eventually(lambda: _events_of(kube, "Recovered"), what="a Recovered event")
    assert len(await _events_of(kube, "StateMismatch_SafeMode")) == 1  # one event per rung change, not per pass


async def _events_of(kube, reason: str) -> list[dict[str, Any]]:
    return [e for e in await kube.events("btc-trend") if e["reason"] == reason]
