"""The operator's account risk timer against kmock and two runtime stubs on 127.0.0.1: the runtimes of an account
under a ``scope: account`` RiskPolicy are pushed their share of the room left, and a ``killSwitch`` set on the policy
reaches both at once (before their config change restarts them)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]


def _policy(kill: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RiskPolicy",
        "metadata": {"name": "acct-risk"},
        "spec": {"scope": "account", "killSwitch": kill},
    }


def _account() -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": "paper-binance"},
        "spec": {"exchange": "binance", "mode": "paper", "riskPolicyRef": {"name": "acct-risk"}},
    }


def _strategy(name: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": name},
        "spec": {
            "accountRef": {"name": "paper-binance"},
            "allocationPercent": 50,
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            "runtime": {"port": port},
        },
    }


async def test_the_runtimes_of_an_account_get_their_share_and_the_kill_switch(kube, start_operator, runtime_stubs):
    one, two = runtime_stubs("btc-one", spec_allocation=50), runtime_stubs("btc-two", spec_allocation=50)
    one.exposure = {"BTC/USDT": 3_000.0}
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(_policy())
    await kube.apply(_account())
    await kube.apply(_strategy("btc-one", one.port))
    await kube.apply(_strategy("btc-two", two.port))
    for name in ("btc-one", "btc-two"):
        await kube.eventually(lambda n=name: kube.get("deployments", f"slsbot-runtime-{n}"), what=f"{name}'s runtime")
        await kube.mark_runtime_ready(name)

    def last(stub) -> dict[str, Any] | None:
        return stub.posts("/headroom")[-1] if stub.posts("/headroom") else None

    async def pushed(stub) -> Any:
        body = last(stub)
        return body if body and body["symbol_exposure"].get("BTC/USDT") else None  # once both report figures

    first, second = (
        await kube.eventually(lambda: pushed(one), what="a headroom"),
        await kube.eventually(lambda: pushed(two), what="a headroom"),
    )
    # capital 2 x 10,250.50 x 50 % = 10,250.50; BTC limit 50 % = 5,125.25, 3,000 held: 2,125.25 left, half each
    assert first["symbol_exposure"] == {"BTC/USDT": pytest.approx(1_062.62, abs=0.01)}
    assert second["symbol_exposure"] == first["symbol_exposure"]
    assert first["scope"] == "account" and first["policy"] == "acct-risk" and not first["kill_switch"]

    await kube.patch("riskpolicies", "acct-risk", {"spec": {"killSwitch": True}})

    async def killed() -> Any:
        return all((last(stub) or {}).get("kill_switch") for stub in (one, two))

    await kube.eventually(killed, within=10, what="the kill switch on both runtimes")
