"""Admin tokens rotate without downtime: a role holds its new token and the one a rotation retired, the old one
valid until its grace period ends (a clock passed in) and refused after with a 401 that says why, never echoing
it; the audit trail names which token acted."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from slsbot.adapters.store import create_store_engine, list_audit, sync_desired_objects
from slsbot.api import parse_resource
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import KnownToken, Role, TokenExpired, TokenRegistry, token_id

OLD_OPERATOR = "op-old-7Qx2v9LkT3mN8pR5sW1yZ4bC"  # test_secrets
NEW_OPERATOR = "op-new-3Hj8Kl2Mn5Pq7Rs9Tu1Vw4Xy"  # test_secrets
VIEWER = "vw-9Lp2Qr4St6Uv8Wx0Yz1Ab3Cd5Ef"  # test_secrets
GRACE_ENDS = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def rotated(clock: Clock) -> TokenRegistry:
    return TokenRegistry.from_tokens(
        operator=SecretStr(NEW_OPERATOR),
        viewer=SecretStr(VIEWER),
        operator_previous=SecretStr(OLD_OPERATOR),
        previous_valid_until=GRACE_ENDS,
        clock=clock,
    )


def test_a_rotated_token_is_valid_until_its_grace_ends_and_refused_after() -> None:
    clock = Clock(GRACE_ENDS - timedelta(seconds=1))
    registry = rotated(clock)
    old = asyncio.run(registry.identify(OLD_OPERATOR))
    assert old is not None and old.role is Role.OPERATOR and old.token_id == token_id(OLD_OPERATOR)
    assert asyncio.run(registry.identify(NEW_OPERATOR)).token_id == token_id(NEW_OPERATOR)  # both at once: no downtime
    clock.now = GRACE_ENDS
    with pytest.raises(TokenExpired) as caught:
        asyncio.run(registry.identify(OLD_OPERATOR))
    message = str(caught.value)
    assert "retired in a rotation" in message and "2026-05-01T09:00:00+00:00" in message and "new operator" in message
    assert OLD_OPERATOR not in message and NEW_OPERATOR not in message
    assert asyncio.run(registry.identify(NEW_OPERATOR)).role is Role.OPERATOR  # the new one has no end
    assert asyncio.run(registry.identify("x" * 30)) is None  # a token nobody ever held stays merely unknown


def test_a_previous_token_without_the_end_of_its_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="SLSBOT_TOKEN_GRACE_UNTIL"):
        TokenRegistry.from_tokens(operator=SecretStr(NEW_OPERATOR), operator_previous=SecretStr(OLD_OPERATOR))
    with pytest.raises(ValueError, match="time zone"):
        KnownToken(SecretStr(OLD_OPERATOR), Role.ADMIN, datetime(2026, 5, 1, 9, 0))


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_store_engine(tmp_path / "supervisor.db")
    strategy = parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "btc", "namespace": "default"},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            },
        }
    )
    with Session(engine) as session:
        sync_desired_objects(session, resources=[strategy], now=GRACE_ENDS - timedelta(hours=1))
    yield engine
    engine.dispose()


def test_the_api_takes_both_tokens_during_the_grace_and_answers_401_saying_why_after(engine) -> None:
    clock = Clock(GRACE_ENDS - timedelta(minutes=5))
    client = TestClient(create_app(engine=engine, tokens=rotated(clock), runtime_client=None))  # type: ignore[arg-type]
    for token in (OLD_OPERATOR, NEW_OPERATOR):
        response = client.post("/api/v1/strategies/btc/pause", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
    clock.now = GRACE_ENDS + timedelta(seconds=1)
    refused = client.post("/api/v1/strategies/btc/resume", headers={"Authorization": f"Bearer {OLD_OPERATOR}"})
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert "retired in a rotation" in refused.json()["detail"] and OLD_OPERATOR not in refused.text
    assert client.get("/api/v1/strategies", headers={"Authorization": f"Bearer {OLD_OPERATOR}"}).status_code == 401
    with Session(engine) as session:
        actors = [record.actor for record in list_audit(session, limit=10)]
    # Which token acted, by its id: the old one and the new one during the grace, nobody after.
    assert sorted(actors) == sorted([f"operator:{token_id(OLD_OPERATOR)}", f"operator:{token_id(NEW_OPERATOR)}"])
