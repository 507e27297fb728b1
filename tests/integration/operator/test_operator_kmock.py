"""The real operator (kopf, the shared reconcile service, the Kubernetes backend) against kmock over HTTP.

What kmock cannot do is played by the test: ``mark_runtime_ready`` stands in for the Deployment controller and the
kubelet, and ``RuntimeStub`` answers the runtime's control endpoints. kmock has no garbage collector, so owner
references are asserted rather than exercised; the finalizer deletes the objects itself anyway.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from tests.fakes.test_secrets import OPERATOR_KMOCK_NEW_CONTROL_KEY as NEW_CONTROL_KEY

from slsbot.adapters.control_tokens import ControlKey
from slsbot.adapters.kubernetes.client import PARTIAL_METADATA
from slsbot.api import RuntimeConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

RUNTIME = "slsbot-runtime-btc-trend"
CONTROL_SECRET = "slsbot-runtime-btc-trend-control"


def policy(name: str = "standard-risk", **per_trade: float) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RiskPolicy",
        "metadata": {"name": name},
        "spec": {"perTrade": per_trade or {"minPercent": 1, "maxPercent": 10}},
    }


def account(name: str = "paper-binance", *, exchange: str = "binance", policy: str = "standard-risk") -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": name},
        "spec": {"exchange": exchange, "mode": "paper", "riskPolicyRef": {"name": policy}},
    }


def strategy(port: int, *, account: str = "paper-binance", fast: int = 10) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Strategy",
        "metadata": {"name": "btc-trend"},
        "spec": {
            "accountRef": {"name": account},
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": fast, "slow": 30}}]},
            "runtime": {"port": port},
        },
    }


def condition(body: dict[str, Any] | None, type: str) -> dict[str, Any]:
    for cond in ((body or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type:
            return cond
    return {}


def runtime_config(config_map: dict[str, Any]) -> RuntimeConfig:
    return RuntimeConfig.model_validate(yaml.safe_load(config_map["data"]["runtime.yaml"]))


async def test_a_strategy_becomes_a_deployment_configmap_and_service_that_report_back(
    kube, start_operator, runtime_stub
):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(policy())
    await kube.apply(account())
    created = await kube.apply(strategy(runtime_stub.port))
    uid = created["metadata"]["uid"]

    deployment = await kube.eventually(lambda: kube.get("deployments", RUNTIME), what="the runtime Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    owner = deployment["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Strategy" and owner["uid"] == uid and owner["controller"] is True
    container = spec["template"]["spec"]["containers"][0]
    assert container["args"] == ["runtime", "--config", "/etc/slsbot/runtime.yaml"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}

    config_map = await kube.get("configmaps", RUNTIME)
    service = await kube.get("services", RUNTIME)
    claim = await kube.get("persistentvolumeclaims", RUNTIME)
    control = await kube.get("secrets", CONTROL_SECRET)
    network_policy = await kube.get("networkpolicies", RUNTIME)
    for owned in (config_map, service, claim, control, network_policy):
        assert owned is not None
        assert owned["metadata"]["ownerReferences"][0]["uid"] == uid
    assert network_policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": runtime_stub.port}]

    # The runtime's control token: derived from the operator's key, in its own Secret, mounted as the runtime's
    # token file; neither the ConfigMap nor the Deployment holds it.
    token = kube.runtime_token("btc-trend")
    assert base64.b64decode(control["data"]["token"]).decode() == f"{token}\n"
    assert {"name": "SLSBOT_RUNTIME_TOKEN_FILE", "value": "/var/run/slsbot/control/token"} in container["env"]
    for manifest in (deployment, config_map, service):
        assert token not in json.dumps(manifest) and kube.control_key not in json.dumps(manifest)
    config = runtime_config(config_map)
    assert config.name == "btc-trend" and config.namespace == "trading"
    assert config.account.exchange == "binance" and config.risk.per_trade.max_percent == 10
    assert config.server.port == runtime_stub.port and config.state.path == "/var/lib/slsbot/state.db"
    assert (
        spec["template"]["metadata"]["annotations"]["slsbot.io/config-hash"]
        == config_map["metadata"]["annotations"]["slsbot.io/config-hash"]
    )
    assert service["spec"]["ports"] == [
        {"name": "http", "port": runtime_stub.port, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"

    starting = await kube.eventually(
        lambda: _with(
            kube.get("strategies", "btc-trend"), lambda b: condition(b, "Progressing").get("status") == "True"
        ),
        what="Progressing=True while the runtime starts",
    )
    assert condition(starting, "Ready")["status"] == "False"
    await kube.eventually(  # kopf posts events from a background task: they land a moment later
        lambda: _with(kube.event_reasons("btc-trend"), lambda reasons: "Creating" in reasons),
        what="a Creating event",
    )

    await kube.mark_runtime_ready("btc-trend", restarts=2)
    running = await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: condition(b, "Ready").get("status") == "True"),
        what="Ready=True once the pod is ready and the runtime answers",
    )
    status = running["status"]
    assert status["phase"] == "Running"
    assert status["restarts"] == 2 and status["equity"] == 10_250.5 and status["tradeCount"] == 7
    assert status["workload"] == f"Deployment/{RUNTIME}"
    assert status["observedGeneration"] == running["metadata"]["generation"]
    assert condition(running, "Degraded")["status"] == "False"
    assert runtime_stub.refused == []  # every call carried the runtime's token
    assert token not in json.dumps(running)  # nor does the status

    account_status = await kube.eventually(
        lambda: _with(kube.get("tradingaccounts", "paper-binance"), lambda b: b["status"]["strategies"] == 1),
        what="the account counts its strategy",
    )
    assert condition(account_status, "Ready")["status"] == "True"

    # Pausing is a call to the runtime, not a rollout; the mounted config follows so a restart stays paused.
    hash_before = spec["template"]["metadata"]["annotations"]["slsbot.io/config-hash"]
    await kube.patch("strategies", "btc-trend", {"spec": {"paused": True}})
    await kube.eventually(lambda: _sync(runtime_stub.posts("/pause")), what="POST /pause on the runtime")
    paused = await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: b["status"]["phase"] == "Paused"),
        what="phase Paused",
    )
    assert condition(paused, "Ready")["status"] == "True"
    assert runtime_config(await kube.get("configmaps", RUNTIME)).paused is True
    deployment = await kube.get("deployments", RUNTIME)
    assert deployment["spec"]["template"]["metadata"]["annotations"]["slsbot.io/config-hash"] == hash_before
    await kube.eventually(  # kopf posts events from a background task: they land a moment later
        lambda: _with(kube.event_reasons("btc-trend"), lambda reasons: "Pausing" in reasons),
        what="a Pausing event",
    )


async def test_rotating_the_control_key_rewrites_the_secret_and_rolls_no_pod(kube, start_operator, runtime_stub):
    stop_first = await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(policy())
    await kube.apply(account())
    await kube.apply(strategy(runtime_stub.port))
    await kube.eventually(lambda: kube.get("deployments", RUNTIME), what="the runtime Deployment")
    await kube.mark_runtime_ready("btc-trend")
    await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: condition(b, "Ready").get("status") == "True"),
        what="Ready=True",
    )
    before = await kube.get("deployments", RUNTIME)
    await stop_first()

    # The operator restarts with a new key and the old one as the previous, valid for an hour.
    old_token = kube.runtime_token("btc-trend")
    new_token = ControlKey(NEW_CONTROL_KEY, source="test").token_for("trading", "btc-trend")
    grace_ends = datetime.now(UTC) + timedelta(hours=1)
    await start_operator(
        runtime_url="http://127.0.0.1:{port}",
        control_key=NEW_CONTROL_KEY,
        control_key_previous=kube.control_key,
        control_key_grace_until=grace_ends,
    )
    secret = await kube.eventually(
        lambda: _with(
            kube.get("secrets", CONTROL_SECRET),
            lambda b: base64.b64decode(b["data"]["token"]).decode().startswith(new_token),
        ),
        what="the control Secret holding the new token",
    )
    lines = base64.b64decode(secret["data"]["token"]).decode().splitlines()
    assert lines == [new_token, f"{old_token} {grace_ends.isoformat(timespec='seconds')}"]
    # Until the kubelet refreshes the pod's volume, the runtime knows only the old token: the new one is refused
    # (401, nothing done) and the call is repeated with the old one, so commands keep working.
    await kube.patch("strategies", "btc-trend", {"spec": {"paused": True}})
    await kube.eventually(lambda: _sync(runtime_stub.posts("/pause")), what="POST /pause on the runtime")
    assert ("POST", "/pause") in runtime_stub.refused  # the new token first
    # The kubelet refreshed the volume: the runtime reads the new token, and takes commands signed with it.
    runtime_stub.token, refused = new_token, len(runtime_stub.refused)
    await kube.patch("strategies", "btc-trend", {"spec": {"paused": False}})
    await kube.eventually(lambda: _sync(runtime_stub.posts("/resume")), what="POST /resume on the runtime")
    assert len(runtime_stub.refused) == refused  # signed with the new key, accepted at once
    after = await kube.get("deployments", RUNTIME)
    assert after["spec"]["template"] == before["spec"]["template"]  # no rollout: the pods never restarted
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    for manifest in (after, await kube.get("configmaps", RUNTIME)):
        assert new_token not in json.dumps(manifest) and old_token not in json.dumps(manifest)


async def test_a_changed_ensemble_rolls_out_a_new_config_hash(kube, start_operator, runtime_stub):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(policy())
    await kube.apply(account())
    await kube.apply(strategy(runtime_stub.port, fast=10))
    first = await kube.eventually(lambda: kube.get("deployments", RUNTIME), what="the runtime Deployment")
    old_hash = first["spec"]["template"]["metadata"]["annotations"]["slsbot.io/config-hash"]

    await kube.patch(
        "strategies",
        "btc-trend",
        {
            "spec": {
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 12, "slow": 30}}]}
            }
        },
    )

    def rolled(body: dict[str, Any]) -> bool:
        return body["spec"]["template"]["metadata"]["annotations"]["slsbot.io/config-hash"] != old_hash

    rolled_out = await kube.eventually(
        lambda: _with(kube.get("deployments", RUNTIME), rolled), what="a new config hash on the pod template"
    )
    new_hash = rolled_out["spec"]["template"]["metadata"]["annotations"]["slsbot.io/config-hash"]
    config_map = await kube.get("configmaps", RUNTIME)
    assert config_map["metadata"]["annotations"]["slsbot.io/config-hash"] == new_hash
    assert runtime_config(config_map).ensemble.members[0].params == {"fast": 12, "slow": 30}
    await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: b["status"].get("configHash") == new_hash),
        what="the status carries the new hash",
    )
    await kube.eventually(  # kopf posts events from a background task: they land a moment later
        lambda: _with(kube.event_reasons("btc-trend"), lambda reasons: "ConfigChanged" in reasons),
        what="a ConfigChanged event",
    )


async def test_deletion_drains_the_runtime_then_removes_everything(kube, start_operator, runtime_stub):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(policy())
    await kube.apply(account())
    await kube.apply(strategy(runtime_stub.port))
    await kube.eventually(lambda: kube.get("deployments", RUNTIME), what="the runtime Deployment")
    await kube.mark_runtime_ready("btc-trend")
    await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: condition(b, "Ready").get("status") == "True"),
        what="Ready=True",
    )
    body = await kube.get("strategies", "btc-trend")
    assert "slsbot.io/finalizer" in body["metadata"]["finalizers"]

    runtime_stub.drained_after = None  # the runtime is still cancelling until the test says otherwise
    await kube.delete("strategies", "btc-trend")

    await kube.eventually(lambda: _sync(runtime_stub.posts("/shutdown")), what="POST /shutdown on the runtime")
    assert runtime_stub.posts("/shutdown") == [{"cancelOrders": True, "flatten": False}]
    await kube.eventually(
        lambda: _sync(runtime_stub.polls_since_shutdown >= 3), what="three /status polls while it drains"
    )
    # Not drained yet: everything is kept, so the kubelet can neither restart nor kill the runtime mid-drain.
    assert await kube.get("strategies", "btc-trend") is not None
    for plural, name in (("deployments", RUNTIME), ("configmaps", RUNTIME), ("secrets", CONTROL_SECRET)):
        assert await kube.get(plural, name) is not None, plural
    await kube.eventually(
        lambda: _with(kube.event_reasons("btc-trend"), lambda reasons: "WaitingForDrain" in reasons),
        what="a WaitingForDrain event",
    )
    (waiting,) = [e for e in await kube.events("btc-trend") if e["reason"] == "WaitingForDrain"]
    assert waiting["type"] == "Normal" and "'finished'" in waiting["message"]

    runtime_stub.drained_after = runtime_stub.polls_since_shutdown + 2  # reports drained two polls from now
    await kube.eventually(lambda: _gone(kube, "strategies", "btc-trend"), what="the finalizer lets the Strategy go")
    assert runtime_stub.polls_since_shutdown >= runtime_stub.drained_after + 1
    for plural in ("deployments", "configmaps", "services", "persistentvolumeclaims", "networkpolicies"):
        assert await kube.get(plural, RUNTIME) is None, plural
    assert await kube.get("secrets", CONTROL_SECRET) is None
    reasons = await kube.eventually(
        lambda: _with(kube.event_reasons("btc-trend"), lambda reasons: "Deleting" in reasons), what="a Deleting event"
    )
    assert reasons.index("Draining") < reasons.index("WaitingForDrain") < reasons.index("Deleting")
    assert "DeletedWithoutDrain" not in reasons
    assert runtime_stub.refused == []

    # Everything the operator did over this whole life cycle is allowed by its ClusterRole, and it wrote its
    # control Secret reading only its metadata, never its data (test_operator_rbac.py checks every rule).
    requests = kube.operator_requests()
    assert ("apps", "deployments", "create") in requests and ("", "events", "create") in requests
    assert not [r for r in requests if not kube.cluster_role_allows(*r)]
    assert ("", "secrets", "create") in requests and ("", "secrets", "delete") in requests
    assert not [r for r in requests if r[1] == "secrets" and r[2] in ("list", "watch", "patch", "update")]
    secret_reads = [c for c in kube.operator_calls() if c.resource == "secrets" and c.verb == "get"]
    assert secret_reads and {c.accept for c in secret_reads} == {PARTIAL_METADATA}


async def test_a_runtime_too_slow_to_answer_is_not_deleted_undrained_but_drained_once_it_answers(
    kube, start_operator, runtime_stub
):
    await start_operator(runtime_url="http://127.0.0.1:{port}", runtime_timeout_seconds=1.0)
    await kube.apply(policy())
    await kube.apply(account())
    await kube.apply(strategy(runtime_stub.port))
    await kube.eventually(lambda: kube.get("deployments", RUNTIME), what="the runtime Deployment")
    await kube.mark_runtime_ready("btc-trend")
    await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: condition(b, "Ready").get("status") == "True"),
        what="Ready=True",
    )

    runtime_stub.answering.clear()  # alive, but every answer now takes longer than the operator waits
    unanswered_before = runtime_stub.unanswered
    await kube.delete("strategies", "btc-trend")
    await kube.eventually(
        lambda: _with(kube.event_reasons("btc-trend"), lambda reasons: "WaitingToDrain" in reasons),
        what="a WaitingToDrain event while the runtime does not answer",
    )
    (waiting,) = [e for e in await kube.events("btc-trend") if e["reason"] == "WaitingToDrain"]
    assert "does not answer" in waiting["message"] and "ReadTimeout" in waiting["message"]
    await kube.eventually(
        lambda: _sync(runtime_stub.unanswered >= unanswered_before + 3), what="three unanswered calls, retried"
    )
    # Far past the 7 s after which it used to be deleted undrained: still there, nothing deleted, no cancel lost.
    assert await kube.get("strategies", "btc-trend") is not None
    assert await kube.get("deployments", RUNTIME) is not None
    assert "DeletedWithoutDrain" not in await kube.event_reasons("btc-trend")

    runtime_stub.answering.set()  # it answers again: the drain goes through, then the deletion
    await kube.eventually(lambda: _sync(runtime_stub.posts("/shutdown")), what="POST /shutdown once it answers")
    await kube.eventually(lambda: _gone(kube, "strategies", "btc-trend"), within=30, what="the Strategy goes")
    reasons = await kube.eventually(
        lambda: _with(kube.event_reasons("btc-trend"), lambda reasons: "Deleting" in reasons), what="a Deleting event"
    )
    assert "Draining" in reasons and "DeletedWithoutDrain" not in reasons


async def test_an_unreachable_runtime_is_deleted_without_drain_after_the_wait_and_a_warning(kube, start_operator):
    await start_operator(runtime_url="http://127.0.0.1:9/nothing-listens-here", drain_wait_seconds=3.0)
    await kube.apply(policy())
    await kube.apply(account())
    await kube.apply(strategy(8000))
    await kube.eventually(lambda: kube.get("deployments", RUNTIME), what="the runtime Deployment")
    await kube.mark_runtime_ready("btc-trend")
    degraded = await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: b["status"]["phase"] == "Degraded"),
        what="Degraded: the pod is ready but the runtime does not answer",
    )
    assert condition(degraded, "Ready")["status"] == "False"

    await kube.delete("strategies", "btc-trend")

    await kube.eventually(lambda: _gone(kube, "strategies", "btc-trend"), what="the Strategy goes anyway")
    assert await kube.get("deployments", RUNTIME) is None
    warnings = [e for e in await kube.events("btc-trend") if e["reason"] == "DeletedWithoutDrain"]
    assert warnings and warnings[0]["type"] == "Warning"
    assert "open orders" in warnings[0]["message"]
    assert "was running but did not answer its control endpoint for 3s" in warnings[0]["message"]


async def test_a_missing_account_waits_then_a_new_account_wakes_the_strategy(kube, start_operator, runtime_stub):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(policy())
    await kube.apply(strategy(runtime_stub.port, account="late-account"))

    waiting = await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: condition(b, "Ready").get("reason")),
        what="a Ready condition",
    )
    ready = condition(waiting, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "WaitingForDependency"
    assert "spec.accountRef.name" in ready["message"] and "'late-account' does not exist" in ready["message"]
    assert waiting["status"]["phase"] == "Pending"
    assert await kube.get("deployments", RUNTIME) is None
    await kube.eventually(
        lambda: _with(kube.event_reasons("btc-trend"), lambda reasons: "WaitingForDependency" in reasons),
        what="a WaitingForDependency event",
    )

    loop_time = __import__("asyncio").get_running_loop().time
    started = loop_time()
    await kube.apply(account("late-account"))
    await kube.eventually(
        lambda: kube.get("deployments", RUNTIME), within=60, what="the runtime, once the account exists"
    )
    # The strategy's own safety requeue is 5 minutes away: the account's handler woke it through the index (the bound
    # is loose on purpose: a timed bound near the reconcile's own duration failed under load).
    assert loop_time() - started < 60


async def test_a_strategy_pass_reads_its_account_and_policy_from_kopfs_watch_not_from_a_list(
    kube, cluster, start_operator, runtime_stub
):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(policy())
    await kube.apply(account())
    await kube.apply(strategy(runtime_stub.port))
    await kube.eventually(lambda: kube.get("deployments", RUNTIME), what="the runtime Deployment")

    def lists() -> int:
        return cluster.calls["tradingaccounts", "list"] + cluster.calls["riskpolicies", "list"]

    listed, passes = lists(), cluster.calls["strategies", "get"]  # each pass reads its Strategy first
    await kube.mark_runtime_ready("btc-trend")
    await kube.patch("strategies", "btc-trend", {"spec": {"paused": True}})
    await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: b["status"]["phase"] == "Paused"),
        what="phase Paused",
    )
    assert cluster.calls["strategies", "get"] > passes  # it looked at the Strategy again
    assert lists() == listed  # kopf's own first listing of each kind, before the Strategy came, and no more


async def test_a_contradictory_policy_is_invalid_and_holds_back_its_strategies(kube, start_operator, runtime_stub):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(policy(minPercent=20, maxPercent=10))
    await kube.apply(account())
    await kube.apply(account("typo-account", exchange="binanse"))
    await kube.apply(strategy(runtime_stub.port))

    invalid = await kube.eventually(
        lambda: _with(kube.get("riskpolicies", "standard-risk"), lambda b: condition(b, "Ready").get("reason")),
        what="the policy's Ready condition",
    )
    ready = condition(invalid, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.perTrade.minPercent" in ready["message"]
    assert invalid["status"]["phase"] == "Invalid"
    await kube.eventually(
        lambda: _with(kube.event_reasons("standard-risk"), lambda reasons: "InvalidSpec" in reasons),
        what="a InvalidSpec event",
    )

    typo = await kube.eventually(
        lambda: _with(kube.get("tradingaccounts", "typo-account"), lambda b: condition(b, "Ready").get("reason")),
        what="the misspelt exchange reported",
    )
    assert (
        condition(typo, "Ready")["reason"] == "InvalidSpec" and "spec.exchange" in condition(typo, "Ready")["message"]
    )

    held = await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: condition(b, "Ready").get("reason")),
        what="the strategy's Ready condition",
    )
    assert condition(held, "Ready")["reason"] == "WaitingForDependency"
    assert "RiskPolicy 'standard-risk'" in condition(held, "Ready")["message"]
    assert await kube.get("deployments", RUNTIME) is None

    await kube.patch("riskpolicies", "standard-risk", {"spec": {"perTrade": {"minPercent": 1, "maxPercent": 10}}})
    await kube.eventually(
        lambda: kube.get("deployments", RUNTIME), within=8, what="the runtime once the policy is fixed"
    )
    fixed = await kube.get("riskpolicies", "standard-risk")
    assert condition(fixed, "Ready")["status"] == "True"


async def _with(fetch: Any, predicate: Any) -> Any:
    body = await fetch
    if body is None:
        return None
    try:
        return body if predicate(body) else None
    except (KeyError, TypeError):
        return None


async def _sync(value: Any) -> Any:
    return value


async def _gone(kube: Any, plural: str, name: str) -> bool:
    return await kube.get(plural, name) is None


async def test_a_strategy_the_models_refuse_is_invalid_naming_the_field(kube, start_operator, runtime_stub):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(policy())
    await kube.apply(account())
    body = strategy(runtime_stub.port)
    body["spec"]["ensemble"]["members"].append({"name": "sma", "strategy": "ema_cross"})  # a CRD cannot refuse it
    await kube.apply(body)

    invalid = await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: condition(b, "Ready").get("reason")),
        what="the strategy's Ready condition",
    )
    ready = condition(invalid, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert ready["message"].startswith("spec.ensemble: ") and "names must be unique" in ready["message"]
    assert invalid["status"]["phase"] == "Failed"
    assert await kube.get("deployments", RUNTIME) is None
    await kube.eventually(
        lambda: _with(kube.event_reasons("btc-trend"), lambda reasons: "InvalidSpec" in reasons),
        what="a InvalidSpec event",
    )

    fixed = [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]
    await kube.patch("strategies", "btc-trend", {"spec": {"ensemble": {"members": fixed}}})
    await kube.eventually(lambda: kube.get("deployments", RUNTIME), within=8, what="the runtime once the spec is fixed")


def experiment(name: str, *, target: str = "btc-trend", member: str = "sma") -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {
            "type": "tuning",
            "strategyRef": {"name": target},
            "searchSpace": [{"name": f"{member}.fast", "type": "int", "low": 5, "high": 20}],
        },
    }


async def test_experiments_are_validated_and_a_tuning_one_names_the_missing_study_storage(
    kube, start_operator, runtime_stub
):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(experiment("tune-late"))
    waiting = await kube.eventually(
        lambda: _with(kube.get("experiments", "tune-late"), lambda b: condition(b, "Ready").get("reason")),
        what="the experiment's Ready condition",
    )
    assert condition(waiting, "Ready")["reason"] == "WaitingForDependency"
    assert "spec.strategyRef.name" in condition(waiting, "Ready")["message"]

    await kube.apply(policy())
    await kube.apply(account())
    await kube.apply(strategy(runtime_stub.port))
    await kube.apply(experiment("tune-typo", member="smaa"))
    typo = await kube.eventually(
        lambda: _with(kube.get("experiments", "tune-typo"), lambda b: condition(b, "Ready").get("reason")),
        what="the misspelt member reported",
    )
    assert condition(typo, "Ready")["reason"] == "InvalidSpec"
    assert "spec.searchSpace[0].name" in condition(typo, "Ready")["message"]

    await kube.patch("experiments", "tune-late", {"spec": {"budget": {"maxTrials": 7}}})
    accepted = await kube.eventually(
        lambda: _with(
            kube.get("experiments", "tune-late"),
            lambda b: condition(b, "Ready").get("reason") == "StorageNotConfigured",
        ),
        what="the experiment valid once its strategy exists, refused for want of a study storage",
    )
    assert accepted["status"]["phase"] == "Pending"
    assert "SLSBOT_OPERATOR_STUDY_STORAGE is not set" in condition(accepted, "Ready")["message"]
    assert await kube.get("jobs", "slsbot-tune-tune-late-r1") is None


async def test_a_spec_the_runtime_would_refuse_is_invalid_before_any_workload_exists(
    kube, start_operator, runtime_stub
):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "binance-testnet-keys", "labels": {"slsbot.io/credentials": "true"}},
            "stringData": {"apiKey": "k", "secret": "s"},
        }
    )
    await kube.apply(policy())
    testnet = account()
    testnet["spec"].update(mode="testnet", credentials={"secretRef": {"name": "binance-testnet-keys"}})
    await kube.apply(testnet)
    await kube.apply(strategy(runtime_stub.port))  # replays recorded candles: a testnet account cannot fill those
    refused = await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: condition(b, "Ready").get("reason")),
        what="a Ready condition",
    )
    ready = condition(refused, "Ready")
    assert ready["reason"] == "InvalidSpec" and refused["status"]["phase"] == "Failed"
    assert ready["message"].startswith("spec.marketData.source: a testnet account sends real orders to binance")
    assert await kube.get("deployments", RUNTIME) is None  # never a pod that exits with code 2 for ever
    assert await kube.get("configmaps", RUNTIME) is None


async def test_deleting_the_account_of_a_running_strategy_keeps_it_running_and_says_so(
    kube, start_operator, runtime_stub
):
    await start_operator(runtime_url="http://127.0.0.1:{port}")
    await kube.apply(policy())
    await kube.apply(account())
    await kube.apply(strategy(runtime_stub.port))
    await kube.eventually(lambda: kube.get("deployments", RUNTIME), what="the runtime Deployment")
    await kube.mark_runtime_ready("btc-trend")
    await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: b["status"]["phase"] == "Running"),
        what="Running",
    )
    deployment = await kube.get("deployments", RUNTIME)

    await kube.delete("tradingaccounts", "paper-binance")
    degraded = await kube.eventually(
        lambda: _with(kube.get("strategies", "btc-trend"), lambda b: b["status"]["phase"] == "Degraded"),
        what="Degraded once the account is gone",
    )
    ready = condition(degraded, "Ready")
    assert ready["status"] == "True" and ready["reason"] == "RunningLastGoodConfig"
    assert "keeps trading on its last good config" in ready["message"]
    assert "TradingAccount 'paper-binance' does not exist" in ready["message"]
    assert condition(degraded, "Degraded")["reason"] == "WaitingForDependency"
    assert degraded["status"]["equity"] == 10_250.5  # the runtime's figures, still read
    after = await kube.get("deployments", RUNTIME)
    assert after is not None and after["metadata"]["resourceVersion"] == deployment["metadata"]["resourceVersion"]
    assert runtime_stub.posts("/shutdown") == []
