"""Schemathesis over the admin API's OpenAPI document, with every role and with no token, against the app served by
a real uvicorn on 127.0.0.1 (its hardening middleware included; the rate limit and the lockout off, as one address
sends hundreds of requests here, many without a token; they are tested in test_admin_api_hardening_served.py).

For every operation it generates valid requests and, for each role, checks that no answer is a server error, that
every answer is one the document declares (status, content type, headers, body schema), and that a mutating route
(POST) is refused, 401 without a token and 403 to a viewer, and changes nothing in the store. Bounded: a few examples
per operation and role (``EXAMPLES_PER_OPERATION``), about 20 s on a quiet machine."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import Session
from tests.fakes import test_secrets

from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import create_store_engine, list_audit, list_stored_objects
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry

from .conftest import UNLIMITED, seed_store, serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
TOKENS = {
    "admin": test_secrets.FUZZ_ADMIN_TOKEN,
    "operator": test_secrets.FUZZ_OPERATOR_TOKEN,
    "viewer": test_secrets.FUZZ_VIEWER_TOKEN,
}
#: What a mutating route answers each role below the operator's.
REFUSAL = {None: 401, "viewer": 403}


@dataclass
class FuzzTarget:
    url: str
    engine: object


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    state_dir: Path = tmp_path_factory.mktemp("admin-api-fuzz")
    engine = create_store_engine(state_dir / "supervisor.db")
    seed_store(engine)
    runtime_client = RuntimeHttpClient(timeout=0.5)
    tokens = TokenRegistry.from_tokens(**{role: SecretStr(token) for role, token in TOKENS.items()})
    app = create_app(
        engine=engine, tokens=tokens, runtime_client=runtime_client, state_dir=state_dir, hardening=UNLIMITED
    )
    try:
        with serve(app) as url:
            yield FuzzTarget(url=url, engine=engine)
    finally:
        runtime_client.close()
        engine.dispose()


def store_snapshot(engine) -> list[tuple]:
    with Session(engine) as session:
        objects = [
            (o.kind, o.namespace, o.name, o.generation, o.paused_override, o.controls_override, o.spec_hash)
            for o in list_stored_objects(session)
        ]
        return [*objects, ("audit", len(list_audit(session, limit=100_000)))]


def fuzz(url: str, role: str | None) -> tuple[list[str], Counter[tuple[str, int]]]:
    """Every operation, ``EXAMPLES_PER_OPERATION`` valid requests each, as ``role``: the failures, and the statuses
    seen per method."""
    config = {"auth": {"openapi": {"HTTPBearer": {"bearer": TOKENS[role]}}}} if role else {}
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=SchemathesisConfig.from_dict(config))
    failures: list[str] = []
    statuses: Counter[tuple[str, int]] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 23
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def answers_as_declared(case) -> None:
            response = case.call()
            statuses[(case.method.upper(), response.status_code)] += 1
            if case.method.upper() == "POST" and role in REFUSAL:
                assert response.status_code == REFUSAL[role], (
                    f"{case.method.upper()} {case.formatted_path} as {role or 'nobody'}: {response.status_code} "
                    f"{response.text[:200]}"
                )
            if role is None and case.path.startswith("/api/"):
                assert response.status_code == 401, f"{case.formatted_path} without a token: {response.status_code}"
            case.validate_response(response, checks=CHECKS)

        try:
            answers_as_declared()
        except Exception as failure:  # every operation is tried; all failures are reported together
            failures.append(f"{operation.label} as {role or 'nobody'}: {failure}")
    return failures, statuses


@pytest.mark.parametrize("role", [None, "viewer"], ids=["no-token", "viewer"])
def test_without_the_role_every_mutation_is_refused_and_changes_nothing(fuzz_target: FuzzTarget, role) -> None:
    before = store_snapshot(fuzz_target.engine)
    failures, statuses = fuzz(fuzz_target.url, role)
    assert not failures, "\n\n".join(failures)
    assert statuses[("POST", REFUSAL[role])] >= 6 * EXAMPLES_PER_OPERATION // 2, statuses
    after = store_snapshot(fuzz_target.engine)
    if role is None:
        assert after == before  # nothing stored for anonymous requests (only counted)
    else:
        assert after[:-1] == before[:-1]  # the objects as they were; the refused attempts are audited
        assert after[-1][1] > before[-1][1]


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_with_the_role_every_answer_is_declared_and_none_is_a_server_error(fuzz_target: FuzzTarget, role) -> None:
    failures, statuses = fuzz(fuzz_target.url, role)
    assert not failures, "\n\n".join(failures)
    assert statuses[("GET", 200)] > 0, statuses  # the token was taken
    # Every mutation reached its route (mostly 404: the names are made up), none was refused for the role.
    assert sum(n for (method, _), n in statuses.items() if method == "POST") >= 6 * EXAMPLES_PER_OPERATION // 2
    assert not {status for method, status in statuses if method == "POST"} & {401, 403}, statuses
