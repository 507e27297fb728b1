"""``KubernetesRuntimeBackend``: a Strategy's runtime as a Deployment, a ConfigMap, a Service, a state claim, a
NetworkPolicy and the Secret with its control token.

It implements ``slsbot.domain.ports.RuntimeBackend`` (and ``RolloutRuntimes``: ``/performance`` and ``/allocation``
for the A/B controller): ``render_config`` fills in the pod's paths and port,
``observe`` reads the Deployment, its pods and the runtime's ``/status``, ``execute`` carries out one planned
action. The runtime's control endpoints (``/status``, ``/pause``, ``/resume``, ``/shutdown``, ``/trading-mode``) are
reached through its Service; ``runtime_url`` says how (in-cluster DNS by default; tests and out-of-cluster runs point
it elsewhere).
Each call carries the runtime's token, derived from the operator's ``ControlKeys``; the operator writes the
runtime's token file into its control Secret and never reads a Secret's data back: it reads the Secret's metadata,
whose label carries the content's fingerprint, and replaces (deletes and creates) a Secret with another one; it
never patches a Secret, whose answer would hold the data. A control key rotation changes only that Secret, from
``observe`` (no rollout, the pod template does not depend on the token): the new token, and the previous one until
the grace ends; each call tries the new token first and, while the kubelet has not refreshed the pod's volume yet,
the previous one after a 401 (``RuntimeHttpClient``). A Deployment made by an earlier operator (its template reads
the token from an environment variable), or made without the current NetworkPolicy or Service, is observed with no
config hash, so the plan rolls it out again (the objects are merge-patched; the pod template is unchanged).

``/status`` is asked of a ready runtime, and of a starting one whose pod's runtime container runs: the Service
publishes not-ready pods, and a runtime that is not ready (halted by a failed restart reconciliation, unable to reach
its exchange) says why in its ``health`` block, as the local backend reads it. A starting runtime that does not answer
has no status yet; a ready one that does not answer is unresponsive.

Deletion keeps every object until the plan says the drain completed (``plan_deletion``), then deletes them all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from slsbot.adapters.control_tokens import ControlKey, ControlKeys, token_fingerprint
from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.adapters.kubernetes.manifests import (
    ANNOTATION_CONTROL_TOKEN,
    LABEL_CONTROL_TOKEN,
    LABEL_STRATEGY,
    PORT_NAME,
    STATE_PATH,
    Manifest,
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
    render_runtime_config,
    runtime_object_name,
    selector_labels,
    service_fingerprint,
)
from slsbot.adapters.kubernetes.observe import WorkloadView, observed_runtime, read_workload
from slsbot.adapters.runtime_client import Tokens
from slsbot.api import GROUP, VERSION, RuntimeConfig, TradingAccount
from slsbot.api.account import VaultAuth
from slsbot.api.health import TradingMode
from slsbot.domain.errors import ConflictError, NotFoundError, RuntimeUnreachable
from slsbot.domain.plan import Action, ActionKind, ObservedRuntime, RuntimeState
from slsbot.domain.resolve import ResolvedStrategy
from slsbot.domain.runtime_performance import AllocationSetting, RuntimePerformance
from slsbot.domain.runtime_spec import DesiredRuntime, build_runtime_config, runtime_vault

log = logging.getLogger(__name__)

DEFAULT_RUNTIME_URL = "http://{service}.{namespace}.svc:{port}"


class RuntimeControl(Protocol):
    """The runtime's HTTP control contract, as the control plane calls it."""

    def status(self, base_url: str, *, token: Tokens = None) -> dict[str, Any]: ...

    def set_paused(self, base_url: str, *, paused: bool, token: Tokens = None) -> None: ...

    def shutdown(self, base_url: str, *, cancel_orders: bool, flatten: bool, token: Tokens = None) -> None: ...

    def set_trading_mode(
        self, base_url: str, *, mode: TradingMode, flatten: bool, reason: str, token: Tokens = None
    ) -> TradingMode: ...

    def performance(self, base_url: str, *, since: int, token: Tokens = None) -> RuntimePerformance: ...

    def set_allocation(self, base_url: str, *, percent: float | None, token: Tokens = None) -> AllocationSetting: ...

    def push_headroom(self, base_url: str, *, body: dict[str, Any], token: Tokens = None) -> dict[str, Any]: ...

    def orders(self, base_url: str, *, limit: int, token: Tokens = None) -> list[dict[str, Any]]: ...

    def activity(self, base_url: str, *, limit: int, token: Tokens = None) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class BackendOptions:
    runtime_url: str = DEFAULT_RUNTIME_URL  # fields: {service} {namespace} {port} {strategy}
    default_data_dir: str | None = "/app/data/market/binance-spot-1h-2024"  # the candles inside the image
    pod: RuntimePodOptions = field(default_factory=RuntimePodOptions)
    #: Vault's URL for accounts whose ``credentials.vault`` names none (``SLSBOT_OPERATOR_VAULT_ADDRESS``).
    vault_address: str | None = None


class KubernetesRuntimeBackend:
    def __init__(
        self,
        api: KubernetesApi,
        control: RuntimeControl,
        options: BackendOptions | None = None,
        *,
        control_key: ControlKey | ControlKeys,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._control = control
        self._keys = control_key if isinstance(control_key, ControlKeys) else ControlKeys(control_key)
        self._control_secrets: dict[tuple[str, str], str] = {}  # the fingerprint each control Secret was seen with
        self._options = options or BackendOptions()
        self._clock = clock
        self._last_notes: dict[tuple[str, str], str] = {}  # what was last logged per runtime, to log changes only

    def render_config(self, resolved: ResolvedStrategy) -> RuntimeConfig:
        credentials = resolved.account.spec.credentials
        secret = credentials.secret_ref if credentials is not None else None
        return build_runtime_config(
            resolved,
            state_path=STATE_PATH,
            port=resolved.strategy.spec.runtime.port,
            host="0.0.0.0",
            credentials_dir=credentials_dir(secret) if secret is not None else None,
            default_data_dir=self._options.default_data_dir,
            vault=runtime_vault(
                credentials,
                address=self._options.vault_address,
                default_auth=VaultAuth(role=resolved.account.name),  # the pod's service account, Kubernetes auth
            ),
        )

    def runtime_url(self, namespace: str, strategy: str, port: int) -> str:
        return self._options.runtime_url.format(
            service=runtime_object_name(strategy), namespace=namespace, port=port, strategy=strategy
        )

    def observe(self, namespace: str, name: str) -> ObservedRuntime:
        deployment = self._api.find(self._path("apps", "deployments", namespace, name))
        pods: list[dict[str, Any]] = []
        if deployment is not None:
            pods = self._api.list(
                resource_path("", "v1", "pods", namespace=namespace), label_selector=selector_labels(name)
            )
        view = read_workload(deployment, pods, strategy=name)
        token = self._tokens(namespace, name)
        if deployment is not None and (
            view.control_token_id is not None
            or view.network_policy_id != self._options.pod.network.fingerprint()
            or view.service_id != service_fingerprint()
        ):
            # It reads its token from an environment variable (an earlier operator), or its NetworkPolicy or its
            # Service is missing or another (e.g. one that does not publish not-ready pods): roll it out again.
            view = dataclasses.replace(view, config_hash=None)
        elif deployment is not None and not (deployment.get("metadata") or {}).get("deletionTimestamp"):
            self._keep_control_secret(namespace, name, deployment)  # never for one on its way out
        note = f"cannot run: {view.problem}" if view.problem else ""
        runtime_status, unanswered = None, ""
        if _may_answer(view):
            try:
                runtime_status = self._control.status(self.runtime_url(namespace, name, view.port), token=token)
            except RuntimeUnreachable as exc:
                if view.state is RuntimeState.READY:
                    unanswered = str(exc)
                    note = f"is ready but does not answer: {exc}"
                # Starting: it may not listen yet; no status yet, as a local process that does not answer.
        self._note(namespace, name, note)
        return observed_runtime(view, runtime_status, now=self._clock(), unanswered=unanswered)

    def _note(self, namespace: str, name: str, note: str) -> None:
        """Log what is wrong with a runtime when it changes, not on every pass."""
        if self._last_notes.get((namespace, name), "") != note:
            self._last_notes[(namespace, name)] = note
            if note:
                log.warning("runtime %s/%s %s", namespace, name, note)
            else:
                log.info("runtime %s/%s is running normally again", namespace, name)

    def execute(self, namespace: str, name: str, action: Action) -> None:
        kind = action.kind
        if kind in (ActionKind.CREATE, ActionKind.UPDATE, ActionKind.RESTART):
            self._roll_out(namespace, name, _desired(action), action)
        elif kind is ActionKind.SET_PAUSED:
            self._set_paused(namespace, name, _desired(action))
        elif kind is ActionKind.SET_TRADING_MODE:
            if action.trading_mode is None:
                raise ValueError("a SetTradingMode action carries no trading mode")
            url, token = self._reach(namespace, name)
            self._control.set_trading_mode(
                url,
                mode=action.trading_mode,
                flatten=action.flatten,
                reason=f"{action.reason}: {action.message}",
                token=token,
            )
        elif kind is ActionKind.DRAIN:
            url, token = self._reach(namespace, name)
            self._control.shutdown(url, cancel_orders=action.cancel_orders, flatten=action.flatten, token=token)
        elif kind is ActionKind.DELETE:
            self._delete(namespace, name)

    # --- RolloutRuntimes: the A/B controller's calls, through the runtime's Service ---------------------

    def performance(self, namespace: str, name: str, *, since: int) -> RuntimePerformance:
        url, token = self._reach(namespace, name)
        return self._control.performance(url, since=since, token=token)

    def set_allocation(self, namespace: str, name: str, percent: float | None) -> None:
        url, token = self._reach(namespace, name)
        self._control.set_allocation(url, percent=percent, token=token)

    # --- account risk: the runtime's figures and its headroom, through its Service ----------------------

    def runtime_status(self, namespace: str, name: str) -> dict[str, Any]:
        url, token = self._reach(namespace, name)
        return self._control.status(url, token=token)

    def push_headroom(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        url, token = self._reach(namespace, name)
        return self._control.push_headroom(url, body=body, token=token)

    def orders(self, namespace: str, name: str, *, limit: int) -> list[dict[str, Any]]:
        """The runtime's orders, newest first (the admin API's ``GET /strategies/{name}/orders``)."""
        url, token = self._reach(namespace, name)
        return self._control.orders(url, limit=limit, token=token)

    def activity(self, namespace: str, name: str, *, limit: int) -> dict[str, Any]:
        """The runtime's equity curve, trades and risk decisions (admin API: ``GET /strategies/{name}/activity``)."""
        url, token = self._reach(namespace, name)
        return self._control.activity(url, limit=limit, token=token)

    def _reach(self, namespace: str, name: str) -> tuple[str, tuple[str, ...]]:
        """The runtime's control URL, through its Service, and its tokens (the previous key's during a grace)."""
        return self.runtime_url(namespace, name, self._service_port(namespace, name)), self._tokens(namespace, name)

    def _tokens(self, namespace: str, name: str) -> tuple[str, ...]:
        return self._keys.tokens_for(namespace, name, now=self._clock())

    def _token_file(self, namespace: str, name: str) -> tuple[str, str]:
        """What the runtime's control Secret should hold now, and its fingerprint."""
        text = self._keys.token_file_text(namespace, name, now=self._clock())
        return text, token_fingerprint(text)

    def _keep_control_secret(self, namespace: str, name: str, deployment: dict[str, Any]) -> None:
        """Rewrite the control Secret of a running runtime when the tokens it should hold changed (the key rotated,
        or the previous key's grace ended); its metadata is read once per operator start and change, not per pass."""
        text, fingerprint = self._token_file(namespace, name)
        if self._control_secrets.get((namespace, name)) == fingerprint:
            return
        self._replace_control_secret(namespace, rebuild_runtime_control_secret(deployment, name, text, fingerprint))

    def _roll_out(self, namespace: str, name: str, desired: DesiredRuntime, action: Action) -> None:
        restarted_at = self._clock().isoformat() if action.kind is ActionKind.RESTART else None
        text, fingerprint = self._token_file(namespace, name)
        workload = self._workload(namespace, name, desired, restarted_at)
        patch_first = action.kind is not ActionKind.CREATE
        if workload.options.state_volume is StateVolumeKind.PERSISTENT_VOLUME_CLAIM:
            self._ensure(self._path("", "persistentvolumeclaims", namespace), build_state_claim(workload))
        # The Secret before the Deployment that reads it, so the pod never waits for it; the NetworkPolicy before
        # the Deployment, so the pod is never reachable without it.
        self._replace_control_secret(namespace, build_runtime_control_secret(workload, text, fingerprint))
        policies = self._path("networking.k8s.io", "networkpolicies", namespace)
        self._apply(policies, build_runtime_network_policy(workload), patch_first)
        self._apply(self._path("", "configmaps", namespace), build_runtime_configmap(workload), patch_first)
        self._apply(self._path("", "services", namespace), build_runtime_service(workload), patch_first)
        # An earlier operator's template carried the token's fingerprint: a merge patch removes it only when told.
        dropped = {"spec": {"template": {"metadata": {"annotations": {ANNOTATION_CONTROL_TOKEN: None}}}}}
        deployments = self._path("apps", "deployments", namespace)
        self._apply(deployments, build_runtime_deployment(workload), patch_first, also_patch=dropped)

    def _replace_control_secret(self, namespace: str, manifest: Manifest) -> None:
        """Create the control Secret, or replace one that holds another token (its fingerprint label differs).
        Only its metadata is read, and it is never patched: the answer to a patch would carry the token."""
        collection = self._path("", "secrets", namespace)
        path = f"{collection}/{manifest['metadata']['name']}"
        current = self._api.find_metadata(path)
        wanted = manifest["metadata"]["labels"][LABEL_CONTROL_TOKEN]
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["labels"][LABEL_STRATEGY])
        if current is not None and (current.get("labels") or {}).get(LABEL_CONTROL_TOKEN) == wanted:
            self._control_secrets[key] = wanted
            return
        if current is not None:
            self._api.delete(path)
        self._api.create(collection, manifest)  # a ConflictError (re-created meanwhile) is a requeue
        self._control_secrets[key] = wanted

    def _set_paused(self, namespace: str, name: str, desired: DesiredRuntime) -> None:
        self._control.set_paused(
            self.runtime_url(namespace, name, desired.runtime.port),
            paused=desired.paused,
            token=self._tokens(namespace, name),
        )
        # Keep the mounted config in step, so a restarted container comes back paused (or not) as asked.
        # ``paused`` is outside the config hash, so this does not roll the Deployment.
        config_map = self._path("", "configmaps", namespace, name)
        self._api.patch(config_map, {"data": {"runtime.yaml": render_runtime_config(desired.config)}})

    def _delete(self, namespace: str, name: str) -> None:
        self._api.delete(self._path("apps", "deployments", namespace, name), propagation="Foreground")
        self._api.delete(self._path("", "services", namespace, name))
        self._api.delete(self._path("", "configmaps", namespace, name))
        self._api.delete(self._path("", "persistentvolumeclaims", namespace, name))
        self._api.delete(self._path("networking.k8s.io", "networkpolicies", namespace, name))
        secrets = self._path("", "secrets", namespace)
        self._api.delete(f"{secrets}/{control_secret_name(name)}")
        self._control_secrets.pop((namespace, name), None)

    def _service_port(self, namespace: str, name: str) -> int:
        service = self._api.find(self._path("", "services", namespace, name))
        for port in ((service or {}).get("spec") or {}).get("ports") or []:
            if port.get("name") == PORT_NAME:
                return int(port["port"])
        raise RuntimeUnreachable(f"runtime {namespace}/{name} has no Service with a port named {PORT_NAME!r}")

    def _workload(
        self, namespace: str, name: str, desired: DesiredRuntime, restarted_at: str | None
    ) -> RuntimeWorkload:
        strategy = self._read(GROUP, VERSION, "strategies", namespace, name)
        uid = (strategy.get("metadata") or {}).get("uid")
        if not uid:
            raise ConflictError(f"Strategy {namespace}/{name} has no uid yet; trying again")
        account_name = desired.config.account.name
        try:
            account = TradingAccount.model_validate(
                self._read(GROUP, VERSION, "tradingaccounts", namespace, account_name)
            )
        except ValidationError as exc:
            raise ConflictError(f"TradingAccount {namespace}/{account_name} changed and is not valid now") from exc
        credentials = account.spec.credentials
        secret = credentials.secret_ref if credentials is not None else None
        if (credentials_dir(secret) if secret is not None else None) != desired.config.account.credentials_dir:
            # The account names other credentials than the ones the reconciler checked: check them first.
            raise ConflictError(f"TradingAccount {namespace}/{account_name} changed its credentials; trying again")
        return RuntimeWorkload(
            namespace=namespace,
            strategy=name,
            strategy_uid=uid,
            account=account_name,
            config=desired.config,
            config_hash=desired.config_hash,
            runtime=desired.runtime,
            secret=secret,
            vault=credentials is not None and credentials.vault is not None,
            options=self._options.pod,
            restarted_at=restarted_at,
        )

    def _read(self, group: str, version: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self._api.get(resource_path(group, version, plural, namespace=namespace, name=name))
        except NotFoundError as exc:
            # It disappeared between the reconciler's read and this write: look again from the start.
            raise ConflictError(f"{plural} {namespace}/{name} disappeared during the reconcile") from exc

    def _apply(
        self, collection: str, manifest: Manifest, patch_first: bool, *, also_patch: Manifest | None = None
    ) -> None:
        """Create the object, or bring an existing one to the manifest with a merge patch (plus ``also_patch``:
        the nulls that remove what an earlier version set)."""
        path = f"{collection}/{manifest['metadata']['name']}"
        body = _merged(also_patch or {}, _patch_body(manifest))
        if patch_first:
            try:
                self._api.patch(path, body)
                return
            except NotFoundError:
                pass
        try:
            self._api.create(collection, manifest)
        except ConflictError:
            self._api.patch(path, body)

    def _ensure(self, collection: str, manifest: Manifest) -> None:
        """Create the object unless it exists (a claim's spec cannot change once bound)."""
        with contextlib.suppress(ConflictError):
            self._api.create(collection, manifest)

    @staticmethod
    def _path(group: str, plural: str, namespace: str, strategy: str | None = None) -> str:
        version = "v1"
        name = runtime_object_name(strategy) if strategy is not None else None
        return resource_path(group, version, plural, namespace=namespace, name=name)


def _may_answer(view: WorkloadView) -> bool:
    """Whether to ask the runtime's ``/status``: a ready runtime, and a starting one whose runtime container runs
    (its Service publishes not-ready pods): why it is not ready (a halt after a failed restart reconciliation, an
    exchange it cannot reach) is in its ``health`` block, which the healing ladder and the incident rules read."""
    if view.port is None:
        return False
    return view.state is RuntimeState.READY or (view.state is RuntimeState.STARTING and view.runtime_running)


def _desired(action: Action) -> DesiredRuntime:
    if action.desired is None:
        raise ValueError(f"action {action.kind} carries no desired runtime")
    return action.desired


def _patch_body(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in manifest.items() if key not in ("apiVersion", "kind")}


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, mappings merged key by key."""
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result
