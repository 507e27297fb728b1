"""The pure builders of a Strategy's runtime objects: no cluster, dicts in and out."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from slsbot.adapters.kubernetes.manifests import (
    CONFIG_PATH,
    RuntimePodOptions,
    RuntimeWorkload,
    StateVolumeKind,
    build_runtime_configmap,
    build_runtime_control_secret,
    build_runtime_deployment,
    build_runtime_network_policy,
    build_runtime_service,
    build_state_claim,
    control_secret_name,
    credentials_dir,
    rebuild_runtime_control_secret,
    runtime_object_name,
    service_fingerprint,
)
from slsbot.api import RiskPolicySpec, RuntimeConfig, Strategy, TradingAccount
from slsbot.api.account import SecretCredentials, VaultCredentials
from slsbot.domain.resolve import ResolvedStrategy
from slsbot.domain.runtime_spec import build_runtime_config, config_hash

UID = "6a1f0c3e-0000-4000-8000-000000000001"


def _strategy(**runtime: object) -> Strategy:
    return Strategy.model_validate(
        {
            "metadata": {"name": "btc-trend", "namespace": "trading", "uid": UID},
            "spec": {
                "accountRef": {"name": "acct"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10}}]},
                "runtime": {"port": 8123, **runtime},
            },
        }
    )


def _account(credentials: dict | None = None) -> TradingAccount:
    spec: dict = {"exchange": "binance", "mode": "live" if credentials else "paper"}
    if credentials:
        spec["credentials"] = credentials
    return TradingAccount.model_validate({"metadata": {"name": "acct", "namespace": "trading"}, "spec": spec})


def _workload(
    *,
    secret: SecretCredentials | None = None,
    vault: VaultCredentials | None = None,
    options: RuntimePodOptions | None = None,
    **rt,
) -> RuntimeWorkload:
    strategy = _strategy(**rt)
    account = _account(None if vault is None else {"vault": vault.to_wire()})
    resolved = ResolvedStrategy(strategy=strategy, account=account, policy=RiskPolicySpec(), policy_name=None)
    config = build_runtime_config(
        resolved, state_path="/var/lib/slsbot/state.db", port=8123, host="0.0.0.0", vault=vault
    )
    return RuntimeWorkload(
        namespace="trading",
        strategy="btc-trend",
        strategy_uid=UID,
        account="acct",
        config=config,
        config_hash=config_hash(config),
        runtime=strategy.spec.runtime,
        secret=secret,
        vault=vault is not None,
        options=options or RuntimePodOptions(),
    )


SECRET = SecretCredentials.model_validate({"name": "binance-keys", "keys": {"apiKey": "key", "secret": "sec"}})


def test_the_deployment_runs_one_replica_recreated_never_two_at_once():
    deployment = build_runtime_deployment(_workload())
    spec = deployment["spec"]
    assert deployment["metadata"]["name"] == "slsbot-runtime-btc-trend"
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    selector = spec["selector"]["matchLabels"]
    labels = spec["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert labels["slsbot.io/strategy"] == "btc-trend" and labels["slsbot.io/account"] == "acct"


def test_every_object_is_owned_by_its_strategy_as_controller():
    workload = _workload()
    for manifest in (
        build_runtime_deployment(workload),
        build_runtime_configmap(workload),
        build_runtime_service(workload),
        build_state_claim(workload),
        build_runtime_network_policy(workload),
        build_runtime_control_secret(workload, "t" * 64, "fingerprint"),
    ):
        (owner,) = manifest["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "name": "btc-trend",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert manifest["metadata"]["namespace"] == "trading"


def test_the_pod_runs_the_runtime_command_with_probes_resources_and_the_config_hash():
    workload = _workload(resources={"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "2"}})
    template = build_runtime_deployment(workload)["spec"]["template"]
    assert template["metadata"]["annotations"]["slsbot.io/config-hash"] == workload.config_hash
    (container,) = template["spec"]["containers"]
    assert container["command"] == ["slsbot"]
    assert (
        container["args"] == ["runtime", "--config", CONFIG_PATH] == ["runtime", "--config", "/etc/slsbot/runtime.yaml"]
    )
    assert container["ports"] == [{"name": "http", "containerPort": 8123, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "2", "memory": "384Mi"},
    }
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert template["spec"]["automountServiceAccountToken"] is False


def test_a_different_config_gives_a_different_pod_template():
    one, two = _workload(), _workload(image="registry.example/slsbot:2")
    assert one.config_hash == two.config_hash  # the image is not part of the RuntimeConfig...
    assert build_runtime_deployment(one) != build_runtime_deployment(two)  # ...but it is part of the pod
    changed = RuntimeWorkload(**{**_fields(one), "config_hash": "0123456789abcdef"})
    annotations = build_runtime_deployment(changed)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["slsbot.io/config-hash"] == "0123456789abcdef"


def test_the_configmap_holds_the_runtime_config_yaml_and_round_trips():
    workload = _workload()
    config_map = build_runtime_configmap(workload)
    text = config_map["data"]["runtime.yaml"]
    assert RuntimeConfig.model_validate(yaml.safe_load(text)) == workload.config
    assert "ensemble" in text and "serverPort" not in text  # camelCase wire names, nested as in the model
    assert config_map["metadata"]["annotations"]["slsbot.io/config-hash"] == workload.config_hash


def test_the_service_exposes_the_runtime_port_named_http_with_scrape_annotations():
    service = build_runtime_service(_workload())
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 8123, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"] == {
        "app.kubernetes.io/name": "slsbot-runtime",
        "slsbot.io/strategy": "btc-trend",
    }
    assert service["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8123",
        "prometheus.io/path": "/metrics",
    }


def test_the_service_reaches_a_runtime_that_is_not_ready_and_the_deployment_carries_its_fingerprint():
    """The operator, the admin API and Prometheus need a halted or warming-up runtime's own /status: the Service
    publishes not-ready pods (the readiness probe still gates the rollout); the Deployment says which Service shape
    it was made with, so an earlier operator's Service is applied again."""
    workload = _workload()
    assert build_runtime_service(workload)["spec"]["publishNotReadyAddresses"] is True
    deployment = build_runtime_deployment(workload)
    assert deployment["metadata"]["annotations"]["slsbot.io/service"] == service_fingerprint()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    policy = build_runtime_network_policy(workload)  # unchanged: still only the operator and Prometheus
    assert len(policy["spec"]["ingress"]) == 1 and len(policy["spec"]["ingress"][0]["from"]) == 2


def test_the_state_lives_on_a_claim_by_default_and_on_an_empty_dir_when_asked():
    volumes = {v["name"]: v for v in build_runtime_deployment(_workload())["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"] == {"name": "state", "persistentVolumeClaim": {"claimName": "slsbot-runtime-btc-trend"}}
    claim = build_state_claim(_workload(options=RuntimePodOptions(state_storage="2Gi", storage_class="fast")))
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "2Gi"}},
        "storageClassName": "fast",
    }
    empty = _workload(options=RuntimePodOptions(state_volume=StateVolumeKind.EMPTY_DIR))
    volumes = {v["name"]: v for v in build_runtime_deployment(empty)["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"] == {"name": "state", "emptyDir": {}}


def test_a_secret_is_mounted_as_one_file_per_credential_and_no_value_appears_anywhere():
    workload = _workload(secret=SECRET)
    pod = build_runtime_deployment(workload)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["credentials"]["secret"] == {
        "secretName": "binance-keys",
        "items": [{"key": "key", "path": "apiKey"}, {"key": "sec", "path": "secret"}],
        "defaultMode": 0o440,
    }
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["credentials"] == {"name": "credentials", "mountPath": credentials_dir(SECRET), "readOnly": True}
    # Credentials reach the pod only as mounted files, never as environment variables or in the config; so does
    # the runtime's control token, from the operator's own control Secret.
    assert [e for e in pod["containers"][0]["env"] if "valueFrom" in e] == []
    assert "secretKeyRef" not in json.dumps(pod)
    assert "binance-keys" not in build_runtime_configmap(workload)["data"]["runtime.yaml"]


def test_a_password_key_is_mounted_only_when_the_account_names_one():
    with_password = SecretCredentials.model_validate({"name": "okx", "keys": {"password": "passphrase"}})
    volume = {
        v["name"]: v
        for v in build_runtime_deployment(_workload(secret=with_password))["spec"]["template"]["spec"]["volumes"]
    }
    assert {"key": "passphrase", "path": "password"} in volume["credentials"]["secret"]["items"]


def test_the_credentials_folder_changes_with_the_secret_reference():
    other = SecretCredentials.model_validate({"name": "other-keys"})
    assert credentials_dir(SECRET) != credentials_dir(other)
    assert credentials_dir(SECRET) == credentials_dir(SecretCredentials.model_validate(SECRET.to_wire()))
    assert credentials_dir(SECRET).startswith("/var/run/slsbot/credentials/")


def _vault(auth: dict) -> VaultCredentials:
    return VaultCredentials.model_validate(
        {"address": "https://vault.vault.svc:8200", "path": "slsbot/binance", "auth": auth}
    )


def test_a_vault_account_logs_in_with_its_own_service_accounts_projected_token_and_mounts_no_secret():
    workload = _workload(vault=_vault({"role": "binance", "serviceAccountName": "binance-runtime"}))
    template = build_runtime_deployment(workload)["spec"]["template"]
    spec = template["spec"]
    assert spec["serviceAccountName"] == "binance-runtime" and spec["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "credentials" not in volumes
    token = volumes["vault-login"]["projected"]["sources"][0]["serviceAccountToken"]
    assert token == {"path": "token", "expirationSeconds": 3600}
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["vault-login"] == {
        "name": "vault-login",
        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        "readOnly": True,
    }
    annotation = template["metadata"]["annotations"]["slsbot.io/credentials"]
    assert annotation == "vault: secret/data/slsbot/binance, read by the runtime"
    config = yaml.safe_load(build_runtime_configmap(workload)["data"]["runtime.yaml"])
    assert config["account"]["vault"]["auth"] == {
        "method": "kubernetes",
        "role": "binance",
        "tokenPath": "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "serviceAccountName": "binance-runtime",
    }


def test_a_vault_account_on_a_token_file_gets_no_service_account_token():
    workload = _workload(vault=_vault({"method": "token", "tokenFile": "/etc/vault/token"}))
    spec = build_runtime_deployment(workload)["spec"]["template"]["spec"]
    assert "serviceAccountName" not in spec
    assert "vault-login" not in {v["name"] for v in spec["volumes"]}


@pytest.mark.parametrize("name", ["a", "btc-trend", "x" * 48, "y" * 49, "z" * 63, "a" * 37 + "-" + "b" * 20])
def test_object_names_are_dns_labels_of_at_most_63_characters(name):
    result = runtime_object_name(name)
    assert len(result) <= 63 and result.startswith("slsbot-runtime-")
    assert result[-1] != "-"
    if len("slsbot-runtime-" + name) <= 63:
        assert result == "slsbot-runtime-" + name


def test_long_names_stay_distinct():
    assert runtime_object_name("a" * 60 + "x") != runtime_object_name("a" * 60 + "y")


def _fields(workload: RuntimeWorkload) -> dict:
    return {name: getattr(workload, name) for name in RuntimeWorkload.__dataclass_fields__}


def test_the_control_secret_holds_the_token_file_and_the_pod_mounts_it_without_depending_on_it():
    token_file = "f" * 64 + "\n" + "e" * 64 + " 2026-05-01T09:00:00+00:00\n"
    workload = _workload()
    secret = build_runtime_control_secret(workload, token_file, "abc123")
    assert secret["kind"] == "Secret" and secret["type"] == "Opaque"
    # Mutable (the kubelet refreshes a mounted Secret only then), and its fingerprint in a label: the operator sees
    # from its metadata whether it is current, and replaces it when it is not, instead of patching it (whose answer
    # would carry the token).
    assert "immutable" not in secret
    assert secret["metadata"]["labels"]["slsbot.io/control-token"] == "abc123"
    assert secret["metadata"]["name"] == control_secret_name("btc-trend") == "slsbot-runtime-btc-trend-control"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == UID
    assert secret["metadata"]["labels"]["slsbot.io/strategy"] == "btc-trend"
    assert base64.b64decode(secret["data"]["token"]).decode() == token_file
    deployment = build_runtime_deployment(workload)
    rebuilt = rebuild_runtime_control_secret(deployment, "btc-trend", token_file, "abc123")
    assert rebuilt == secret  # the same Secret, from the Deployment's metadata (a rotation without a rollout)
    template = deployment["spec"]["template"]
    assert "slsbot.io/control-token" not in template["metadata"]["annotations"]
    container = template["spec"]["containers"][0]
    assert {"name": "SLSBOT_RUNTIME_TOKEN_FILE", "value": "/var/run/slsbot/control/token"} in container["env"]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["control"]["secret"] == {
        "secretName": "slsbot-runtime-btc-trend-control",
        "items": [{"key": "token", "path": "token"}],
        "defaultMode": 0o440,
    }
    # The folder, not a subPath: the kubelet updates a Secret volume mounted with a subPath never.
    assert {"name": "control", "mountPath": "/var/run/slsbot/control", "readOnly": True} in container["volumeMounts"]
    for manifest in (deployment, build_runtime_configmap(workload), build_runtime_service(workload)):
        assert "f" * 64 not in json.dumps(manifest)
    assert len(control_secret_name("x" * 63)) <= 253
