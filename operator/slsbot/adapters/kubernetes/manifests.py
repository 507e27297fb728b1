"""Pure builders of the Kubernetes objects that run one Strategy's runtime. No I/O, no client: dicts in, dicts out.

Every object is named ``slsbot-runtime-<strategy>``, labelled with the strategy's name, and owned by the Strategy
(``ownerReferences`` with ``controller: true``), so the cluster's garbage collector removes whatever the finalizer
missed.

The state file lives on a PersistentVolumeClaim by default. An ``emptyDir`` survives container restarts but not
the pod: a rollout (a new config) or a rescheduled pod would start from an empty state and lose the order ledger
that makes execution exactly-once across restarts. A ReadWriteOnce claim follows the runtime from pod to pod;
the Deployment's ``Recreate`` strategy stops the old pod before the new one mounts it, which is also what keeps
two runtimes from ever trading the same account at once. ``emptyDir`` stays available for clusters without a
storage class (``StateVolumeKind.EMPTY_DIR``).

Credentials: a ``credentials.secretRef`` Secret is mounted read-only, one file per credential, named the way the
runtime reads them (``apiKey``, ``secret``, ``password``) whatever the keys in the Secret are called. The folder
name is a fingerprint of the reference, so pointing the account at another Secret changes the RuntimeConfig
and its hash, which rolls the runtime. ``credentials.vault``: the runtime reads the keys from Vault itself (its
config's ``account.vault``: address, KV path, how to log in; no key ever passes the control plane). With the
Kubernetes auth method the pod runs as ``auth.serviceAccountName`` (else the namespace's default account) and gets
that account's token as a projected volume at ``auth.tokenPath``'s folder (a short-lived token Kubernetes refreshes;
``automountServiceAccountToken`` stays off, so no CA bundle or namespace file comes with it). Vault checks the token
with a TokenReview. No credential ever passes through these builders.

Control token: the runtime's control endpoints need a bearer token. The operator derives it (``control_tokens``)
and writes it into a Secret of its own, ``slsbot-runtime-<strategy>-control`` (``build_runtime_control_secret``,
the one builder that holds a secret value), as the runtime's token file: the current token, and during a control
key rotation's grace the previous one with its end (``ControlKeys.token_file_text``). The Secret is mounted as a
volume (``/var/run/slsbot/control/token``, named by ``SLSBOT_RUNTIME_TOKEN_FILE``), so the token is in neither the
ConfigMap nor the Deployment, and a new token reaches the running pod when the kubelet refreshes the volume (about
a minute): the runtime reads the file again when it changes. The pod template does not depend on the token, so a
rotation never rolls a pod. The Secret carries a fingerprint of its content as a label: the operator never patches
it (a patch answers with the Secret's data), it replaces it (delete, create) when the fingerprint differs.
A Deployment whose template still carries ``slsbot.io/control-token`` (an earlier operator, which passed the token
in an environment variable) is rolled once onto the mounted file.

NetworkPolicy: the runtime's port serves ``/metrics`` (equity, cash, positions) and the control endpoints, so
``build_runtime_network_policy`` admits to it only the operator's pods and Prometheus (``RuntimeNetworkOptions``),
and nothing else; egress stays open (the runtime talks to its exchange). It takes effect where the cluster's network
plugin enforces NetworkPolicy. The Deployment carries its fingerprint (``slsbot.io/network-policy``), so a runtime
made before it, or under other network options, is observed as out of date and its objects are applied again.

Service: its clients are the operator, the admin API and Prometheus, never trading traffic, and they need the
runtime's own word most when it is not ready (halted after a failed restart reconciliation, still warming up), so
it publishes not-ready addresses (``publishNotReadyAddresses``): ``/status``, ``/trading-mode`` and ``/metrics``
reach a running pod whether its readiness probe passes or not. The readiness probe still gates the Deployment's
rollout. The Deployment carries the fingerprint of the Service's fixed fields (``slsbot.io/service``), so a
runtime whose Service was made by an earlier operator is observed as out of date and its objects are applied again
(a merge patch: the pod does not restart).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from slsbot.api import API_VERSION, RuntimeConfig
from slsbot.api.account import SecretCredentials, VaultAuth, VaultAuthMethod
from slsbot.api.strategy import RuntimeSettings

Manifest = dict[str, Any]

RUNTIME_PREFIX = "slsbot-runtime-"
MANAGED_BY = "slsbot-operator"
LABEL_STRATEGY = "slsbot.io/strategy"
LABEL_ACCOUNT = "slsbot.io/account"
ANNOTATION_CONFIG_HASH = "slsbot.io/config-hash"
ANNOTATION_RESTARTED_AT = "slsbot.io/restarted-at"
ANNOTATION_CREDENTIALS = "slsbot.io/credentials"
#: Lifetime of the projected service-account token a Vault runtime logs in with (Kubernetes refreshes it at 80 %).
VAULT_TOKEN_SECONDS = 3600
# Names, not secrets (S105): the annotation holds a fingerprint, the Secret's key and the variable hold the token.
ANNOTATION_CONTROL_TOKEN = "slsbot.io/control-token"  # noqa: S105
LABEL_CONTROL_TOKEN = ANNOTATION_CONTROL_TOKEN  # on the control Secret: the token's fingerprint
ANNOTATION_NETWORK_POLICY = "slsbot.io/network-policy"
ANNOTATION_SERVICE = "slsbot.io/service"
CONTROL_SECRET_SUFFIX = "-control"  # noqa: S105
CONTROL_SECRET_KEY = "token"  # noqa: S105
CONTROL_TOKEN_FILE_ENV = "SLSBOT_RUNTIME_TOKEN_FILE"  # noqa: S105
CONTROL_DIR = "/var/run/slsbot/control"
CONTAINER = "runtime"
PORT_NAME = "http"
CONFIG_DIR = "/etc/slsbot"
CONFIG_FILE = "runtime.yaml"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_FILE}"
STATE_DIR = "/var/lib/slsbot"
STATE_PATH = f"{STATE_DIR}/state.db"
CREDENTIALS_ROOT = "/var/run/slsbot/credentials"
RUNTIME_USER = 10001
_MAX_NAME = 63
# The runtime Service's fields that are the same for every runtime (the selector and the port are the runtime's).
SERVICE_SPEC: Mapping[str, Any] = {"type": "ClusterIP", "publishNotReadyAddresses": True}


class StateVolumeKind(StrEnum):
    PERSISTENT_VOLUME_CLAIM = "persistentVolumeClaim"
    EMPTY_DIR = "emptyDir"


@dataclass(frozen=True, slots=True)
class PeerSelector:
    """Pods that may reach a runtime: those matching ``pod_labels`` in namespaces matching ``namespace_labels``
    (as in a NetworkPolicy: an empty mapping matches every namespace, or every pod)."""

    namespace_labels: Mapping[str, str]
    pod_labels: Mapping[str, str]

    def to_wire(self) -> Manifest:
        return {
            "namespaceSelector": {"matchLabels": dict(self.namespace_labels)},
            "podSelector": {"matchLabels": dict(self.pod_labels)},
        }


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # every namespace carries it (Kubernetes 1.21 and later)
OPERATOR_PODS = PeerSelector({NAMESPACE_NAME_LABEL: "slsbot-system"}, {"app.kubernetes.io/name": "slsbot-operator"})
# kube-prometheus-stack's Prometheus pods, installed in the namespace "monitoring" as its documentation does.
PROMETHEUS_PODS = PeerSelector({NAMESPACE_NAME_LABEL: "monitoring"}, {"app.kubernetes.io/name": "prometheus"})


@dataclass(frozen=True, slots=True)
class RuntimeNetworkOptions:
    """Who may reach a runtime's port (health, metrics, control): the operator, and Prometheus."""

    operator: PeerSelector = OPERATOR_PODS
    prometheus: PeerSelector = PROMETHEUS_PODS

    def fingerprint(self) -> str:
        peers = [self.operator.to_wire(), self.prometheus.to_wire()]
        return hashlib.sha256(json.dumps(peers, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class RuntimePodOptions:
    """Cluster-wide choices for every runtime pod; each field has a default that works on kind."""

    state_volume: StateVolumeKind = StateVolumeKind.PERSISTENT_VOLUME_CLAIM
    state_storage: str = "1Gi"
    storage_class: str | None = None  # None: the cluster's default StorageClass
    termination_grace_seconds: int = 30
    progress_deadline_seconds: int = 600
    network: RuntimeNetworkOptions = field(default_factory=RuntimeNetworkOptions)


@dataclass(frozen=True, slots=True)
class RuntimeWorkload:
    """Everything the builders need for one Strategy's runtime."""

    namespace: str
    strategy: str
    strategy_uid: str
    account: str
    config: RuntimeConfig
    config_hash: str
    runtime: RuntimeSettings
    secret: SecretCredentials | None = None
    vault: bool = False  # the account reads credentials from Vault: the runtime logs in itself (config.account.vault)
    options: RuntimePodOptions = field(default_factory=RuntimePodOptions)
    restarted_at: str | None = None  # set to roll the pods without a config change

    @property
    def name(self) -> str:
        return runtime_object_name(self.strategy)


def runtime_object_name(strategy: str) -> str:
    """``slsbot-runtime-<strategy>``, shortened with a hash when it would exceed a DNS label's 63 characters."""
    name = f"{RUNTIME_PREFIX}{strategy}"
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(strategy.encode()).hexdigest()[:8]
    head = strategy[: _MAX_NAME - len(RUNTIME_PREFIX) - len(digest) - 1].rstrip("-")
    return f"{RUNTIME_PREFIX}{head}-{digest}"


def control_secret_name(strategy: str) -> str:
    """``slsbot-runtime-<strategy>-control``: the Secret that holds the runtime's control token."""
    return f"{runtime_object_name(strategy)}{CONTROL_SECRET_SUFFIX}"


def selector_labels(strategy: str) -> dict[str, str]:
    """The labels a Deployment selects its pods by; never change them (a selector is immutable)."""
    return {"app.kubernetes.io/name": "slsbot-runtime", LABEL_STRATEGY: strategy}


def runtime_labels(workload: RuntimeWorkload) -> dict[str, str]:
    return {
        **selector_labels(workload.strategy),
        "app.kubernetes.io/instance": workload.strategy,
        "app.kubernetes.io/component": "runtime",
        "app.kubernetes.io/part-of": "slsbot",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_ACCOUNT: workload.account,
    }


def owner_reference(strategy: str, uid: str) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": "Strategy",
        "name": strategy,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def credentials_dir(secret: SecretCredentials) -> str:
    """Where the Secret is mounted; the fingerprint changes whenever the reference does."""
    fingerprint = hashlib.sha256(json.dumps(secret.to_wire(), sort_keys=True).encode()).hexdigest()[:10]
    return f"{CREDENTIALS_ROOT}/{fingerprint}"


def render_runtime_config(config: RuntimeConfig) -> str:
    """The RuntimeConfig as the YAML file the runtime reads (camelCase, unset optionals left out)."""
    return yaml.safe_dump(config.to_wire(), sort_keys=False)


def _metadata(workload: RuntimeWorkload, annotations: dict[str, str] | None = None) -> Manifest:
    meta: Manifest = {
        "name": workload.name,
        "namespace": workload.namespace,
        "labels": runtime_labels(workload),
        "ownerReferences": [owner_reference(workload.strategy, workload.strategy_uid)],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def build_runtime_configmap(workload: RuntimeWorkload) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(workload, {ANNOTATION_CONFIG_HASH: workload.config_hash}),
        "data": {CONFIG_FILE: render_runtime_config(workload.config)},
    }


def service_fingerprint() -> str:
    """The fingerprint of ``SERVICE_SPEC``, carried by the Deployment: a Service made with other fixed fields (an
    earlier operator's, without ``publishNotReadyAddresses``) is applied again."""
    return hashlib.sha256(json.dumps(SERVICE_SPEC, sort_keys=True).encode()).hexdigest()[:16]


def build_runtime_service(workload: RuntimeWorkload) -> Manifest:
    """The runtime's port for the operator, the admin API and Prometheus; not-ready pods included (module docs)."""
    port = workload.runtime.port
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(workload, annotations),
        "spec": {
            **SERVICE_SPEC,
            "selector": selector_labels(workload.strategy),
            "ports": [{"name": PORT_NAME, "port": port, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def build_runtime_control_secret(workload: RuntimeWorkload, token_file: str, fingerprint: str) -> Manifest:
    """The Secret with the runtime's token file (``ControlKeys.token_file_text``), owned by the Strategy, labelled
    with the ``fingerprint`` of its content (so the operator can tell it is current from its metadata). Not
    immutable: the kubelet refreshes a mounted Secret only while it may change. Never log or return this manifest."""
    return _control_secret(_metadata(workload), workload.strategy, token_file, fingerprint)


def rebuild_runtime_control_secret(deployment: Manifest, strategy: str, token_file: str, fingerprint: str) -> Manifest:
    """``build_runtime_control_secret`` for a runtime whose Deployment exists, with the Deployment's labels and
    owner (a rotation rewrites the Secret without a rollout). Never log or return this manifest."""
    meta = deployment.get("metadata") or {}
    base = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "labels": dict(meta.get("labels") or {}),
        "ownerReferences": list(meta.get("ownerReferences") or []),
    }
    return _control_secret(base, strategy, token_file, fingerprint)


def _control_secret(meta: Manifest, strategy: str, token_file: str, fingerprint: str) -> Manifest:
    meta = {
        **meta,
        "name": control_secret_name(strategy),
        "labels": {**meta["labels"], LABEL_CONTROL_TOKEN: fingerprint},
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {CONTROL_SECRET_KEY: base64.b64encode(token_file.encode()).decode()},
    }


def build_runtime_network_policy(workload: RuntimeWorkload) -> Manifest:
    """Ingress to the runtime's pods: its port, from the operator's pods and Prometheus only. Egress is not
    restricted (the runtime reaches its exchange, DNS and, for live candles, the market data API)."""
    network = workload.options.network
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(workload),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(workload.strategy)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [network.operator.to_wire(), network.prometheus.to_wire()],
                    "ports": [{"protocol": "TCP", "port": workload.runtime.port}],
                }
            ],
        },
    }


def build_state_claim(workload: RuntimeWorkload) -> Manifest:
    """The PersistentVolumeClaim for the state file (only with ``StateVolumeKind.PERSISTENT_VOLUME_CLAIM``)."""
    spec: Manifest = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": workload.options.state_storage}},
    }
    if workload.options.storage_class is not None:
        spec["storageClassName"] = workload.options.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(workload),
        "spec": spec,
    }


def build_runtime_deployment(workload: RuntimeWorkload) -> Manifest:
    template_annotations = {ANNOTATION_CONFIG_HASH: workload.config_hash}
    vault = workload.config.account.vault
    if workload.vault and vault is not None:
        template_annotations[ANNOTATION_CREDENTIALS] = f"vault: {vault.mount}/data/{vault.path}, read by the runtime"
    if workload.restarted_at is not None:
        template_annotations[ANNOTATION_RESTARTED_AT] = workload.restarted_at
    annotations = {
        ANNOTATION_CONFIG_HASH: workload.config_hash,
        ANNOTATION_NETWORK_POLICY: workload.options.network.fingerprint(),
        ANNOTATION_SERVICE: service_fingerprint(),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(workload, annotations),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": workload.options.progress_deadline_seconds,
            "selector": {"matchLabels": selector_labels(workload.strategy)},
            "template": {
                "metadata": {"labels": runtime_labels(workload), "annotations": template_annotations},
                "spec": _pod_spec(workload),
            },
        },
    }


def _pod_spec(workload: RuntimeWorkload) -> Manifest:
    volumes, mounts = _volumes(workload)
    account: Manifest = {}
    auth = _kubernetes_auth(workload)
    if auth is not None and auth.service_account_name is not None:
        account["serviceAccountName"] = auth.service_account_name
    return {
        **account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": workload.options.termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNTIME_USER,
            "runAsGroup": RUNTIME_USER,
            "fsGroup": RUNTIME_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(workload, mounts)],
        "volumes": volumes,
    }


def _container(workload: RuntimeWorkload, mounts: list[Manifest]) -> Manifest:
    runtime = workload.runtime
    return {
        "name": CONTAINER,
        "image": runtime.image,
        "imagePullPolicy": runtime.image_pull_policy,
        "command": ["slsbot"],
        "args": ["runtime", "--config", CONFIG_PATH],
        "ports": [{"name": PORT_NAME, "containerPort": runtime.port, "protocol": "TCP"}],
        "env": [
            {"name": "PYTHONUNBUFFERED", "value": "1"},
            {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
            {"name": CONTROL_TOKEN_FILE_ENV, "value": f"{CONTROL_DIR}/{CONTROL_SECRET_KEY}"},
        ],
        "resources": runtime.resources.to_wire(),
        # Why it last exited reaches the Strategy's status: the runtime's last log lines when it wrote no message.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "startupProbe": _probe("/healthz", period=2, failures=30),
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=2),
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _probe(path: str, *, period: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _volumes(workload: RuntimeWorkload) -> tuple[list[Manifest], list[Manifest]]:
    volumes: list[Manifest] = [
        {"name": "config", "configMap": {"name": workload.name, "items": [{"key": CONFIG_FILE, "path": CONFIG_FILE}]}},
        _state_volume(workload),
        {"name": "tmp", "emptyDir": {}},
        {
            "name": "control",
            "secret": {
                "secretName": control_secret_name(workload.strategy),
                "items": [{"key": CONTROL_SECRET_KEY, "path": CONTROL_SECRET_KEY}],
                "defaultMode": 0o440,
            },
        },
    ]
    mounts: list[Manifest] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "state", "mountPath": STATE_DIR},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir, not a shared /tmp
        # The whole folder, never a subPath: the kubelet updates a Secret volume in place only without one.
        {"name": "control", "mountPath": CONTROL_DIR, "readOnly": True},
    ]
    if workload.secret is not None:
        volumes.append({"name": "credentials", "secret": _secret_volume(workload.secret)})
        mounts.append({"name": "credentials", "mountPath": credentials_dir(workload.secret), "readOnly": True})
    auth = _kubernetes_auth(workload)
    if auth is not None:
        folder, _, file = auth.token_path.rpartition("/")
        token = {"path": file, "expirationSeconds": VAULT_TOKEN_SECONDS}
        volumes.append({"name": "vault-login", "projected": {"sources": [{"serviceAccountToken": token}]}})
        mounts.append({"name": "vault-login", "mountPath": folder or "/", "readOnly": True})
    return volumes, mounts


def _kubernetes_auth(workload: RuntimeWorkload) -> VaultAuth | None:
    """The Vault login of a runtime that logs in with its service account's token; None for any other."""
    vault = workload.config.account.vault if workload.vault else None
    auth = vault.auth if vault is not None else None
    return auth if auth is not None and auth.method == VaultAuthMethod.KUBERNETES else None


def _state_volume(workload: RuntimeWorkload) -> Manifest:
    if workload.options.state_volume is StateVolumeKind.EMPTY_DIR:
        return {"name": "state", "emptyDir": {}}
    return {"name": "state", "persistentVolumeClaim": {"claimName": workload.name}}


def _secret_volume(secret: SecretCredentials) -> Manifest:
    items = [
        {"key": secret.keys.api_key, "path": "apiKey"},
        {"key": secret.keys.secret, "path": "secret"},
    ]
    if secret.keys.password is not None:
        items.append({"key": secret.keys.password, "path": "password"})
    return {"secretName": secret.name, "items": items, "defaultMode": 0o440}
