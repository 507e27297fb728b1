"""The operator (kopf, the shared reconcile service) against kmock: the Strategies of one TradingAccount may claim
100% of its capital at most; the later-created one is refused until the earlier one makes room."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]


def _account() -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": "paper-binance"},
        "spec": {"exchange": "binance", "mode": "paper"},
    }


def _strategy(name: str, percent: float, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": name},
        "spec": {
            "accountRef": {"name": "paper-binance"},
            "allocationPercent": percent,
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            "runtime": {"port": port},
        },
    }


def _ready(body: dict[str, Any] | None) -> dict[str, Any]:
    conditions = ((body or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), {})


async def test_an_over_allocated_account_refuses_the_later_strategy_until_the_earlier_makes_room(
    kube, start_operator, runtime_stub
):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(_account())
    await kube.apply(_strategy("btc-trend", 70, runtime_stub.port))
    await kube.eventually(lambda: kube.get("deployments", "slsbot-runtime-btc-trend"), what="the first runtime")
    await kube.apply(_strategy("btc-trend-two", 50, runtime_stub.port))

    async def refused() -> Any:
        body = await kube.get("strategies", "btc-trend-two")
        ready = _ready(body)
        return ready if ready.get("reason") == "InvalidSpec" else None

    ready = await kube.eventually(refused, what="the later Strategy refused")
    assert ready["message"].startswith("spec.allocationPercent: 50% would bring TradingAccount 'paper-binance' to 120%")
    assert "btc-trend 70%" in ready["message"] and "at most 30" in ready["message"]
    assert await kube.get("deployments", "slsbot-runtime-btc-trend-two") is None

    async def account_sum() -> Any:
        status = (await kube.get("tradingaccounts", "paper-binance") or {}).get("status") or {}
        return status.get("allocatedPercent") == 120

    await kube.eventually(account_sum, what="the account's allocatedPercent")

    # the earlier one makes room: its change wakes the other at once (no waiting out a requeue)
    await kube.patch("strategies", "btc-trend", {"spec": {"allocationPercent": 50}})
    await kube.eventually(
        lambda: kube.get("deployments", "slsbot-runtime-btc-trend-two"), what="the second runtime, once it fits"
    )
    assert _ready(await kube.get("strategies", "btc-trend-two")).get("reason") != "InvalidSpec"

    # a third does not fit beside those two; deleting the first frees its share and wakes the third
    await kube.mark_runtime_ready("btc-trend")
    await kube.apply(_strategy("btc-trend-three", 50, runtime_stub.port))

    async def third_refused() -> Any:
        return _ready(await kube.get("strategies", "btc-trend-three")).get("reason") == "InvalidSpec"

    await kube.eventually(third_refused, what="the third Strategy refused")
    await kube.delete("strategies", "btc-trend")
    await kube.eventually(
        lambda: kube.get("deployments", "slsbot-runtime-btc-trend-three"), what="the third runtime, once the first went"
    )
    assert await kube.get("strategies", "btc-trend") is None
