"""The Kubernetes API as plain JSON, and the one place its errors become ``slsbot.domain.errors``.

``KubernetesApi`` speaks JSON dicts over the official client's connection handling (kubeconfig, in-cluster
service account, token refresh, TLS), without its typed models: the builders produce dicts, the observers read
dicts, and the same code runs against a real API server and against kmock in the tests. Patches are JSON merge
patches, which every resource (custom ones included) accepts. ``find_metadata`` asks for an object's metadata only
(``PartialObjectMetadata``), which is how the operator sees a Secret's labels without its data.

Errors, converted at this edge: 404 -> ``NotFoundError``, 409 -> ``ConflictError`` (requeued at once),
401/403 -> ``PermissionDenied`` (the operator's RBAC), 400/422 -> ``InvalidSpecError``, and everything else
(5xx, 429, timeouts, refused connections) -> ``BackendUnavailable`` (requeued with backoff).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import kubernetes.client
import kubernetes.config
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from slsbot.domain.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidSpecError,
    NotFoundError,
    PermissionDenied,
    SlsbotError,
)

MERGE_PATCH = "application/merge-patch+json"
# Metadata only: a real API server answers a PartialObjectMetadata (no data, no spec) to this Accept header.
PARTIAL_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
KEPT_METADATA = ("name", "namespace", "uid", "resourceVersion", "labels")
_MESSAGE_LIMIT = 300


@dataclass(frozen=True, slots=True)
class ClusterCredentials:
    """How to reach the API server; what kopf's login handler needs. Never logged."""

    server: str
    ca_path: str | None = None
    insecure: bool = False
    scheme: str | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None
    certificate_path: str | None = None
    private_key_path: str | None = None

    def __repr__(self) -> str:
        return f"ClusterCredentials(server={self.server!r})"


def load_client_configuration(
    *, kubeconfig: str | None, context: str | None, in_cluster: bool | None = None
) -> kubernetes.client.Configuration:
    """A client configuration of its own (the client library's global default is left alone).

    Order: an explicit kubeconfig (``--kubeconfig`` or ``KUBECONFIG``, read by the caller), then the pod's service
    account when running in a cluster, then ``~/.kube/config``.
    """
    configuration = kubernetes.client.Configuration()
    if in_cluster is None:
        in_cluster = kubeconfig is None and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    try:
        if in_cluster:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        else:
            path = kubeconfig or str(Path("~/.kube/config").expanduser())
            kubernetes.config.load_kube_config(
                config_file=path, context=context, client_configuration=configuration, persist_config=False
            )
    except (kubernetes.config.ConfigException, OSError) as exc:
        where = "the pod's service account" if in_cluster else f"kubeconfig {kubeconfig or '~/.kube/config'}"
        raise BackendUnavailable(
            f"cannot load Kubernetes credentials from {where}: {exc}; set KUBECONFIG or run in a cluster"
        ) from exc
    return configuration


def cluster_credentials(configuration: kubernetes.client.Configuration) -> ClusterCredentials:
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    parts = header.split(" ", 1) if header else []
    scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0] if parts else None)
    return ClusterCredentials(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme,
        token=token,
        username=configuration.username or None,
        password=configuration.password or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def resource_path(
    group: str,
    version: str,
    plural: str,
    *,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """``/api/v1/...`` for the core group, ``/apis/<group>/<version>/...`` for the others."""
    parts = ["/api", version] if group == "" else ["/apis", group, version]
    if namespace is not None:
        parts += ["namespaces", quote(namespace, safe="")]
    parts.append(plural)
    if name is not None:
        parts.append(quote(name, safe=""))
    if subresource is not None:
        parts.append(subresource)
    return "/".join(parts)


def api_error(method: str, path: str, status: int | None, body: str | None) -> SlsbotError:
    """The slsbot error for an API answer; the message names the request and the server's reason."""
    detail = _server_message(body)
    message = f"{method} {path}: {status or 'no answer'}" + (f": {detail}" if detail else "")
    if status == 404:
        return NotFoundError(message)
    if status == 409:
        return ConflictError(message)
    if status in (401, 403):
        return PermissionDenied(f"{message}; check the operator's ServiceAccount and RBAC in deploy/operator")
    if status in (400, 422):
        return InvalidSpecError(message)
    return BackendUnavailable(message)


def _server_message(body: str | None) -> str:
    if not body:
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:_MESSAGE_LIMIT]
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"][:_MESSAGE_LIMIT]
    return ""


class KubernetesApi:
    """JSON in, JSON out. Thread-safe: the connection pool is shared by the handler threads."""

    def __init__(self, configuration: kubernetes.client.Configuration, *, timeout: float = 10.0) -> None:
        self._client = kubernetes.client.ApiClient(configuration)
        self._timeout = timeout

    def close(self) -> None:
        self._client.close()

    def get(self, path: str) -> dict[str, Any]:
        return self._request("GET", path)

    def find(self, path: str) -> dict[str, Any] | None:
        """``get``, with None for an object that does not exist."""
        try:
            return self.get(path)
        except NotFoundError:
            return None

    def find_metadata(self, path: str) -> dict[str, Any] | None:
        """The object's name, namespace, uid, resourceVersion and labels (``KEPT_METADATA``), or None if it does
        not exist. It asks for metadata only, and whatever the server answers, keeps nothing else: not a Secret's
        ``data``, nor its annotations (``kubectl apply`` copies a whole Secret, data included, into one)."""
        try:
            body = self._request("GET", path, accept=PARTIAL_METADATA)
        except NotFoundError:
            return None
        meta = body.get("metadata") or {}
        return {key: meta[key] for key in KEPT_METADATA if key in meta}

    def list(self, path: str, *, label_selector: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in label_selector.items())} if label_selector else {}
        return list(self._request("GET", path, query=query).get("items") or [])

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, body=body)

    def patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch: lists are replaced whole, a None value removes the key."""
        return self._request("PATCH", path, body=body, content_type=MERGE_PATCH)

    def delete(self, path: str, *, propagation: str | None = None) -> bool:
        """True if something was deleted, False if it did not exist."""
        query = {"propagationPolicy": propagation} if propagation else {}
        try:
            self._request("DELETE", path, query=query)
        except NotFoundError:
            return False
        return True

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> dict[str, Any]:
        configuration = self._client.configuration
        headers: dict[str, str] = {"Content-Type": content_type}
        headers.update(self._client.default_headers)
        headers["Accept"] = accept
        self._client.update_params_for_auth(headers, [], ["BearerToken"], path, method, body)
        url = configuration.host + path + (f"?{urlencode(query)}" if query else "")
        try:
            response = self._client.call_api(
                method,
                url,
                header_params=headers,
                body=dict(body) if body is not None else None,
                _request_timeout=self._timeout,
            )
            data = response.read()
        except ApiException as exc:
            raise api_error(method, path, exc.status or None, exc.body) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        text = data.decode("utf-8", "replace") if data else ""
        if not 200 <= response.status < 300:
            raise api_error(method, path, response.status, text)
        if not text:
            return {}
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise BackendUnavailable(f"{method} {path}: the API server did not answer JSON") from exc
        return parsed if isinstance(parsed, dict) else {}
