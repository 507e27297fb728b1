"""The healing ladder on the operator's side: the real operator against kmock, a stand-in runtime that reports a
health block and takes ``POST /trading-mode``. A state mismatch puts the runtime in safe mode; the Strategy carries
``status.healing``, the ``Healing`` condition and one Event per rung change; healthy again for ``recoverAfter``, it
trades normally."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import NAMESPACE

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


SERVICE_ID = "slsbot.io/service"  # the Deployment's fingerprint of the Service's fixed fields
RESTARTED_AT = "slsbot.io/restarted-at"  # the Deployment template's annotation a restart sets (a rollout restart)
MIB = 1024 * 1024


def _exchange_down(down: bool) -> dict[str, Any]:
    now = datetime.now(UTC)
    exchange = {"connected": True, "consecutive_errors": 0, "failing_since": None, "last_error": None}
    if down:
        since = (now - timedelta(seconds=5)).isoformat()
        exchange = {"connected": False, "consecutive_errors": 12, "failing_since": since, "last_error": "NetworkError"}
    return {**_health(reconcile_ok=True), "checked_at": now.isoformat(), "exchange": exchange}


def _memory(used_mb: int) -> dict[str, Any]:
    return {**_health(reconcile_ok=True), "memory_bytes": used_mb * MIB, "memory_limit_bytes": None}


@pytest.mark.parametrize(
    ("failure_class", "healing", "faulty", "healthy"),
    [
        (
            "ExchangeUnreachable",
            {"exchangeDownAfter": "1s"},
            lambda: _exchange_down(True),
            lambda: _exchange_down(False),
        ),
        ("ResourceExhaustion", {"memoryLimitMb": 64}, lambda: _memory(300), lambda: _memory(40)),
    ],
)
async def test_a_restartable_fault_restarts_the_pod_then_pushes_safe_mode_and_the_condition_and_events_land(
    kube, start_operator, runtime_stub, failure_class, healing, faulty, healthy
):
    await start_operator(runtime_url="http://127.0.0.1:{port}", max_requeue_seconds=1.0, metrics_port=0)
    policy = _policy()
    policy["spec"]["healing"] = {**healing, "restartsPerRung": 1, "rungTimeout": "6s", "recoverAfter": "2s"}
    await kube.apply(policy)
    await kube.apply(_account())
    await kube.apply(_strategy(runtime_stub.port))
    await kube.eventually(lambda: kube.get("deployments", "slsbot-runtime-btc-trend"), what="the Deployment")
    runtime_stub.health = healthy()
    await kube.mark_runtime_ready("btc-trend")
    await kube.eventually(
        lambda: _strategy_where(kube, lambda b: b["status"].get("phase") == "Running"), what="Running"
    )
    before = await kube.get("deployments", "slsbot-runtime-btc-trend")
    assert RESTARTED_AT not in (before["spec"]["template"]["metadata"].get("annotations") or {})

    runtime_stub.health = faulty()
    restarting = await kube.eventually(
        lambda: _strategy_where(kube, lambda b: _condition(b, "Healing").get("reason") == f"{failure_class}_Restart"),
        what=f"the Healing condition {failure_class}_Restart",
    )
    assert restarting["status"]["healing"]["failureClass"] == failure_class
    rolled = await kube.eventually(
        lambda: _deployment_where(
            kube, lambda d: RESTARTED_AT in (d["spec"]["template"]["metadata"].get("annotations") or {})
        ),
        what="the pod restarted: the Deployment's template carries restarted-at",
    )
    assert rolled["metadata"]["generation"] > before["metadata"]["generation"]
    assert runtime_stub.posts("/trading-mode") == []  # a restart first, no mode yet
    await kube.mark_runtime_ready("btc-trend")  # the new pod is up, and the fault is still there

    safe = await kube.eventually(
        lambda: _strategy_where(kube, lambda b: _condition(b, "Healing").get("reason") == f"{failure_class}_SafeMode"),
        what=f"the next rung: {failure_class}_SafeMode",
    )
    assert safe["status"]["healing"]["rung"] == "SafeMode" and safe["status"]["healing"]["tradingMode"] == "safe"
    await kube.eventually(lambda: _pushed(runtime_stub, "safe"), what="safe mode pushed to the runtime")
    runtime_stub.health = healthy()
    await kube.eventually(
        lambda: _strategy_where(kube, lambda b: _condition(b, "Healing").get("reason") == "Recovered"),
        what="back to normal after recoverAfter",
    )
    assert [p["mode"] for p in runtime_stub.posts("/trading-mode")] == ["safe", "normal"]
    assert runtime_stub.refused == []
    await kube.eventually(lambda: _events_of(kube, "Recovered"), what="a Recovered event")
    for rung in (f"{failure_class}_Restart", f"{failure_class}_SafeMode"):
        events = await _events_of(kube, rung)
        assert len(events) == 1 and events[0]["type"] == "Warning", events  # one per rung change, not per pass
    assert not await _events_of(kube, f"{failure_class}_Halt")
    final = await kube.get("deployments", "slsbot-runtime-btc-trend")
    assert (
        final["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
        == (rolled["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT])
    )  # restarted once (restartsPerRung: 1)


async def _deployment_where(kube, predicate):
    body = await kube.get("deployments", "slsbot-runtime-btc-trend")
    return body if body is not None and predicate(body) else None


async def _pushed(runtime_stub, mode: str) -> bool:
    return any(p["mode"] == mode for p in runtime_stub.posts("/trading-mode"))


async def test_a_restarted_pod_that_stays_not_ready_is_restarted_again_then_the_ladder_climbs_to_safe_mode(
    kube, start_operator, runtime_stub
):
    # The exchange is down, so the restarted runtime keeps connecting and never becomes ready: its pod's Ready
    # condition stays False. After rungTimeout / restartsPerRung (4 s) since its runtime started, the restart has
    # not healed it: the ladder restarts it again, then climbs, instead of waiting for the pod for the whole outage.
    await start_operator(runtime_url="http://127.0.0.1:{port}", max_requeue_seconds=1.0, metrics_port=0)
    policy = _policy()
    policy["spec"]["healing"] = {
        "exchangeDownAfter": "1s",
        "restartsPerRung": 2,
        "rungTimeout": "8s",
        "recoverAfter": "2s",
    }
    await kube.apply(policy)
    await kube.apply(_account())
    await kube.apply(_strategy(runtime_stub.port))
    await kube.eventually(lambda: kube.get("deployments", "slsbot-runtime-btc-trend"), what="the Deployment")
    runtime_stub.health = _exchange_down(False)
    await kube.mark_runtime_ready("btc-trend")
    await kube.eventually(
        lambda: _strategy_where(kube, lambda b: b["status"].get("phase") == "Running"), what="Running"
    )

    runtime_stub.health = _exchange_down(True)
    first = await kube.eventually(
        lambda: _deployment_where(kube, lambda d: _restarted_at(d) is not None),
        what="the first restart: the Deployment's template carries restarted-at",
    )
    await kube.mark_runtime_starting("btc-trend", started=datetime.now(UTC))  # the new pod: running, never ready

    second = await kube.eventually(
        lambda: _deployment_where(kube, lambda d: _restarted_at(d) not in (None, _restarted_at(first))),
        what="the second restart, once the first restarted pod stayed not ready for rungTimeout / restartsPerRung",
    )
    again = await kube.eventually(
        lambda: _restart_event(kube, "restart 2 of 2"), what="a HealingRestart event for the second restart"
    )
    assert again["type"] == "Warning" and "not ready" in again["message"], again
    await kube.mark_runtime_starting("btc-trend", started=datetime.now(UTC))  # not ready either

    safe = await kube.eventually(
        lambda: _strategy_where(
            kube, lambda b: _condition(b, "Healing").get("reason") == "ExchangeUnreachable_SafeMode"
        ),
        what="the next rung, ExchangeUnreachable_SafeMode, once the second restarted pod stayed not ready",
    )
    assert _condition(safe, "Healing")["status"] == "True"
    healing = safe["status"]["healing"]
    assert healing["failureClass"] == "ExchangeUnreachable" and healing["rung"] == "SafeMode"
    assert healing["tradingMode"] == "safe" and "not ready" in healing["message"], healing
    events = await kube.eventually(
        lambda: _events_of(kube, "ExchangeUnreachable_SafeMode"), what="a Warning event for the rung"
    )
    assert len(events) == 1 and events[0]["type"] == "Warning", events
    final = await kube.get("deployments", "slsbot-runtime-btc-trend")
    assert _restarted_at(final) == _restarted_at(second)  # restartsPerRung: 2, and no more
    assert runtime_stub.posts("/trading-mode") == []  # the ladder pushes a mode to a ready runtime only: none yet

    await kube.mark_runtime_ready("btc-trend")  # it comes up at last, the exchange still down: it gets the rung's mode
    await kube.eventually(lambda: _pushed(runtime_stub, "safe"), what="safe mode pushed once the runtime is ready")


def _restarted_at(deployment: dict[str, Any]) -> str | None:
    return (deployment["spec"]["template"]["metadata"].get("annotations") or {}).get(RESTARTED_AT)


async def _restart_event(kube, says: str) -> dict[str, Any] | None:
    return next((e for e in await _events_of(kube, "HealingRestart") if says in e["message"]), None)


async def test_a_runtime_halted_and_not_ready_raises_a_state_mismatch_incident_and_its_rung(
    kube, start_operator, runtime_stub
):
    """A runtime whose restart reconciliation found its books disagreeing with the exchange halts itself and is not
    ready. Its Service publishes not-ready pods, so the operator still reads its ``/status``, as ``slsbot up`` does:
    a severity-1 StateMismatch Incident, and the ladder's StateMismatch rung. Before, a not-ready runtime was not asked
    (and its Service did not route to it), so the ladder saw only "starting"."""
    await start_operator(runtime_url="http://127.0.0.1:{port}", max_requeue_seconds=1.0, incidents_interval_seconds=0.5)
    await kube.apply(_policy())
    await kube.apply(_account())
    await kube.apply(_strategy(runtime_stub.port))
    await kube.eventually(lambda: kube.get("deployments", "slsbot-runtime-btc-trend"), what="the Deployment")
    runtime_stub.health = _health(reconcile_ok=True)
    await kube.mark_runtime_ready("btc-trend")
    await kube.eventually(
        lambda: _strategy_where(kube, lambda b: b["status"].get("phase") == "Running"), what="Running"
    )

    # An earlier operator's Service routed to ready pods only, and its Deployment carries no Service fingerprint:
    # the next pass applies the runtime's objects again, and the Service publishes not-ready pods.
    await kube.patch("services", "slsbot-runtime-btc-trend", {"spec": {"publishNotReadyAddresses": None}})
    await kube.patch("deployments", "slsbot-runtime-btc-trend", {"metadata": {"annotations": {SERVICE_ID: None}}})
    service = await kube.get("services", "slsbot-runtime-btc-trend")
    assert "publishNotReadyAddresses" not in service["spec"]
    await kube.eventually(
        lambda: _object_where(kube, "services", lambda s: s["spec"].get("publishNotReadyAddresses") is True),
        what="the Service publishing not-ready pods again",
    )

    # The runtime restarts, finds the books disagreeing with the exchange, halts itself: running, never ready.
    runtime_stub.health = _health(reconcile_ok=False)
    runtime_stub.trading_mode = "halted"
    await kube.mark_runtime_starting("btc-trend", started=datetime.now(UTC))

    async def open_incidents() -> list[dict[str, Any]]:
        _, body = await kube._call("GET", kube.path("incidents"))
        return [i for i in (body or {}).get("items", []) if (i.get("status") or {}).get("state") == "open"]

    (incident,) = await kube.eventually(open_incidents, within=30, what="an open Incident for the not-ready runtime")
    assert incident["spec"]["rule"] == "StateMismatch" and incident["spec"]["severity"] == 1, incident["spec"]
    assert incident["spec"]["cause"] == f"StateMismatch:{NAMESPACE}/btc-trend"
    assert "position differs" in incident["spec"]["message"]
    halted = await kube.eventually(
        lambda: _strategy_where(kube, lambda b: _condition(b, "Healing").get("reason", "").startswith("StateMismatch")),
        within=30,
        what="the Healing condition naming StateMismatch",
    )
    # A severity-1 incident halts at once (the runtime has halted itself already: nothing to push to a not-ready one).
    assert _condition(halted, "Healing")["status"] == "True"
    assert _condition(halted, "Healing")["reason"] == "StateMismatch_Halt", _condition(halted, "Healing")
    assert halted["status"]["healing"]["failureClass"] == "StateMismatch", halted["status"]["healing"]
    deployment = await kube.get("deployments", "slsbot-runtime-btc-trend")
    assert int(deployment["status"]["readyReplicas"]) == 0  # it was never ready meanwhile


async def _object_where(kube, plural: str, predicate):
    body = await kube.get(plural, "slsbot-runtime-btc-trend")
    return body if body is not None and predicate(body) else None
