"""A local Vault on a real HTTP server (127.0.0.1, a free port) that speaks the endpoints slsbot uses, in Vault's
documented request and answer shapes (developer.hashicorp.com/vault/api-docs):

* ``GET /v1/<mount>/data/<path>[?version=N]``: ``{"data": {"data": {...}, "metadata": {"created_time",
  "custom_metadata", "deletion_time", "destroyed", "version"}}}``; 404 ``{"errors": []}`` for a path or version
  that does not exist (or was deleted).
* ``GET /v1/<mount>/metadata/<path>``: ``{"data": {"current_version", "oldest_version", "max_versions",
  "created_time", "updated_time", "versions": {"1": {"created_time", "deletion_time", "destroyed"}}}}``.
* ``POST /v1/auth/kubernetes/login`` (``{"role", "jwt"}``) and ``POST /v1/auth/approle/login`` (``{"role_id",
  "secret_id"}``): ``{"auth": {"client_token", "accessor", "policies", "token_policies", "lease_duration",
  "renewable", "metadata"}}``; a wrong role, JWT or secret id answers 400 ``{"errors": ["..."]}``.
* ``POST /v1/auth/token/renew-self``: the same ``auth`` block, the lease extended; ``GET
  /v1/auth/token/lookup-self``: ``{"data": {"id", "ttl", "renewable", "policies", "expire_time"}}``.

Every request but a login needs ``X-Vault-Token``: a missing, unknown, revoked or expired token answers 403
``{"errors": ["permission denied"]}``, as does a read outside the token's policies (a policy here is a list of
``<mount>/data/<path>`` and ``<mount>/metadata/<path>`` paths, a trailing ``*`` as a prefix, as in HCL). Tokens expire
after their TTL (on the server's ``clock``). ``fail_next`` answers the next requests with a 503 (Vault sealed or in
standby). Test helper only; not shipped.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Reply = tuple[int, Any]
PERMISSION_DENIED: Reply = (403, {"errors": ["permission denied"]})
NOT_FOUND: Reply = (404, {"errors": []})


@dataclass
class _Version:
    data: dict[str, str]
    created: float
    deleted: float | None = None
    destroyed: bool = False


@dataclass
class _Token:
    policies: tuple[str, ...]
    ttl_s: float
    expires_at: float
    renewable: bool
    accessor: str = field(default_factory=lambda: secrets.token_hex(12))
    revoked: bool = False


@dataclass(frozen=True)
class VaultRequest:
    method: str
    path: str  # without the query; the body is not kept (it holds JWTs and secret ids)


class FakeVault:
    """Start with ``start()`` or ``with``; ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.secrets: dict[tuple[str, str], list[_Version]] = {}
        self.policies: dict[str, tuple[str, ...]] = {}
        self.tokens: dict[str, _Token] = {}
        self.kubernetes_roles: dict[str, tuple[frozenset[str], tuple[str, ...], float]] = {}  # jwts, policies, ttl
        self.approles: dict[str, tuple[frozenset[str], tuple[str, ...], float]] = {}  # secret ids, policies, ttl
        self.requests: list[VaultRequest] = []
        self._failures = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- set-up, as an operator would do it with the vault CLI -------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def put_secret(self, mount: str, path: str, data: dict[str, str]) -> int:
        """``vault kv put -mount=<mount> <path> k=v ...``; the new version's number."""
        with self.lock:
            versions = self.secrets.setdefault((mount, path), [])
            versions.append(_Version(dict(data), self.clock()))
            return len(versions)

    def delete_version(self, mount: str, path: str, version: int) -> None:
        with self.lock:
            self.secrets[(mount, path)][version - 1].deleted = self.clock()

    def write_policy(self, name: str, paths: Iterable[str]) -> None:
        """A read policy over ``<mount>/data/<path>`` and ``<mount>/metadata/<path>`` paths (``*`` as a suffix)."""
        with self.lock:
            self.policies[name] = tuple(paths)

    def create_token(self, policies: Iterable[str], *, ttl_s: float = 3600.0, renewable: bool = True) -> str:
        """``vault token create -policy=... -ttl=...``."""
        return self._issue(tuple(policies), ttl_s, renewable)

    def kubernetes_role(
        self, role: str, *, jwts: Iterable[str], policies: Iterable[str], ttl_s: float = 3600.0
    ) -> None:
        """A role of the Kubernetes auth method; the fake accepts exactly these JWTs (the real one asks TokenReview)."""
        with self.lock:
            self.kubernetes_roles[role] = (frozenset(jwts), tuple(policies), ttl_s)

    def approle(
        self, role_id: str, *, secret_ids: Iterable[str], policies: Iterable[str], ttl_s: float = 3600.0
    ) -> None:
        with self.lock:
            self.approles[role_id] = (frozenset(secret_ids), tuple(policies), ttl_s)

    def revoke(self, token: str) -> None:
        with self.lock:
            self.tokens[token].revoked = True

    def fail_next(self, times: int = 1) -> None:
        """Answer the next ``times`` requests with 503 (sealed, or a standby without a leader)."""
        with self.lock:
            self._failures += times

    def live_tokens(self) -> list[str]:
        now = self.clock()
        with self.lock:
            return [t for t, info in self.tokens.items() if not info.revoked and info.expires_at > now]

    # -- life cycle ----------------------------------------------------------------------------------------------

    def start(self) -> FakeVault:
        handler = type("FakeVaultHandler", (_Handler,), {"vault": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-vault", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeVault:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the API -------------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: dict[str, Any], token: str | None) -> Reply:
        with self.lock:
            if self._failures > 0:
                self._failures -= 1
                return 503, {"errors": ["Vault is sealed"]}
        route = path.removeprefix("/v1/")
        if method == "POST" and route == "auth/kubernetes/login":
            return self._login(self.kubernetes_roles, str(body.get("role") or ""), str(body.get("jwt") or ""), "role")
        if method == "POST" and route == "auth/approle/login":
            return self._login(
                self.approles, str(body.get("role_id") or ""), str(body.get("secret_id") or ""), "role ID"
            )
        held = self._valid(token)
        if held is None:
            return PERMISSION_DENIED
        assert token is not None
        if method in ("POST", "PUT") and route == "auth/token/renew-self":
            return self._renew(token, held)
        if method == "GET" and route == "auth/token/lookup-self":
            return 200, {"data": self._lookup(token, held)}
        if method != "GET":
            return 405, {"errors": [f"unsupported operation {method} on {route}"]}
        for kind in ("data", "metadata"):
            mount, sep, secret_path = route.partition(f"/{kind}/")
            if sep and mount and secret_path:
                if not self._allowed(held, f"{mount}/{kind}/{secret_path}"):
                    return PERMISSION_DENIED
                return self._read(mount, secret_path, query) if kind == "data" else self._metadata(mount, secret_path)
        return NOT_FOUND

    def _login(self, roles: dict[str, Any], role: str, proof: str, what: str) -> Reply:
        with self.lock:
            entry = roles.get(role)
        if entry is None:
            return 400, {"errors": [f'invalid {what} "{role}"' if role else f"missing {what}"]}
        accepted, policies, ttl_s = entry
        if proof not in accepted:
            return 400, {"errors": ["invalid secret id" if what == "role ID" else "invalid jwt"]}
        token = self._issue(("default", *policies), ttl_s, True)
        with self.lock:
            return 200, {"auth": self._auth_block(token, self.tokens[token])}

    def _issue(self, policies: tuple[str, ...], ttl_s: float, renewable: bool) -> str:
        token = "hvs." + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = _Token(policies, ttl_s, self.clock() + ttl_s, renewable)
        return token

    def _valid(self, token: str | None) -> _Token | None:
        with self.lock:
            held = self.tokens.get(token or "")
        if held is None or held.revoked or held.expires_at <= self.clock():
            return None
        return held

    def _renew(self, token: str, held: _Token) -> Reply:
        if not held.renewable:
            return 400, {"errors": ["lease is not renewable"]}
        with self.lock:
            held.expires_at = self.clock() + held.ttl_s
            return 200, {"auth": self._auth_block(token, held)}

    def _auth_block(self, token: str, held: _Token) -> dict[str, Any]:
        return {
            "client_token": token,
            "accessor": held.accessor,
            "policies": list(held.policies),
            "token_policies": list(held.policies),
            "metadata": None,
            "lease_duration": int(held.ttl_s),
            "renewable": held.renewable,
            "entity_id": "",
            "token_type": "service",
            "orphan": True,
        }

    def _lookup(self, token: str, held: _Token) -> dict[str, Any]:
        remaining = max(0, int(held.expires_at - self.clock()))
        return {
            "accessor": held.accessor,
            "id": token,
            "policies": list(held.policies),
            "renewable": held.renewable,
            "ttl": remaining,
            "creation_ttl": int(held.ttl_s),
            "expire_time": _iso(held.expires_at),
            "type": "service",
        }

    def _allowed(self, held: _Token, path: str) -> bool:
        with self.lock:
            granted = [p for name in held.policies for p in self.policies.get(name, ())]
        return any(path.startswith(p[:-1]) if p.endswith("*") else path == p for p in granted)

    def _read(self, mount: str, path: str, query: dict[str, str]) -> Reply:
        with self.lock:
            versions = list(self.secrets.get((mount, path), []))
        if not versions:
            return NOT_FOUND
        wanted = query.get("version", "0")
        if not wanted.isdigit():
            return 400, {"errors": ["invalid version"]}
        number = int(wanted) or len(versions)
        if number > len(versions):
            return NOT_FOUND
        version = versions[number - 1]
        metadata = _version_metadata(version) | {"version": number, "custom_metadata": None}
        if version.deleted is not None or version.destroyed:
            return 404, {"data": {"data": None, "metadata": metadata}}
        return 200, {"data": {"data": dict(version.data), "metadata": metadata}}

    def _metadata(self, mount: str, path: str) -> Reply:
        with self.lock:
            versions = list(self.secrets.get((mount, path), []))
        if not versions:
            return NOT_FOUND
        return 200, {
            "data": {
                "cas_required": False,
                "created_time": _iso(versions[0].created),
                "current_version": len(versions),
                "custom_metadata": None,
                "delete_version_after": "0s",
                "max_versions": 0,
                "oldest_version": 0,
                "updated_time": _iso(versions[-1].created),
                "versions": {str(i): _version_metadata(v) for i, v in enumerate(versions, start=1)},
            }
        }


def _version_metadata(version: _Version) -> dict[str, Any]:
    return {
        "created_time": _iso(version.created),
        "deletion_time": "" if version.deleted is None else _iso(version.deleted),
        "destroyed": version.destroyed,
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class _Handler(BaseHTTPRequestHandler):
    vault: FakeVault
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_LIST(self) -> None:
        self._dispatch("LIST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        self.vault.requests.append(VaultRequest(method, url.path))
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            self._send(400, {"errors": ["failed to parse JSON input"]})
            return
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        status, payload = self.vault.handle(method, url.path, query, body, self.headers.get("X-Vault-Token"))
        self._send(status, payload)

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
