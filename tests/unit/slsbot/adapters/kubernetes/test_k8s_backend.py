"""KubernetesRuntimeBackend, Events and the object store over an in-memory API: the adapter code is under test,
the API server is a dict (the integration tests run the same code against kmock over HTTP)."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from slsbot.adapters.control_tokens import ControlKey, ControlKeys
from slsbot.adapters.kubernetes.backend import BackendOptions, KubernetesRuntimeBackend
from slsbot.adapters.kubernetes.events import KubernetesEventRecorder, build_event
from slsbot.adapters.kubernetes.manifests import (
    PeerSelector,
    RuntimeNetworkOptions,
    RuntimePodOptions,
    StateVolumeKind,
    credentials_dir,
)
from slsbot.adapters.kubernetes.objects import InvalidObjectError, KubernetesObjectStore, parse_object
from slsbot.api import RiskPolicySpec, Strategy, StrategyStatus, TradingAccount
from slsbot.api.account import SecretCredentials
from slsbot.api.health import TradingMode
from slsbot.domain.errors import ConflictError, NotFoundError, RuntimeUnreachable
from slsbot.domain.plan import Action, ActionKind, RuntimeState
from slsbot.domain.resolve import ResolvedStrategy
from slsbot.domain.runtime_spec import desired_runtime


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch, as the API server applies it."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            child = target.get(key)
            if not isinstance(child, dict):
                child = target[key] = {}
            merge(child, value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class MemoryApi:
    """The KubernetesApi surface over a dict keyed by path."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []

    def get(self, path: str) -> dict[str, Any]:
        self.calls.append(("GET", path))
        if path not in self.objects:
            raise NotFoundError(path)
        return copy.deepcopy(self.objects[path])

    def find(self, path: str) -> dict[str, Any] | None:
        try:
            return self.get(path)
        except NotFoundError:
            return None

    def find_metadata(self, path: str) -> dict[str, Any] | None:
        self.calls.append(("GET metadata", path))
        if path not in self.objects:
            return None
        meta = self.objects[path]["metadata"]
        return {key: copy.deepcopy(meta[key]) for key in ("name", "namespace", "uid", "labels") if key in meta}

    def list(self, path: str, *, label_selector: dict[str, str] | None = None) -> list[dict[str, Any]]:
        self.calls.append(("LIST", path))
        return [copy.deepcopy(o) for p, o in self.objects.items() if p.rsplit("/", 1)[0] == path]

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("POST", path))
        full = f"{path}/{body['metadata']['name']}"
        if full in self.objects:
            raise ConflictError(full)
        self.objects[full] = copy.deepcopy(dict(body))
        return body

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("PATCH", path))
        target = path.removesuffix("/status")
        if target not in self.objects:
            raise NotFoundError(path)
        return merge(self.objects[target], body)

    def delete(self, path: str, *, propagation: str | None = None) -> bool:
        self.calls.append(("DELETE", path))
        return self.objects.pop(path, None) is not None


@dataclass
class RecordingControl:
    status_answer: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def status(self, base_url: str, *, token: str | None = None) -> dict[str, Any]:
        self.calls.append(("status", base_url, {"token": token}))
        if self.status_answer is None:
            raise RuntimeUnreachable(f"{base_url} refused")
        return self.status_answer

    def set_paused(self, base_url: str, *, paused: bool, token: str | None = None) -> None:
        self.calls.append(("set_paused", base_url, {"paused": paused, "token": token}))

    def activity(self, base_url: str, *, limit: int, token: str | None = None) -> dict[str, Any]:
        self.calls.append(("activity", base_url, {"limit": limit, "token": token}))
        return {"equity": [], "trades": [], "risk_decisions": [], "breaker": {"level": 0}}

    def shutdown(self, base_url: str, *, cancel_orders: bool, flatten: bool, token: str | None = None) -> None:
        self.calls.append(("shutdown", base_url, {"cancel_orders": cancel_orders, "flatten": flatten, "token": token}))

    def set_trading_mode(
        self, base_url: str, *, mode: TradingMode, flatten: bool, reason: str, token: str | None = None
    ) -> TradingMode:
        self.calls.append(("set_trading_mode", base_url, {"mode": mode, "flatten": flatten, "token": token}))
        return mode


NS = "trading"
STRATEGIES = "/apis/slsbot.io/v1alpha1/namespaces/trading/strategies"
ACCOUNTS = "/apis/slsbot.io/v1alpha1/namespaces/trading/tradingaccounts"
DEPLOYMENT = "/apis/apps/v1/namespaces/trading/deployments/slsbot-runtime-btc"
CONFIGMAP = "/api/v1/namespaces/trading/configmaps/slsbot-runtime-btc"
SERVICE = "/api/v1/namespaces/trading/services/slsbot-runtime-btc"
CLAIM = "/api/v1/namespaces/trading/persistentvolumeclaims/slsbot-runtime-btc"
CONTROL_SECRET = "/api/v1/namespaces/trading/secrets/slsbot-runtime-btc-control"
NETWORK_POLICY = "/apis/networking.k8s.io/v1/namespaces/trading/networkpolicies/slsbot-runtime-btc"
POD = "/api/v1/namespaces/trading/pods/slsbot-runtime-btc-x1"
KEY = ControlKey("k" * 40, source="test")
TOKEN = KEY.token_for(NS, "btc")

STRATEGY = {
    "apiVersion": "slsbot.io/v1alpha1",
    "kind": "Strategy",
    "metadata": {"name": "btc", "namespace": NS, "uid": "uid-1", "generation": 1},
    "spec": {
        "accountRef": {"name": "acct"},
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
        "runtime": {"port": 8200},
    },
}


def runtime_pod(api: MemoryApi, state: dict[str, Any]) -> dict[str, Any]:
    """The Deployment's pod, not ready, its runtime container in ``state``, as the kubelet reports it."""
    template = api.objects[DEPLOYMENT]["spec"]["template"]
    return {
        "metadata": {"name": "slsbot-runtime-btc-x1", "namespace": NS, **copy.deepcopy(template["metadata"])},
        "status": {
            "phase": "Running" if "running" in state else "Pending",
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "containerStatuses": [{"name": "runtime", "ready": False, "restartCount": 0, "state": state}],
        },
    }


def account_body(credentials: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"exchange": "binance", "mode": "paper"}
    if credentials is not None:
        spec = {"exchange": "binance", "mode": "live", "credentials": credentials}
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": "acct", "namespace": NS},
        "spec": spec,
    }


def setup(credentials: dict[str, Any] | None = None, **options: Any):
    api = MemoryApi()
    api.objects[f"{STRATEGIES}/btc"] = copy.deepcopy(STRATEGY)
    api.objects[f"{ACCOUNTS}/acct"] = account_body(credentials)
    control = RecordingControl()
    backend = KubernetesRuntimeBackend(
        api, control, BackendOptions(runtime_url="http://{service}.{namespace}:{port}", **options), control_key=KEY
    )
    strategy = Strategy.model_validate(STRATEGY)
    account = TradingAccount.model_validate(account_body(credentials))
    resolved = ResolvedStrategy(strategy=strategy, account=account, policy=RiskPolicySpec(), policy_name=None)
    desired = desired_runtime(resolved, backend.render_config(resolved))
    return api, control, backend, resolved, desired


def test_render_config_puts_state_port_host_and_data_dir_where_the_pod_has_them():
    _, _, backend, resolved, _ = setup(default_data_dir="/app/data/x")
    config = backend.render_config(resolved)
    assert config.state.path == "/var/lib/slsbot/state.db"
    assert config.server.port == 8200 and config.server.host == "0.0.0.0"
    assert config.market_data.data_dir == "/app/data/x"
    assert config.account.credentials_dir is None


def test_a_secret_account_gets_its_credentials_folder_and_a_vault_account_gets_none():
    secret = {"secretRef": {"name": "keys"}}
    _, _, backend, resolved, _ = setup(secret)
    assert backend.render_config(resolved).account.credentials_dir == credentials_dir(
        SecretCredentials.model_validate({"name": "keys"})
    )
    _, _, backend, resolved, _ = setup({"vault": {"path": "slsbot/live"}})
    assert backend.render_config(resolved).account.credentials_dir is None


def test_a_vault_account_gets_the_operators_vault_address_and_logs_in_with_its_service_account():
    _, _, backend, resolved, _ = setup({"vault": {"path": "slsbot/live"}}, vault_address="https://vault.vault.svc:8200")
    vault = backend.render_config(resolved).account.vault
    assert vault is not None and vault.address == "https://vault.vault.svc:8200" and vault.path == "slsbot/live"
    assert (vault.auth.method, vault.auth.role, vault.auth.token_path) == (
        "kubernetes",
        "acct",  # the Vault role named after the TradingAccount
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
    )
    spec_address = {"vault": {"path": "slsbot/live", "address": "https://vault.other:8200", "auth": {"role": "r"}}}
    _, _, backend, resolved, _ = setup(spec_address, vault_address="https://vault.vault.svc:8200")
    vault = backend.render_config(resolved).account.vault
    assert vault is not None and (vault.address, vault.auth.role) == ("https://vault.other:8200", "r")  # the spec's


def test_create_writes_claim_configmap_service_and_deployment_owned_by_the_strategy():
    api, _, backend, _, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    for path in (DEPLOYMENT, CONFIGMAP, SERVICE, CLAIM, CONTROL_SECRET, NETWORK_POLICY):
        assert api.objects[path]["metadata"]["ownerReferences"][0]["uid"] == "uid-1", path
    config = yaml.safe_load(api.objects[CONFIGMAP]["data"]["runtime.yaml"])
    assert config["name"] == "btc" and config["server"]["port"] == 8200


def test_the_control_token_is_in_its_secret_only_and_the_secret_is_written_before_the_deployment():
    api, _, backend, _, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    assert base64.b64decode(api.objects[CONTROL_SECRET]["data"]["token"]).decode() == f"{TOKEN}\n"
    assert TOKEN == KEY.token_for(NS, "btc") != KEY.token_for(NS, "eth") != KEY.token_for("other", "btc")
    env = api.objects[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "SLSBOT_RUNTIME_TOKEN_FILE", "value": "/var/run/slsbot/control/token"} in env
    for path in (DEPLOYMENT, CONFIGMAP, SERVICE, CLAIM):
        assert TOKEN not in json.dumps(api.objects[path]), path
    posts = [p for m, p in api.calls if m == "POST"]
    deployments = posts.index("/apis/apps/v1/namespaces/trading/deployments")
    assert posts.index("/api/v1/namespaces/trading/secrets") < deployments
    assert posts.index("/apis/networking.k8s.io/v1/namespaces/trading/networkpolicies") < deployments
    secret_calls = [m for m, p in api.calls if p.startswith("/api/v1/namespaces/trading/secrets")]
    assert set(secret_calls) == {"GET metadata", "POST"}  # its metadata, never its data


def test_the_control_secret_is_never_patched_but_replaced_when_it_holds_another_token():
    api, control, backend, _, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    created = api.objects[CONTROL_SECRET]
    api.calls.clear()
    backend.execute(NS, "btc", Action(ActionKind.UPDATE, "ConfigChanged", "", desired=desired))
    assert api.objects[CONTROL_SECRET] == created  # current: left alone
    assert [m for m, p in api.calls if p.startswith("/api/v1/namespaces/trading/secrets")] == ["GET metadata"]

    rotated_key = ControlKey("r" * 40, source="test")
    rotated = KubernetesRuntimeBackend(api, control, BackendOptions(), control_key=rotated_key)
    api.calls.clear()
    rotated.execute(NS, "btc", Action(ActionKind.UPDATE, "ConfigChanged", "", desired=desired))
    secret_calls = [(m, p) for m, p in api.calls if p.startswith("/api/v1/namespaces/trading/secrets")]
    assert secret_calls == [
        ("GET metadata", CONTROL_SECRET),
        ("DELETE", CONTROL_SECRET),
        ("POST", "/api/v1/namespaces/trading/secrets"),
    ]
    token = base64.b64decode(api.objects[CONTROL_SECRET]["data"]["token"]).decode()
    assert token == f"{rotated_key.token_for(NS, 'btc')}\n" != f"{TOKEN}\n"
    assert "immutable" not in api.objects[CONTROL_SECRET]  # the kubelet refreshes only a mutable Secret's volume


def test_an_account_that_changed_its_credentials_after_the_check_is_a_conflict_and_nothing_is_written():
    api, _, backend, _, desired = setup({"secretRef": {"name": "checked-keys"}})
    api.objects[f"{ACCOUNTS}/acct"]["spec"]["credentials"] = {"secretRef": {"name": "other-bots-keys"}}
    with pytest.raises(ConflictError, match="changed its credentials"):
        backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    assert not [c for c in api.calls if c[0] in ("POST", "PATCH", "DELETE")]


def test_a_runtime_without_the_current_network_policy_is_observed_out_of_date_and_applied_again():
    api, control, backend, _, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    api.objects[DEPLOYMENT]["status"] = {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1}
    control.status_answer = {"paused": False}
    assert backend.observe(NS, "btc").config_hash == desired.config_hash
    # Made by an operator before NetworkPolicies: no fingerprint on the Deployment, no policy.
    del api.objects[DEPLOYMENT]["metadata"]["annotations"]["slsbot.io/network-policy"]
    del api.objects[NETWORK_POLICY]
    assert backend.observe(NS, "btc").config_hash is None  # so plan_runtime rolls it out again...
    template = copy.deepcopy(api.objects[DEPLOYMENT]["spec"]["template"])
    backend.execute(NS, "btc", Action(ActionKind.UPDATE, "ConfigChanged", "", desired=desired))
    assert NETWORK_POLICY in api.objects  # ...which creates the policy
    assert api.objects[DEPLOYMENT]["spec"]["template"] == template  # and does not restart the pod
    assert backend.observe(NS, "btc").config_hash == desired.config_hash
    other = PeerSelector({"kubernetes.io/metadata.name": "observability"}, {"app": "prometheus"})
    elsewhere = KubernetesRuntimeBackend(
        api,
        control,
        BackendOptions(pod=RuntimePodOptions(network=RuntimeNetworkOptions(prometheus=other))),
        control_key=KEY,
    )
    assert elsewhere.observe(NS, "btc").config_hash is None  # other network options: applied again too


def test_a_control_key_rotation_rewrites_the_secret_from_observe_without_rolling_the_pods():
    api, control, backend, _, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    api.objects[DEPLOYMENT]["status"] = {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1}
    control.status_answer = {"paused": False}
    assert backend.observe(NS, "btc").config_hash == desired.config_hash
    deployment = copy.deepcopy(api.objects[DEPLOYMENT])

    new_key = ControlKey("r" * 40, source="t")
    grace_ends = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    clock = [grace_ends - timedelta(minutes=30)]
    rotated = KubernetesRuntimeBackend(
        api,
        control,
        BackendOptions(runtime_url="http://{service}.{namespace}:{port}"),
        control_key=ControlKeys(new_key, KEY, grace_ends),
        clock=lambda: clock[0],
    )
    assert rotated.observe(NS, "btc").config_hash == desired.config_hash  # no rollout: the pods keep running
    assert api.objects[DEPLOYMENT] == deployment  # the pod template did not change
    new_token = new_key.token_for(NS, "btc")
    held = base64.b64decode(api.objects[CONTROL_SECRET]["data"]["token"]).decode()
    assert held == f"{new_token}\n{TOKEN} 2026-05-01T09:00:00+00:00\n"  # both, until the grace ends
    assert control.calls[-1][2] == {"token": (new_token, TOKEN)}  # the new token first, the old after a 401
    owner = api.objects[CONTROL_SECRET]["metadata"]["ownerReferences"]
    assert owner == deployment["metadata"]["ownerReferences"]  # still owned by the Strategy
    api.calls.clear()
    rotated.observe(NS, "btc")  # current: not even its metadata is read again
    assert not [c for c in api.calls if "/secrets" in c[1]]

    clock[0] = grace_ends
    rotated.observe(NS, "btc")  # the grace ended: the previous token leaves the Secret
    assert base64.b64decode(api.objects[CONTROL_SECRET]["data"]["token"]).decode() == f"{new_token}\n"
    assert control.calls[-1][2] == {"token": (new_token,)} and api.objects[DEPLOYMENT] == deployment


def test_a_deleted_runtime_does_not_get_its_control_secret_back():
    api, _, backend, _, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    deployment = copy.deepcopy(api.objects[DEPLOYMENT])
    backend.execute(NS, "btc", Action(ActionKind.DELETE, "Deleting", "", desired=desired))
    assert CONTROL_SECRET not in api.objects
    # A Foreground deletion: the Deployment stays a while, marked for deletion, and is still observed.
    api.objects[DEPLOYMENT] = copy.deepcopy(deployment)
    api.objects[DEPLOYMENT]["metadata"]["deletionTimestamp"] = "2026-05-01T08:00:00Z"
    backend.observe(NS, "btc")
    assert CONTROL_SECRET not in api.objects
    api.objects[DEPLOYMENT] = deployment  # one that is not going away: its missing Secret is mended
    backend.observe(NS, "btc")
    assert base64.b64decode(api.objects[CONTROL_SECRET]["data"]["token"]).decode() == f"{TOKEN}\n"


def test_a_deployment_reading_its_token_from_an_environment_variable_is_rolled_once():
    api, control, backend, _, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    api.objects[DEPLOYMENT]["status"] = {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1}
    control.status_answer = {"paused": False}
    assert backend.observe(NS, "btc").config_hash == desired.config_hash
    # An earlier operator's Deployment: the token's fingerprint on the template, the token in a variable.
    api.objects[DEPLOYMENT]["spec"]["template"]["metadata"]["annotations"]["slsbot.io/control-token"] = "0" * 16
    assert backend.observe(NS, "btc").config_hash is None  # plan_runtime rolls it onto the mounted token file
    backend.execute(NS, "btc", Action(ActionKind.UPDATE, "ConfigChanged", "", desired=desired))
    assert "slsbot.io/control-token" not in api.objects[DEPLOYMENT]["spec"]["template"]["metadata"]["annotations"]
    assert backend.observe(NS, "btc").config_hash == desired.config_hash


def test_an_empty_dir_state_creates_no_claim():
    api, _, backend, _, desired = setup(pod=RuntimePodOptions(state_volume=StateVolumeKind.EMPTY_DIR))
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    assert CLAIM not in api.objects and DEPLOYMENT in api.objects


def test_update_patches_the_existing_objects_in_place():
    api, _, backend, resolved, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    api.objects[DEPLOYMENT]["status"] = {"readyReplicas": 1}
    changed = resolved.strategy.model_copy(deep=True)
    changed.spec.symbols = ["ETH/USDT"]
    resolved2 = ResolvedStrategy(strategy=changed, account=resolved.account, policy=resolved.policy, policy_name=None)
    desired2 = desired_runtime(resolved2, backend.render_config(resolved2))
    api.calls.clear()
    backend.execute(NS, "btc", Action(ActionKind.UPDATE, "ConfigChanged", "", desired=desired2))
    template = api.objects[DEPLOYMENT]["spec"]["template"]
    assert template["metadata"]["annotations"]["slsbot.io/config-hash"] == desired2.config_hash != desired.config_hash
    assert api.objects[DEPLOYMENT]["status"] == {"readyReplicas": 1}  # a patch, not a replacement
    assert ("POST", "/apis/apps/v1/namespaces/trading/deployments") not in api.calls
    assert "ETH/USDT" in api.objects[CONFIGMAP]["data"]["runtime.yaml"]


def test_a_strategy_that_vanished_mid_reconcile_is_a_conflict_to_requeue():
    api, _, backend, _, desired = setup()
    del api.objects[f"{STRATEGIES}/btc"]
    with pytest.raises(ConflictError):
        backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    assert DEPLOYMENT not in api.objects


def test_set_paused_calls_the_runtime_and_keeps_the_mounted_config_in_step():
    api, control, backend, resolved, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    paused = resolved.strategy.model_copy(deep=True)
    paused.spec.paused = True
    resolved2 = ResolvedStrategy(strategy=paused, account=resolved.account, policy=resolved.policy, policy_name=None)
    desired2 = desired_runtime(resolved2, backend.render_config(resolved2))
    backend.execute(NS, "btc", Action(ActionKind.SET_PAUSED, "Pausing", "", desired=desired2))
    assert control.calls == [
        ("set_paused", "http://slsbot-runtime-btc.trading:8200", {"paused": True, "token": (TOKEN,)})
    ]
    assert yaml.safe_load(api.objects[CONFIGMAP]["data"]["runtime.yaml"])["paused"] is True
    assert api.objects[CONFIGMAP]["metadata"]["annotations"]["slsbot.io/config-hash"] == desired.config_hash


def test_drain_posts_shutdown_to_the_service_port_and_delete_removes_everything():
    api, control, backend, _, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    backend.execute(NS, "btc", Action(ActionKind.DRAIN, "Draining", "", cancel_orders=True, flatten=True))
    assert control.calls == [
        (
            "shutdown",
            "http://slsbot-runtime-btc.trading:8200",
            {"cancel_orders": True, "flatten": True, "token": (TOKEN,)},
        )
    ]
    backend.execute(NS, "btc", Action(ActionKind.DELETE, "Deleting", ""))
    assert not {DEPLOYMENT, CONFIGMAP, SERVICE, CLAIM, CONTROL_SECRET, NETWORK_POLICY} & set(api.objects)
    backend.execute(NS, "btc", Action(ActionKind.DELETE, "Deleting", ""))  # nothing left: still fine


def test_the_healing_ladder_pushes_the_trading_mode_through_the_service_with_the_runtime_token():
    _, control, backend, _, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    halt = Action(
        ActionKind.SET_TRADING_MODE, "StaleData_Halt", "halted", trading_mode=TradingMode.HALTED, flatten=True
    )
    backend.execute(NS, "btc", halt)
    assert control.calls == [
        (
            "set_trading_mode",
            "http://slsbot-runtime-btc.trading:8200",
            {"mode": TradingMode.HALTED, "flatten": True, "token": (TOKEN,)},
        )
    ]


def test_a_bots_activity_is_asked_of_its_runtime_through_the_service_with_the_runtime_token():
    _, control, backend, _, desired = setup()
    with pytest.raises(RuntimeUnreachable):  # no Service yet: nowhere to ask
        backend.activity(NS, "btc", limit=5)
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    assert backend.activity(NS, "btc", limit=5)["breaker"] == {"level": 0}
    assert control.calls == [("activity", "http://slsbot-runtime-btc.trading:8200", {"limit": 5, "token": (TOKEN,)})]


def test_a_trading_mode_push_without_a_service_is_unreachable():
    _, _, backend, _, _ = setup()
    with pytest.raises(RuntimeUnreachable):
        backend.execute(NS, "btc", Action(ActionKind.SET_TRADING_MODE, "x", "", trading_mode=TradingMode.SAFE))


def test_drain_without_a_service_is_unreachable():
    _, _, backend, _, _ = setup()
    with pytest.raises(RuntimeUnreachable):
        backend.execute(NS, "btc", Action(ActionKind.DRAIN, "Draining", "", cancel_orders=True))


def test_observe_asks_a_ready_runtime_and_a_starting_one_whose_container_runs(caplog):
    """A ready runtime, and a not-ready one whose runtime container runs (the Service publishes not-ready pods): the
    healing ladder and the incident rules read why it is not ready (a halt after a failed restart reconciliation)."""
    api, control, backend, _, desired = setup()
    assert backend.observe(NS, "btc").state is RuntimeState.ABSENT
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    assert backend.observe(NS, "btc").state is RuntimeState.STARTING
    assert control.calls == []  # no pod yet: nothing to ask
    api.objects[POD] = runtime_pod(api, {"waiting": {"reason": "ContainerCreating"}})
    assert backend.observe(NS, "btc").state is RuntimeState.STARTING
    assert control.calls == []  # its container does not run yet
    api.objects[POD] = runtime_pod(api, {"running": {"startedAt": "2026-01-01T00:00:00Z"}})
    with caplog.at_level("WARNING", logger="slsbot.adapters.kubernetes.backend"):
        observed = backend.observe(NS, "btc")  # it does not listen yet: no status yet, no warning
    assert observed.state is RuntimeState.STARTING and observed.runtime_status == {} and observed.detail == ""
    assert control.calls[-1] == ("status", "http://slsbot-runtime-btc.trading:8200", {"token": (TOKEN,)})
    assert not caplog.records
    halted = {"paused": False, "trading_mode": "halted", "health": {"reconcile": {"ok": False, "problems": 1}}}
    control.status_answer = halted
    observed = backend.observe(NS, "btc")
    assert observed.state is RuntimeState.STARTING and observed.runtime_status == halted
    api.objects[DEPLOYMENT]["status"] = {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1}
    control.status_answer = {"paused": False, "equity": 5.0}
    observed = backend.observe(NS, "btc")
    assert observed.state is RuntimeState.READY and observed.config_hash == desired.config_hash
    assert observed.runtime_status == {"paused": False, "equity": 5.0}
    control.status_answer = None
    with caplog.at_level("WARNING", logger="slsbot.adapters.kubernetes.backend"):
        assert backend.observe(NS, "btc").state is RuntimeState.UNRESPONSIVE
    assert "is ready but does not answer" in caplog.text


def test_a_service_that_does_not_publish_not_ready_pods_is_observed_out_of_date_and_patched():
    api, control, backend, _, desired = setup()
    backend.execute(NS, "btc", Action(ActionKind.CREATE, "Creating", "", desired=desired))
    assert api.objects[SERVICE]["spec"]["publishNotReadyAddresses"] is True
    api.objects[DEPLOYMENT]["status"] = {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1}
    control.status_answer = {"paused": False}
    assert backend.observe(NS, "btc").config_hash == desired.config_hash
    # Made by an earlier operator: a Service that routes to ready pods only, and no fingerprint on the Deployment.
    del api.objects[SERVICE]["spec"]["publishNotReadyAddresses"]
    del api.objects[DEPLOYMENT]["metadata"]["annotations"]["slsbot.io/service"]
    assert backend.observe(NS, "btc").config_hash is None  # so plan_runtime rolls it out again...
    template = copy.deepcopy(api.objects[DEPLOYMENT]["spec"]["template"])
    api.calls.clear()
    backend.execute(NS, "btc", Action(ActionKind.UPDATE, "ConfigChanged", "", desired=desired))
    assert ("PATCH", SERVICE) in api.calls  # ...which patches the Service in place...
    assert api.objects[SERVICE]["spec"]["publishNotReadyAddresses"] is True
    assert api.objects[DEPLOYMENT]["spec"]["template"] == template  # ...without restarting the pod
    assert backend.observe(NS, "btc").config_hash == desired.config_hash


# --- events ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ev:
    type: str
    reason: str
    message: str


def test_an_event_names_its_object_and_is_cut_to_size():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = build_event(STRATEGY, type="Warning", reason="DeletedWithoutDrain", message="m" * 5000, now=now)
    assert event["involvedObject"] == {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Strategy",
        "name": "btc",
        "namespace": NS,
        "uid": "uid-1",
    }
    assert event["metadata"]["namespace"] == NS and event["metadata"]["name"].startswith("btc.")
    assert event["type"] == "Warning" and event["reason"] == "DeletedWithoutDrain"
    assert len(event["message"]) == 1024
    assert event["firstTimestamp"] == "2026-01-02T03:04:05Z"


def test_the_recorder_holds_back_a_repeat_of_the_last_event_within_its_window():
    api = MemoryApi()
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    recorder = KubernetesEventRecorder(api, repeat_after=timedelta(minutes=5), clock=lambda: clock[0])
    waiting = Ev("Warning", "WaitingForDependency", "spec.accountRef.name: missing")
    assert recorder.record(STRATEGY, [waiting]) == 1
    clock[0] += timedelta(seconds=1)
    assert recorder.record(STRATEGY, [waiting]) == 0
    clock[0] += timedelta(seconds=1)
    assert recorder.record(STRATEGY, [Ev("Normal", "Creating", "creating"), waiting]) == 2
    clock[0] += timedelta(minutes=1)
    assert recorder.record(STRATEGY, [waiting]) == 0  # the last one posted was this very event
    clock[0] += timedelta(minutes=5)
    assert recorder.record(STRATEGY, [waiting]) == 1  # the window has passed: say it again
    assert len([p for m, p in api.calls if m == "POST"]) == 4


# --- the object store ----------------------------------------------------------------------------------------------


def test_a_strategy_the_models_refuse_names_each_field():
    body = copy.deepcopy(STRATEGY)
    body["spec"]["ensemble"]["members"].append({"name": "sma", "strategy": "ema_cross"})
    body["spec"]["symbols"] = ["btc-usdt"]
    with pytest.raises(InvalidObjectError) as caught:
        parse_object(Strategy, body)
    fields = [p.field for p in caught.value.problems]
    assert "spec.symbols[0]" in fields and "spec.ensemble" in fields
    assert all(p.reason == "InvalidSpec" for p in caught.value.problems)
    assert "Value error" not in str(caught.value)


def test_status_is_written_only_when_it_changed():
    api = MemoryApi()
    api.objects[f"{STRATEGIES}/btc"] = copy.deepcopy(STRATEGY)
    store = KubernetesObjectStore(api)
    status = StrategyStatus(phase="Running", restarts=2)
    assert store.write_status(store.get(Strategy, NS, "btc"), status) is True
    assert api.objects[f"{STRATEGIES}/btc"]["status"]["restarts"] == 2
    assert store.write_status(store.get(Strategy, NS, "btc"), status) is False
    assert store.write_status(store.get(Strategy, NS, "btc"), StrategyStatus(phase="Running")) is True
    assert api.objects[f"{STRATEGIES}/btc"]["status"]["restarts"] == 0


def test_listing_skips_objects_the_models_refuse():
    api = MemoryApi()
    api.objects[f"{STRATEGIES}/btc"] = copy.deepcopy(STRATEGY)
    bad = copy.deepcopy(STRATEGY)
    bad["metadata"]["name"] = "bad"
    bad["spec"]["symbols"] = []
    api.objects[f"{STRATEGIES}/bad"] = bad
    assert list(KubernetesObjectStore(api).strategies(NS)) == ["btc"]
