"""The control plane's settings: read from the environment when built (never at import), placeholder and
short tokens refused with the variable named, the token value never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from slsbot.settings import ControlPlaneSettings

GOOD = "k3P9xQ2mZ7vL5nR8tW4y"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SLSBOT_ADMIN_TOKEN",
        "SLSBOT_VIEWER_TOKEN",
        "SLSBOT_ADMIN_PORT",
        "SLSBOT_STATE_DIR",
        "SLSBOT_BYTECODE_CACHE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = ControlPlaneSettings()
    assert (settings.admin_host, settings.admin_port) == ("127.0.0.1", 8080)
    assert settings.admin_token is None and settings.viewer_token is None
    assert settings.database_path == Path("var/slsbot/supervisor.db")
    assert settings.tick_interval == 0.5
    assert settings.runtime_command[1:] == ["-m", "slsbot.interfaces.cli", "runtime"]
    assert settings.runtime_nice == 10  # runtimes below the supervisor and its admin API


def test_environment_is_read_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN", GOOD)
    monkeypatch.setenv("SLSBOT_ADMIN_PORT", "9999")
    monkeypatch.setenv("SLSBOT_STATE_DIR", "/srv/slsbot")
    settings = ControlPlaneSettings()
    assert settings.admin_token.get_secret_value() == GOOD
    assert GOOD not in repr(settings)
    assert settings.admin_port == 9999 and settings.state_dir == Path("/srv/slsbot")
    assert ControlPlaneSettings(admin_port=1234).admin_port == 1234  # explicit values (the CLI) win


def test_runtime_bytecode_is_cached_once_per_user_not_per_state_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/home/me/.cache")
    first, second = ControlPlaneSettings(state_dir=Path("a")), ControlPlaneSettings(state_dir=Path("b"))
    assert first.bytecode_cache == second.bytecode_cache == Path("/home/me/.cache/slsbot/bytecode")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert ControlPlaneSettings().bytecode_cache == Path.home() / ".cache" / "slsbot" / "bytecode"
    monkeypatch.setenv("SLSBOT_BYTECODE_CACHE", "/var/cache/slsbot")
    assert ControlPlaneSettings().bytecode_cache == Path("/var/cache/slsbot")


@pytest.mark.parametrize("placeholder", ["changeme", "CHANGEME", "change-me", "secret", "changeme-please-now-ok"])
def test_placeholder_tokens_are_refused(monkeypatch: pytest.MonkeyPatch, placeholder: str) -> None:
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN", placeholder)
    with pytest.raises(ValidationError, match="SLSBOT_ADMIN_TOKEN is a placeholder"):
        ControlPlaneSettings()


def test_short_tokens_are_refused_without_echoing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLSBOT_VIEWER_TOKEN", "short-but-real")
    with pytest.raises(ValidationError) as caught:
        ControlPlaneSettings()
    assert "SLSBOT_VIEWER_TOKEN is shorter than 16 characters" in str(caught.value)
    assert all("short-but-real" not in error["msg"] for error in caught.value.errors(include_input=False))


def test_viewer_and_operator_tokens_must_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN", GOOD)
    monkeypatch.setenv("SLSBOT_VIEWER_TOKEN", GOOD)
    with pytest.raises(ValidationError, match="must differ"):
        ControlPlaneSettings()
