"""The admin API's protections (``interfaces.admin_api.hardening``) through the app's ASGI interface, each client
address its own ``TestClient``: the rate limit and the lockout answer 429 with ``Retry-After`` in the one error
shape and are counted in ``/metrics``; one address never locks out another; the security headers are on every
answer; CORS is closed unless origins are listed; a body declared too large is refused 413 before it is read.
(A chunked body over the limit, on a real server: tests/integration/admin_api/test_admin_api_hardening_served.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import create_store_engine
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry
from slsbot.interfaces.admin_api.hardening import server_options
from slsbot.settings import AdminApiSettings, ControlPlaneSettings

OPERATOR_TOKEN = "op-Hd7Kq2Wm9Zx4Lc8Vb3Nf6Tg1"  # test_secrets
VIEWER_TOKEN = "vw-Pr5Ys8Ju2Ik6Ol9Ha3Sd7Fg0"  # test_secrets
ATTACKER = ("203.0.113.9", 40000)
USER = ("198.51.100.7", 40001)


@pytest.fixture
def make_app(tmp_path: Path):
    engines = []

    def make(**settings):
        engine = create_store_engine(tmp_path / f"supervisor-{len(engines)}.db")
        engines.append(engine)
        tokens = TokenRegistry.from_tokens(operator=SecretStr(OPERATOR_TOKEN), viewer=SecretStr(VIEWER_TOKEN))
        return create_app(
            engine=engine,
            tokens=tokens,
            runtime_client=RuntimeHttpClient(timeout=1.0),
            hardening=AdminApiSettings(**settings),
        )

    yield make
    for engine in engines:
        engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def metric(client: TestClient, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{name}{labels} is not exported")


def test_a_client_over_its_rate_is_refused_429_with_retry_after(make_app) -> None:
    app = make_app(rate_limit_per_second=0.01, rate_limit_burst=3, lockout_after_failures=0)
    client = TestClient(app, client=USER)
    assert [client.get("/api/v1/strategies", headers=bearer(VIEWER_TOKEN)).status_code for _ in range(3)] == [200] * 3
    refused = client.get("/api/v1/strategies", headers=bearer(VIEWER_TOKEN))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "100"
    assert refused.json() == {
        "detail": "too many requests from this address: send at most 0.01 a second (bursts of 3); try again in 100 s",
        "error": "RateLimited",
    }
    assert refused.headers["x-content-type-options"] == "nosniff"  # the refusal has the headers too
    other = TestClient(app, client=ATTACKER)
    assert other.get("/api/v1/strategies", headers=bearer(VIEWER_TOKEN)).status_code == 200
    assert metric(other, "slsbot_admin_requests_refused_total", reason="rate_limited") == 1


def test_repeated_failed_authentications_lock_out_that_address_only(make_app) -> None:
    app = make_app(lockout_after_failures=3, lockout_base_seconds=30, lockout_max_seconds=120)
    attacker, user = TestClient(app, client=ATTACKER), TestClient(app, client=USER)
    statuses = [attacker.get("/api/v1/strategies", headers=bearer(f"guess-{n}")).status_code for n in range(3)]
    assert statuses == [401, 401, 401]
    locked = attacker.get("/api/v1/strategies", headers=bearer(VIEWER_TOKEN))  # even the right token now
    assert locked.status_code == 429 and locked.headers["retry-after"] == "30"
    assert locked.json()["error"] == "TooManyFailedAuthentications"
    assert "try again in 30 s" in locked.json()["detail"]
    assert attacker.get("/healthz").status_code == 200  # the open paths stay open
    # Another address is not locked, whatever the attacker sends (its token, its failures).
    assert user.get("/api/v1/strategies", headers=bearer(VIEWER_TOKEN)).status_code == 200
    assert user.post("/api/v1/strategies/nope/pause", headers=bearer(OPERATOR_TOKEN)).status_code == 404
    assert metric(user, "slsbot_admin_lockouts_total") == 1
    assert metric(user, "slsbot_admin_requests_refused_total", reason="locked_out") == 1


def test_a_success_clears_the_failures_and_a_403_is_not_a_failure(make_app) -> None:
    client = TestClient(make_app(lockout_after_failures=3, lockout_base_seconds=30), client=USER)
    for _ in range(3):
        assert client.get("/api/v1/strategies", headers=bearer("typo")).status_code == 401
        assert client.get("/api/v1/strategies", headers=bearer("typo")).status_code == 401
        assert client.get("/api/v1/strategies", headers=bearer(VIEWER_TOKEN)).status_code == 200
    for _ in range(5):  # a known token without the role: authenticated, refused, never locked out
        assert client.post("/api/v1/strategies/x/pause", headers=bearer(VIEWER_TOKEN)).status_code == 403


SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


def test_every_answer_carries_the_security_headers(make_app) -> None:
    client = TestClient(make_app(), client=USER)
    answers = [
        client.get("/api/v1/strategies", headers=bearer(VIEWER_TOKEN)),
        client.get("/api/v1/strategies"),  # 401
        client.get("/api/v1/nothing", headers=bearer(VIEWER_TOKEN)),  # 404
        client.get("/healthz"),
        client.get("/openapi.json"),
        client.get("/metrics"),
    ]
    for answer in answers:
        assert {name: answer.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS, answer.url
        assert answer.headers["cache-control"] == "no-store", answer.url
        assert answer.headers["content-security-policy"].startswith("default-src 'none'"), answer.url
        assert "strict-transport-security" not in answer.headers  # not over TLS
    over_tls = TestClient(make_app(), base_url="https://testserver", client=USER).get("/healthz")
    assert over_tls.headers["strict-transport-security"] == "max-age=31536000"


def test_the_docs_page_allows_only_its_own_inline_script(make_app) -> None:
    client = TestClient(make_app(), client=USER)
    page = client.get("/docs")
    policy = page.headers["content-security-policy"]
    script_src = next(part for part in policy.split(";") if part.strip().startswith("script-src")).split()
    assert script_src[:2] == ["script-src", "'self'"] and len(script_src) == 3 and script_src[2].startswith("'sha256-")
    assert "unsafe-inline" not in " ".join(script_src) and "unsafe-eval" not in policy
    asset = client.get("/docs/assets/swagger-ui.css")
    assert asset.status_code == 200 and asset.headers.get("cache-control") != "no-store"
    assert asset.headers["x-content-type-options"] == "nosniff"


def test_cors_is_closed_by_default(make_app) -> None:
    client = TestClient(make_app(), client=USER)
    origin = {"Origin": "https://evil.example"}
    answer = client.get("/api/v1/strategies", headers=bearer(VIEWER_TOKEN) | origin)
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
    preflight = client.options(
        "/api/v1/strategies/x/pause",
        headers=origin | {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
    )
    assert not any(name.startswith("access-control-") for name in preflight.headers)


def test_cors_opens_for_the_listed_origins_only(make_app) -> None:
    client = TestClient(make_app(cors_origins=["https://ops.example.com"]), client=USER)
    allowed = client.get("/api/v1/strategies", headers=bearer(VIEWER_TOKEN) | {"Origin": "https://ops.example.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://ops.example.com"
    other = client.get("/api/v1/strategies", headers=bearer(VIEWER_TOKEN) | {"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options(
        "/api/v1/strategies/x/pause",
        headers={
            "Origin": "https://ops.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://ops.example.com"


def test_a_body_declared_larger_than_the_limit_is_refused_413(make_app) -> None:
    client = TestClient(make_app(max_body_bytes=1024), client=USER)
    refused = client.post("/api/v1/strategies/x/pause", headers=bearer(OPERATOR_TOKEN), content=b"x" * 1025)
    assert refused.status_code == 413
    assert refused.json() == {
        "detail": "the request body is larger than 1024 bytes, the most this API accepts: send a smaller one",
        "error": "RequestTooLarge",
    }
    small = client.post("/api/v1/strategies/x/pause", headers=bearer(OPERATOR_TOKEN), content=b"x" * 1024)
    assert small.status_code == 404  # reached the route
    assert metric(client, "slsbot_admin_requests_refused_total", reason="too_large") == 1


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"cors_origins": ["*"]}, "cors_origins"),
        ({"cors_origins": ["https://ops.example.com/app"]}, "cors_origins"),
        ({"rate_limit_burst": 0}, "rate_limit_burst"),
        ({"lockout_base_seconds": 10, "lockout_max_seconds": 5}, "lockout_max_seconds"),
        ({"trusted_proxies": ["*"]}, "trusted_proxies"),
        ({"trusted_proxies": ["proxy.local"]}, "trusted_proxies"),
    ],
)
def test_bad_settings_name_the_field(settings: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AdminApiSettings(**settings)


def test_forwarded_headers_are_believed_only_from_the_trusted_proxies() -> None:
    assert server_options(AdminApiSettings()) == {"proxy_headers": False}
    trusted = AdminApiSettings(trusted_proxies=["10.0.0.5", "10.1.0.0/16"])
    assert server_options(trusted) == {"proxy_headers": True, "forwarded_allow_ips": ["10.0.0.5", "10.1.0.0/16"]}


def test_the_settings_come_from_the_environment_of_slsbot_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLSBOT_ADMIN_API__RATE_LIMIT_PER_SECOND", "5")
    monkeypatch.setenv("SLSBOT_ADMIN_API__CORS_ORIGINS", '["https://ops.example.com"]')
    monkeypatch.setenv("SLSBOT_ADMIN_API__AUDIT_RETENTION_DAYS", "90")
    admin_api = ControlPlaneSettings().admin_api
    assert (admin_api.rate_limit_per_second, admin_api.cors_origins, admin_api.audit_retention_days) == (
        5.0,
        ["https://ops.example.com"],
        90.0,
    )
    assert admin_api.lockout_after_failures == 5  # the rest keep their defaults
    monkeypatch.setenv("SLSBOT_ADMIN_API__CORS_ORIGINS", '["*"]')
    with pytest.raises(ValueError, match="cors_origins"):
        ControlPlaneSettings()


def test_the_audit_route_shows_each_records_place_in_the_chain(make_app) -> None:
    client = TestClient(make_app(), client=USER)
    client.post("/api/v1/strategies/a/pause", headers=bearer(OPERATOR_TOKEN))
    client.post("/api/v1/strategies/b/pause", headers=bearer(OPERATOR_TOKEN))
    newest, oldest = client.get("/api/v1/audit", headers=bearer(VIEWER_TOKEN)).json()
    assert oldest["prev_hash"] == "0" * 64 and newest["prev_hash"] == oldest["hash"]
    assert len(newest["hash"]) == 64
