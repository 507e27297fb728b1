"""What the real operator refuses to run, against kmock: a credentials Secret that is not labelled for slsbot
(until it is), one of the operator's own Secrets as credentials, a runtime service account that is not labelled for
slsbot runtimes (until it is), and an image outside the allow-list. Nothing is created for a refused Strategy, and
the condition names the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from slsbot.adapters.kubernetes.client import PARTIAL_METADATA

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]


def account(name: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": name},
        "spec": {"exchange": "binance", "mode": "testnet", "credentials": {"secretRef": {"name": secret}}},
    }


def strategy(name: str, account: str, port: int, image: str | None = None) -> dict[str, Any]:
    runtime: dict[str, Any] = {"port": port}
    if image is not None:
        runtime["image"] = image
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": name},
        "spec": {
            "accountRef": {"name": account},
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]},
            "marketData": {"source": "exchange"},  # a testnet account trades the exchange's own candles
            "runtime": runtime,
        },
    }


def ready_condition(body: dict[str, Any] | None) -> dict[str, Any]:
    for cond in ((body or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return cond
    return {}


@pytest.mark.long  # in make test-long: about 13 s
async def test_credentials_must_be_labelled_for_slsbot_and_never_the_operators_own(kube, start_operator, runtime_stub):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    # Another bot's keys, which whoever may create Strategies here must not be able to mount.
    await kube.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "other-keys"}, "data": {"apiKey": "eA=="}}
    )
    await kube.apply(account("borrowed", "other-keys"))
    await kube.apply(strategy("btc-trend", "borrowed", runtime_stub.port))

    async def reason(plural: str, name: str, wanted: str) -> dict[str, Any] | None:
        cond = ready_condition(await kube.get(plural, name))
        return cond if cond.get("reason") == wanted else None

    waiting = await kube.eventually(
        lambda: reason("strategies", "btc-trend", "WaitingForDependency"), what="the strategy waiting for a label"
    )
    assert "spec.credentials.secretRef.name: Secret 'other-keys' is not labelled for slsbot" in waiting["message"]
    assert "kubectl -n trading label secret other-keys slsbot.io/credentials=true" in waiting["message"]
    pending = await kube.eventually(
        lambda: reason("tradingaccounts", "borrowed", "WaitingForDependency"), what="the account waiting for a label"
    )
    assert pending["message"].startswith("spec.credentials.secretRef.name: Secret 'other-keys' is not labelled")
    assert await kube.get("deployments", "slsbot-runtime-btc-trend") is None

    # Whoever owns the Secret says it holds credentials for slsbot: the strategy runs.
    await kube.patch("secrets", "other-keys", {"metadata": {"labels": {"slsbot.io/credentials": "true"}}})
    deployment = await kube.eventually(
        lambda: kube.get("deployments", "slsbot-runtime-btc-trend"), within=30, what="the runtime once labelled"
    )
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["credentials"]["secret"]["secretName"] == "other-keys"

    # A runtime's control Secret as credentials would hand its token to another bot: refused, labelled or not.
    control = "slsbot-runtime-btc-trend-control"
    await kube.patch("secrets", control, {"metadata": {"labels": {"slsbot.io/credentials": "true"}}})
    await kube.apply(account("thief", control))
    await kube.apply(strategy("eth-trend", "thief", runtime_stub.port))
    invalid = await kube.eventually(lambda: reason("strategies", "eth-trend", "InvalidSpec"), what="eth-trend refused")
    assert (
        f"spec.credentials.secretRef.name: Secret '{control}' is one of the slsbot operator's own"
        in (invalid["message"])
    )
    account_invalid = await kube.eventually(
        lambda: reason("tradingaccounts", "thief", "InvalidSpec"), what="the account refused"
    )
    assert account_invalid["message"].startswith("spec.credentials.secretRef.name: ")
    assert await kube.get("deployments", "slsbot-runtime-eth-trend") is None


async def test_an_image_outside_the_allow_list_is_refused_before_anything_is_created(kube, start_operator):
    await start_operator(runtime_url="http://127.0.0.1:9", allowed_images=["registry.example.com/trading/"])
    await kube.apply(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": "paper"},
            "spec": {"exchange": "binance", "mode": "paper"},
        }
    )
    await kube.apply(strategy("miner", "paper", 8000, image="ghcr.io/slsbot/runtime:0.1.0"))

    async def refused() -> dict[str, Any] | None:
        cond = ready_condition(await kube.get("strategies", "miner"))
        return cond if cond.get("reason") == "InvalidSpec" else None

    cond = await kube.eventually(refused, what="the strategy refused")
    assert cond["message"].startswith("spec.runtime.image: 'ghcr.io/slsbot/runtime:0.1.0' is not an allowed")
    assert "registry.example.com/trading/" in cond["message"]

    async def warned() -> bool:
        return "InvalidSpec" in await kube.event_reasons("miner")

    await kube.eventually(warned, what="an InvalidSpec event on the strategy")
    for plural in ("deployments", "configmaps", "services", "persistentvolumeclaims", "networkpolicies"):
        assert await kube.get(plural, "slsbot-runtime-miner") is None, plural
    assert await kube.get("secrets", "slsbot-runtime-miner-control") is None

    await kube.patch("strategies", "miner", {"spec": {"runtime": {"image": "registry.example.com/trading/bot:1"}}})
    await kube.eventually(
        lambda: kube.get("deployments", "slsbot-runtime-miner"), within=15, what="the runtime on an allowed image"
    )


def vault_account(name: str, service_account: str) -> dict[str, Any]:
    vault = {
        "address": "https://vault.vault.svc:8200",
        "path": "trading/binance",
        "auth": {"role": "binance", "serviceAccountName": service_account},
    }
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": name},
        "spec": {"exchange": "binance", "mode": "testnet", "credentials": {"vault": vault}},
    }


@pytest.mark.long  # in make test-long: about 13 s
async def test_the_runtime_runs_only_as_a_service_account_labelled_for_slsbot_runtimes(
    kube, start_operator, runtime_stub
):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    # A powerful account of the namespace (say, CI's deployer): whoever may edit a TradingAccount must not be able to
    # have the operator run a pod as it.
    await kube.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer"}})
    await kube.apply(vault_account("vaulted", "deployer"))
    await kube.apply(strategy("btc-trend", "vaulted", runtime_stub.port))

    async def reason(plural: str, name: str, wanted: str) -> dict[str, Any] | None:
        cond = ready_condition(await kube.get(plural, name))
        return cond if cond.get("reason") == wanted else None

    field = "spec.credentials.vault.auth.serviceAccountName"
    command = "kubectl -n trading label serviceaccount deployer slsbot.io/runtime-service-account=true"
    waiting = await kube.eventually(
        lambda: reason("strategies", "btc-trend", "WaitingForDependency"), what="the strategy waiting for a label"
    )
    assert f"{field}: ServiceAccount 'deployer' is not labelled for slsbot runtimes" in waiting["message"]
    assert command in waiting["message"]
    pending = await kube.eventually(
        lambda: reason("tradingaccounts", "vaulted", "WaitingForDependency"), what="the account waiting for a label"
    )
    assert pending["message"].startswith(f"{field}: ServiceAccount 'deployer' is not labelled")

    async def warned() -> bool:
        return "WaitingForDependency" in await kube.event_reasons("btc-trend")

    await kube.eventually(warned, what="a WaitingForDependency event on the strategy")
    for plural in ("deployments", "configmaps", "services", "persistentvolumeclaims", "networkpolicies"):
        assert await kube.get(plural, "slsbot-runtime-btc-trend") is None, plural
    status, pods = await kube._call("GET", kube.path("pods"))
    assert status == 200 and pods["items"] == []

    # An administrator chose it for slsbot runtimes: the runtime is created, running as it.
    await kube.patch(
        "serviceaccounts", "deployer", {"metadata": {"labels": {"slsbot.io/runtime-service-account": "true"}}}
    )
    deployment = await kube.eventually(
        lambda: kube.get("deployments", "slsbot-runtime-btc-trend"), within=30, what="the runtime once labelled"
    )
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "deployer"
    # The label is read from metadata only, like a credentials Secret's.
    reads = [c for c in kube.operator_calls() if c.resource == "serviceaccounts"]
    assert reads and {c.verb for c in reads} == {"get"}
    assert all(c.accept == PARTIAL_METADATA for c in reads)
