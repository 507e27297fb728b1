"""Schemathesis against the admin API served on 127.0.0.1: for every operation of /openapi.json it generates
requests (valid ones, then invalid ones), sends them with an admin token, and checks that every answer is one the
document declares (status, content type, headers, body schema) and that none is a server error.

Schemathesis's own pytest plugin (``@schema.parametrize`` on a fixture) does not run on pytest 9, so each
operation's Hypothesis test is built here from the operation's strategy, as its Python API allows."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 25
# uvicorn's own answer to a request that is not valid HTTP (negative cases include headers such as a Content-Length
# that is no number): the app never sees it, so its OpenAPI document cannot describe it.
MALFORMED_HTTP = (400, "Invalid HTTP request received.")


def check_operation(operation, *, mode: GenerationMode, statuses: Counter[int]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
    def every_answer_is_declared(case) -> None:
        response = case.call()
        statuses[response.status_code] += 1
        if (response.status_code, response.text) == MALFORMED_HTTP:
            return
        case.validate_response(response)

    every_answer_is_declared()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_answer_is_declared_in_the_openapi_document(served_admin_api, mode: GenerationMode) -> None:
    # The token through schemathesis's own auth for the document's bearer scheme, so that it knows every request
    # carries it (a negative case that drops the header is then not sent with it anyway).
    auth = {"auth": {"openapi": {"HTTPBearer": {"bearer": served_admin_api.admin_token}}}}
    schema = schemathesis.openapi.from_url(
        f"{served_admin_api.url}/openapi.json", config=SchemathesisConfig.from_dict(auth)
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 27
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not operation.query and not operation.path_parameters:
            continue  # nothing in the request can be invalid
        try:
            check_operation(operation, mode=mode, statuses=statuses)
        except Exception as failure:  # every operation is checked; all failures are reported together
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
    # The token was sent: the valid requests were answered (not all refused), the invalid ones refused as such.
    expected = {200} if mode is GenerationMode.POSITIVE else {400, 422}
    assert expected <= set(statuses), statuses
