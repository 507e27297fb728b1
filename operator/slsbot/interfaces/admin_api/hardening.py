"""The admin API's protections, as plain ASGI middleware around the app (docs/concepts/admin-api-security.md):

* ``SecurityHeaders``: on every answer, ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer``, a ``Content-Security-Policy`` (a route may set its own: /docs allows its one
  inline script by hash, the Control Center at /ui its own script and stylesheet only), ``Cache-Control:
  no-store`` on everything but the docs' static assets, and ``Strict-Transport-Security`` only when the request came
  over TLS;
* ``ClientLimits``: per client address, a token bucket (429 ``RateLimited`` with ``Retry-After``) and a lockout with
  a growing delay after repeated failed authentications (429 ``TooManyFailedAuthentications``); it identifies no one
  itself: it sees the app's 401 answers (a failure) and any other answer to a request with a bearer token (a
  success, which clears the count);
* ``BodyLimit``: a body larger than ``max_body_bytes`` is refused 413 ``RequestTooLarge`` before it is read whole:
  at once from its ``Content-Length``, or as soon as the chunks of a body without one pass the limit;
* CORS is Starlette's ``CORSMiddleware``, added only when origins are listed: by default no answer carries an
  ``Access-Control-Allow-Origin`` header.

Every refusal here has the API's one error shape, ``{"detail", "error"}``, and is counted in
``slsbot_admin_requests_refused_total{reason}`` (``adapters.control_metrics``).

The rate limit and the lockout are keyed by the TCP peer's address as the server saw it (behind a reverse proxy,
run uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips`` so that the address is the client's); never by a
header the client writes, nor by the token it sends, so no one can lock out another address.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slsbot.adapters.control_metrics import AdminApiMetrics
from slsbot.domain.request_limits import FailedAuthLockout, TokenBuckets, retry_after_seconds
from slsbot.settings import AdminApiSettings

INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
#: For JSON answers and the pages the API serves (an experiment's report: inline style, its own pictures).
DEFAULT_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'none'"
)


def docs_csp(html: str) -> str:
    """The policy of a Swagger UI page: its scripts and styles from the API itself, and its one inline script
    allowed by its SHA-256 (no 'unsafe-inline' for scripts)."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
    )


#: Paths whose answers may be cached (static files that change only with the package).
CACHEABLE_PREFIXES = ("/docs/assets/",)
#: Paths the lockout guards: the ones that take a token (the open ones, /healthz, /metrics, /docs, stay reachable).
GUARDED_PREFIXES = ("/api/",)


def error_response_parts(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> list[Message]:
    body = json.dumps({"detail": detail, "error": error}, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    return [
        {"type": "http.response.start", "status": status, "headers": raw},
        {"type": "http.response.body", "body": body},
    ]


async def send_error(send: Send, status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
    for message in error_response_parts(status, error, detail, headers):
        await send(message)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        over_tls = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = DEFAULT_CSP
                if not path.startswith(CACHEABLE_PREFIXES):
                    headers["Cache-Control"] = "no-store"
                if over_tls:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, with_headers)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class ClientLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: AdminApiSettings,
        metrics: AdminApiMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock
        self.buckets = TokenBuckets(
            rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst, max_clients=settings.tracked_clients
        )
        self.lockout = FailedAuthLockout(
            threshold=settings.lockout_after_failures,
            window=settings.lockout_window_seconds,
            base=settings.lockout_base_seconds,
            cap=settings.lockout_max_seconds,
            max_clients=settings.tracked_clients,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = client_address(scope)
        now = self.clock()
        guarded = scope["path"].startswith(GUARDED_PREFIXES)
        locked = self.lockout.locked_for(client, now) if guarded else 0.0
        if locked > 0:
            self.metrics.refused("locked_out")
            wait = retry_after_seconds(locked)
            await send_error(
                send,
                429,
                "TooManyFailedAuthentications",
                f"too many failed authentications from this address: try again in {wait} s with a valid token",
                {"Retry-After": str(wait)},
            )
            return
        wait_for_token = self.buckets.take(client, now)
        if wait_for_token > 0:
            self.metrics.refused("rate_limited")
            wait = retry_after_seconds(wait_for_token)
            await send_error(
                send,
                429,
                "RateLimited",
                f"too many requests from this address: send at most {self.buckets.rate:g} a second "
                f"(bursts of {self.buckets.burst}); try again in {wait} s",
                {"Retry-After": str(wait)},
            )
            return
        presented_token = "authorization" in Headers(scope=scope)

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 401:
                    if self.lockout.failed(client, self.clock()) > 0:
                        self.metrics.locked_out()
                elif presented_token and guarded:
                    self.lockout.succeeded(client)
            await send(message)

        await self.app(scope, receive, observe)


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, metrics: AdminApiMetrics) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def refuse(self, send: Send) -> None:
        self.metrics.refused("too_large")
        await send_error(
            send,
            413,
            "RequestTooLarge",
            f"the request body is larger than {self.max_bytes} bytes, the most this API accepts: send a smaller one",
            {"Connection": "close"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self.refuse(send)
                return
            await self.app(scope, receive, send)  # the server delivers no more than Content-Length says
            return
        if "transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        # A body in chunks, of a size nobody declared: read it up to the limit before the app sees any of it.
        chunks: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks.append(message)  # the client went away: let the app see it
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self.refuse(send)
                return
            chunks.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)


def server_options(settings: AdminApiSettings) -> dict[str, Any]:
    """The ``uvicorn.Config`` options that decide which address a request comes from: the ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` headers are believed only from the proxies in ``trusted_proxies`` (uvicorn believes them
    from 127.0.0.1 by default, which lets any local process choose the address its failures count against)."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}


def install_hardening(app: Starlette, *, settings: AdminApiSettings, metrics: AdminApiMetrics) -> None:
    """Add the protections to ``app``'s middleware, outermost first: security headers (on every answer, refusals
    included), CORS when origins are listed, the per-client limits, then the body limit; the app's own middleware
    (the audit trail) runs inside them. Call after the app's own middleware was added."""
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, metrics=metrics)
    app.add_middleware(ClientLimits, settings=settings, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(SecurityHeaders)
