"""ControlAccess: who may call the runtime's control endpoints (the HTTP behaviour itself is tested against a
real runtime process in tests/integration/runtime/test_runtime_control_auth.py)."""

from __future__ import annotations

import pytest

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.server import ControlAccess

TOKEN = "t0k3n-0123456789abcdef"


def test_only_the_bearer_of_the_token_passes() -> None:
    access = ControlAccess(token=TOKEN)
    assert access.refusal(f"Bearer {TOKEN}") is None
    assert access.refusal(f"bearer  {TOKEN} ") is None  # the scheme is case-insensitive
    for header in (None, "", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}0", "Bearer é"):
        code, error = access.refusal(header)
        assert code == 401 and TOKEN not in error, header


def test_without_a_token_nobody_passes_unless_insecure() -> None:
    code, error = ControlAccess().refusal(f"Bearer {TOKEN}")
    assert code == 403 and "SLSBOT_RUNTIME_TOKEN" in error and "--insecure-control" in error
    assert ControlAccess(insecure=True).refusal(None) is None
    assert ControlAccess(token=TOKEN, insecure=True).refusal(None)[0] == 401  # a token is always required if set


def test_the_token_comes_from_the_environment_value_and_never_shows() -> None:
    assert not ControlAccess.from_environment("  ", insecure=False).configured
    access = ControlAccess.from_environment(f"{TOKEN}\n", insecure=False)
    assert access.configured and access.refusal(f"Bearer {TOKEN}") is None and TOKEN not in repr(access)
    with pytest.raises(ConfigError, match="SLSBOT_RUNTIME_TOKEN: shorter than 16 characters"):
        ControlAccess.from_environment("short", insecure=False)
