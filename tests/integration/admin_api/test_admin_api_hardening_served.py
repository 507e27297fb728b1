"""The admin API's protections on a real uvicorn on 127.0.0.1, where the client address is the TCP peer's: a
chunked body over the limit is refused 413 while its sender still has chunks to send (it was not read whole); a
Content-Length over the limit is refused before any body is sent; an address that fails to authenticate is locked
out, and another loopback address (127.0.0.2) is not; the rate limit answers 429 with Retry-After."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from pydantic import SecretStr
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.fakes.test_secrets import HARDENING_OPERATOR_TOKEN as OPERATOR_TOKEN

from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import create_store_engine
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry
from slsbot.interfaces.admin_api.hardening import server_options
from slsbot.settings import AdminApiSettings

from .conftest import seed_store, serve

pytestmark = [pytest.mark.integration]

CONFORMANCE = [status_code_conformance, content_type_conformance, response_headers_conformance]
CONFORMANCE += [response_schema_conformance]

LIMITS = AdminApiSettings(
    max_body_bytes=4096,
    lockout_after_failures=3,
    lockout_base_seconds=60,
    rate_limit_per_second=0.01,
    rate_limit_burst=20,
)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state_dir: Path = tmp_path_factory.mktemp("admin-api-hardening")
    engine = create_store_engine(state_dir / "supervisor.db")
    seed_store(engine)
    runtime_client = RuntimeHttpClient(timeout=0.5)
    app = create_app(
        engine=engine,
        tokens=TokenRegistry.from_tokens(operator=SecretStr(OPERATOR_TOKEN)),
        runtime_client=runtime_client,
        state_dir=state_dir,
        hardening=LIMITS,
    )
    try:
        with serve(app) as served:
            yield served
    finally:
        runtime_client.close()
        engine.dispose()


def raw_exchange(url: str, head: bytes, body_parts: list[bytes], *, source: str) -> bytes:
    """Send ``head`` and ``body_parts`` from ``source``, never finishing the body, and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20, source_address=(source, 0)) as connection:
        connection.sendall(head)
        for part in body_parts:
            connection.sendall(part)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_chunked_body_over_the_limit_is_refused_before_it_ends(url: str) -> None:
    head = (
        b"POST /api/v1/strategies/btc-trend/pause HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {OPERATOR_TOKEN}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    chunk = b"x" * 3000
    parts = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * 2  # 6000 bytes, and no final 0-length chunk
    answer = raw_exchange(url, head, parts, source="127.0.0.1")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"error":"RequestTooLarge"' in answer and b"larger than 4096 bytes" in answer


def test_a_declared_length_over_the_limit_is_refused_before_the_body(url: str) -> None:
    head = (
        b"POST /api/v1/strategies/btc-trend/pause HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {OPERATOR_TOKEN}\r\n".encode()
        + b"Content-Length: 1073741824\r\n\r\n"
    )
    answer = raw_exchange(url, head, [], source="127.0.0.1")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def test_a_locked_out_address_does_not_lock_out_another(url: str) -> None:
    attacker = httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10)
    user = httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with attacker, user:
        statuses = [
            attacker.get("/api/v1/strategies", headers={"Authorization": f"Bearer guess-{n}"}).status_code
            for n in range(3)
        ]
        assert statuses == [401, 401, 401]
        locked = attacker.get("/api/v1/strategies", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        assert locked.status_code == 429 and locked.headers["retry-after"] == "60"
        assert locked.json()["error"] == "TooManyFailedAuthentications"
        assert user.get("/api/v1/strategies").status_code == 200
        assert "slsbot_admin_lockouts_total 1.0" in user.get("/metrics").text


def test_the_rate_limit_answers_429_with_retry_after(url: str) -> None:
    with httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address="127.0.0.3"), timeout=10) as client:
        statuses = [client.get("/healthz").status_code for _ in range(LIMITS.rate_limit_burst + 1)]
        assert statuses[:-1] == [200] * LIMITS.rate_limit_burst
        refused = client.get("/healthz")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "100"
        assert refused.json()["error"] == "RateLimited"
        assert refused.headers["x-frame-options"] == "DENY"


def test_a_forwarded_for_header_does_not_choose_the_address(tmp_path: Path) -> None:
    """A client writes X-Forwarded-For as it likes: with no proxy trusted (uvicorn trusts 127.0.0.1 by default) it
    must not pick whose failures count: a local process claiming a remote user's address would lock that user out,
    and dodge its own lockout. Served with the options slsbot up gives uvicorn."""
    engine = create_store_engine(tmp_path / "supervisor.db")
    app = create_app(
        engine=engine,
        tokens=TokenRegistry.from_tokens(operator=SecretStr(OPERATOR_TOKEN)),
        runtime_client=RuntimeHttpClient(timeout=0.5),
        hardening=LIMITS,
    )
    try:
        with serve(app, **server_options(LIMITS)) as served, httpx.Client(base_url=served, timeout=10) as client:
            for n in range(3):
                headers = {"X-Forwarded-For": "198.51.100.7", "Authorization": f"Bearer guess-{n}"}
                assert client.get("/api/v1/strategies", headers=headers).status_code == 401
            # The failures were 127.0.0.1's: it is locked out, whatever address it claims now.
            answer = client.get(
                "/api/v1/strategies",
                headers={"X-Forwarded-For": "192.0.2.1", "Authorization": f"Bearer {OPERATOR_TOKEN}"},
            )
            assert answer.status_code == 429
    finally:
        engine.dispose()


def test_the_refusals_conform_to_the_openapi_document(tmp_path: Path) -> None:
    """A 429 and a 413 from the protections are answers the document declares (status, Retry-After, body)."""
    engine = create_store_engine(tmp_path / "supervisor.db")
    limits = AdminApiSettings(rate_limit_per_second=0.01, rate_limit_burst=3, max_body_bytes=1024)
    app = create_app(
        engine=engine,
        tokens=TokenRegistry.from_tokens(operator=SecretStr(OPERATOR_TOKEN)),
        runtime_client=RuntimeHttpClient(timeout=0.5),
        hardening=limits,
    )
    try:
        with serve(app, **server_options(limits)) as served:
            schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
            pause = schema["/api/v1/strategies/{name}/pause"]["POST"]
            case = pause.Case(path_parameters={"name": "btc"}, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
            too_large = case.call(data=b"x" * 2048)
            assert too_large.status_code == 413
            case.validate_response(too_large, checks=CONFORMANCE)
            health = schema["/healthz"]["GET"]
            # The burst of 3: the document's fetch, the 413 and one more; the next is refused.
            answers = [health.Case().call() for _ in range(2)]
            assert [answer.status_code for answer in answers] == [200, 429]
            health.Case().validate_response(answers[-1], checks=CONFORMANCE)
    finally:
        engine.dispose()
