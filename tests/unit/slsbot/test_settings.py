"""The control plane's settings: read from the environment when built (never at import), placeholder and
short tokens refused with the variable named, the token value never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from slsbot.settings import AdminClientSettings, ControlPlaneSettings

GOOD = "k3P9xQ2mZ7vL5nR8tW4y"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SLSBOT_ADMIN_TOKEN",
        "SLSBOT_OPERATOR_TOKEN",
        "SLSBOT_VIEWER_TOKEN",
        "SLSBOT_ADMIN_PORT",
        "SLSBOT_STATE_DIR",
        "SLSBOT_ADMIN_URL",
        "SLSBOT_TOKEN_FILE",
        "SLSBOT_BYTECODE_CACHE",
        "SLSBOT_VAULT_ADDR",
        "SLSBOT_VAULT_TOKEN_FILE",
        "SLSBOT_VAULT_ROLE_ID",
        "SLSBOT_VAULT_SECRET_ID_FILE",
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


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("SLSBOT_ADMIN_TOKEN", "SLSBOT_VIEWER_TOKEN"),
        ("SLSBOT_ADMIN_TOKEN", "SLSBOT_OPERATOR_TOKEN"),
        ("SLSBOT_OPERATOR_TOKEN", "SLSBOT_VIEWER_TOKEN"),
    ],
)
def test_each_role_has_its_own_token(monkeypatch: pytest.MonkeyPatch, first: str, second: str) -> None:
    monkeypatch.setenv(first, GOOD)
    monkeypatch.setenv(second, GOOD)
    with pytest.raises(ValidationError, match=f"{second} must differ from {first}"):
        ControlPlaneSettings()


def test_the_operator_token_is_read_and_checked_like_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLSBOT_OPERATOR_TOKEN", GOOD)
    assert ControlPlaneSettings().operator_token.get_secret_value() == GOOD
    monkeypatch.setenv("SLSBOT_OPERATOR_TOKEN", "changeme")
    with pytest.raises(ValidationError, match="SLSBOT_OPERATOR_TOKEN is a placeholder"):
        ControlPlaneSettings()


def test_the_client_uses_the_least_powerful_token_of_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AdminClientSettings().environment_token is None
    assert AdminClientSettings().admin_connection_path == Path("var/slsbot/admin-api.json")
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN", "admin-" + GOOD)
    assert AdminClientSettings().environment_token[0] == "SLSBOT_ADMIN_TOKEN"
    monkeypatch.setenv("SLSBOT_OPERATOR_TOKEN", "operator-" + GOOD)
    assert AdminClientSettings().environment_token[0] == "SLSBOT_OPERATOR_TOKEN"
    monkeypatch.setenv("SLSBOT_VIEWER_TOKEN", "viewer-" + GOOD)
    name, token = AdminClientSettings().environment_token
    assert (name, token.get_secret_value()) == ("SLSBOT_VIEWER_TOKEN", "viewer-" + GOOD)
    monkeypatch.setenv("SLSBOT_ADMIN_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("SLSBOT_STATE_DIR", "/srv/slsbot")
    settings = AdminClientSettings()
    assert settings.admin_url == "http://127.0.0.1:9000"
    assert settings.admin_connection_path == Path("/srv/slsbot/admin-api.json")
    assert GOOD not in repr(settings)


def test_a_rotated_token_needs_the_end_of_its_grace_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN", GOOD)
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN_PREVIOUS", "old-" + GOOD[4:])
    with pytest.raises(ValidationError) as caught:
        ControlPlaneSettings()
    said = " ".join(error["msg"] for error in caught.value.errors(include_input=False))  # what slsbot up prints
    assert "SLSBOT_ADMIN_TOKEN_PREVIOUS is set without SLSBOT_TOKEN_GRACE_UNTIL" in said and GOOD[4:] not in said
    monkeypatch.setenv("SLSBOT_TOKEN_GRACE_UNTIL", "2026-12-06T12:00:00Z")
    settings = ControlPlaneSettings()
    arguments = settings.token_registry_arguments(settings.admin_token)
    assert arguments["admin_previous"].get_secret_value() == "old-" + GOOD[4:]
    assert arguments["previous_valid_until"].isoformat() == "2026-12-06T12:00:00+00:00"
    monkeypatch.setenv("SLSBOT_TOKEN_GRACE_UNTIL", "2026-12-06T12:00:00")  # no zone: ambiguous, refused
    with pytest.raises(ValidationError, match="token_grace_until"):
        ControlPlaneSettings()


def test_a_previous_token_may_not_be_a_current_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN", GOOD)
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN_PREVIOUS", GOOD)
    monkeypatch.setenv("SLSBOT_TOKEN_GRACE_UNTIL", "2026-12-06T12:00:00Z")
    with pytest.raises(ValidationError, match="SLSBOT_ADMIN_TOKEN_PREVIOUS must differ from SLSBOT_ADMIN_TOKEN"):
        ControlPlaneSettings()
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN_PREVIOUS", "changeme-please-1234")
    with pytest.raises(ValidationError, match="SLSBOT_ADMIN_TOKEN_PREVIOUS is a placeholder"):
        ControlPlaneSettings()


def test_vault_login_for_slsbot_up_is_a_token_file_or_an_approle_named_by_path_never_by_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert ControlPlaneSettings().vault_auth() is None
    monkeypatch.setenv("SLSBOT_VAULT_ADDR", "http://127.0.0.1:8200")
    monkeypatch.setenv("SLSBOT_VAULT_TOKEN_FILE", "vault-token")
    monkeypatch.chdir(tmp_path)
    settings = ControlPlaneSettings()
    auth = settings.vault_auth()
    assert settings.vault_addr == "http://127.0.0.1:8200"
    assert auth is not None and (auth.method, auth.token_file) == ("token", str(tmp_path / "vault-token"))

    monkeypatch.delenv("SLSBOT_VAULT_TOKEN_FILE")
    monkeypatch.setenv("SLSBOT_VAULT_ROLE_ID", "slsbot-local")
    monkeypatch.setenv("SLSBOT_VAULT_SECRET_ID_FILE", "/run/secret-id")
    auth = ControlPlaneSettings().vault_auth()
    assert auth is not None and (auth.method, auth.role_id, auth.secret_id_file) == (
        "approle",
        "slsbot-local",
        "/run/secret-id",
    )


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SLSBOT_VAULT_ROLE_ID": "r"}, "SLSBOT_VAULT_ROLE_ID and SLSBOT_VAULT_SECRET_ID_FILE go together"),
        (
            {"SLSBOT_VAULT_ROLE_ID": "r", "SLSBOT_VAULT_SECRET_ID_FILE": "/s", "SLSBOT_VAULT_TOKEN_FILE": "/t"},
            "set SLSBOT_VAULT_TOKEN_FILE or SLSBOT_VAULT_ROLE_ID",
        ),
        ({"SLSBOT_VAULT_ADDR": "vault:8200"}, "vault_addr"),
    ],
)
def test_vault_settings_that_do_not_fit_are_refused(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], message: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        ControlPlaneSettings()
