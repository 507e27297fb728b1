"""The JSON client's edges: paths, credentials from a kubeconfig, and API errors converted to slsbot errors."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from slsbot.adapters.kubernetes.client import (
    PARTIAL_METADATA,
    KubernetesApi,
    api_error,
    cluster_credentials,
    load_client_configuration,
    resource_path,
)
from slsbot.domain.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidSpecError,
    NotFoundError,
    PermissionDenied,
)


def test_paths_for_core_and_named_groups():
    assert resource_path("", "v1", "pods", namespace="t") == "/api/v1/namespaces/t/pods"
    assert (
        resource_path("apps", "v1", "deployments", namespace="t", name="d")
        == "/apis/apps/v1/namespaces/t/deployments/d"
    )
    assert (
        resource_path("slsbot.io", "v1alpha1", "strategies", namespace="t", name="s", subresource="status")
        == "/apis/slsbot.io/v1alpha1/namespaces/t/strategies/s/status"
    )
    assert resource_path("", "v1", "namespaces") == "/api/v1/namespaces"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, NotFoundError),
        (409, ConflictError),
        (401, PermissionDenied),
        (403, PermissionDenied),
        (400, InvalidSpecError),
        (422, InvalidSpecError),
        (429, BackendUnavailable),
        (500, BackendUnavailable),
        (503, BackendUnavailable),
        (None, BackendUnavailable),
    ],
)
def test_api_statuses_become_slsbot_errors(status, error):
    body = json.dumps({"kind": "Status", "message": 'deployments.apps "x" already exists'})
    converted = api_error("POST", "/apis/apps/v1/namespaces/t/deployments", status, body)
    assert type(converted) is error
    assert "POST /apis/apps/v1/namespaces/t/deployments" in str(converted)
    if status is not None:
        assert "already exists" in str(converted)


def test_a_forbidden_answer_points_at_the_operators_rbac():
    assert "RBAC" in str(api_error("GET", "/api/v1/pods", 403, "{}"))


def test_a_long_or_non_json_body_is_cut_short():
    converted = api_error("GET", "/x", 500, "<html>" + "x" * 5000)
    assert len(str(converted)) < 400


def _kubeconfig(tmp_path: Path, server: str, **user: str) -> Path:
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    return path


def test_credentials_come_from_the_named_kubeconfig_and_never_show_in_repr(tmp_path):
    path = _kubeconfig(tmp_path, "https://10.1.2.3:6443", token="very-secret-token")
    credentials = cluster_credentials(load_client_configuration(kubeconfig=str(path), context=None))
    assert credentials.server == "https://10.1.2.3:6443"
    assert credentials.scheme == "Bearer" and credentials.token == "very-secret-token"
    assert credentials.insecure is True
    assert "very-secret-token" not in repr(credentials)


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path):
    with pytest.raises(BackendUnavailable, match="kubeconfig"):
        load_client_configuration(kubeconfig=str(tmp_path / "nope"), context=None)


def test_an_unknown_context_is_a_clear_error(tmp_path):
    path = _kubeconfig(tmp_path, "https://10.1.2.3:6443", token="t")
    with pytest.raises(BackendUnavailable, match="cannot load Kubernetes credentials"):
        load_client_configuration(kubeconfig=str(path), context="no-such-context")


def test_an_api_server_that_refuses_connections_is_backend_unavailable(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on: bound, never accepting
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        path = _kubeconfig(tmp_path, f"http://127.0.0.1:{port}", token="t")
        configuration = load_client_configuration(kubeconfig=str(path), context=None)
        configuration.retries = 0
        api = KubernetesApi(configuration, timeout=2)
        with pytest.raises(BackendUnavailable, match="GET /api/v1/namespaces/t/pods"):
            api.list("/api/v1/namespaces/t/pods")
        api.close()


class _RecordingApiServer:
    """An HTTP server on 127.0.0.1 that answers one Secret in full, whatever the client asks for (as a server that
    ignored the Accept header would), and records the headers of each request."""

    SECRET = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "keys",
            "namespace": "t",
            "uid": "u-1",
            "resourceVersion": "7",
            "labels": {"slsbot.io/credentials": "true"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"data":{"secret":"c2VjcmV0"}}'},
        },
        "data": {"secret": "c2VjcmV0"},
    }

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                found = self.path == "/api/v1/namespaces/t/secrets/keys"
                body = json.dumps(server.SECRET if found else {"kind": "Status", "code": 404}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_metadata_reads_ask_for_partial_object_metadata_and_keep_no_data_nor_annotations(tmp_path):
    server = _RecordingApiServer()
    try:
        path = _kubeconfig(tmp_path, server.url, token="t")
        api = KubernetesApi(load_client_configuration(kubeconfig=str(path), context=None), timeout=5)
        metadata = api.find_metadata("/api/v1/namespaces/t/secrets/keys")
        assert api.find_metadata("/api/v1/namespaces/t/secrets/missing") is None
        api.close()
    finally:
        server.close()
    assert [headers["Accept"] for _, headers in server.requests] == [PARTIAL_METADATA, PARTIAL_METADATA]
    assert PARTIAL_METADATA == "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    assert metadata == {
        "name": "keys",
        "namespace": "t",
        "uid": "u-1",
        "resourceVersion": "7",
        "labels": {"slsbot.io/credentials": "true"},
    }
    assert "c2VjcmV0" not in json.dumps(metadata)
