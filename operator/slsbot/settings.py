"""The control plane's settings: ONE tree, read once at start-up by the command that needs it and passed down.

Nothing here is read at import time. Every field can come from the environment with the ``SLSBOT_`` prefix
(``SLSBOT_ADMIN_TOKEN``, ``SLSBOT_VIEWER_TOKEN``, ``SLSBOT_STATE_DIR``, ``SLSBOT_ADMIN_PORT``...) or from the
command line, which wins. Tokens are ``SecretStr`` so they never show in a repr, a log line or an error message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_TOKEN_LENGTH = 16
PLACEHOLDER_TOKENS = frozenset(
    {"changeme", "change-me", "change_me", "changethis", "secret", "password", "token", "admin", "default", "test"}
)


def _default_runtime_command() -> list[str]:
    return [sys.executable, "-m", "slsbot.interfaces.cli", "runtime"]


def _default_bytecode_cache() -> Path:
    """The user's cache folder (``$XDG_CACHE_HOME``, else ``~/.cache``), shared by every state folder."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "slsbot" / "bytecode"


def _check_token(value: SecretStr | None, field: str) -> SecretStr | None:
    if value is None:
        return None
    token = value.get_secret_value()
    if token.strip().lower() in PLACEHOLDER_TOKENS or token.strip().lower().startswith("changeme"):
        raise ValueError(
            f"{field} is a placeholder; set it to a random value, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))', or unset it to get a generated one"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{field} is shorter than {MIN_TOKEN_LENGTH} characters; use a longer random value")
    return value


class ControlPlaneSettings(BaseSettings):
    """Settings of ``slsbot up``: the admin API, the state folder and the supervisor loop."""

    model_config = SettingsConfigDict(env_prefix="SLSBOT_", extra="ignore", validate_default=True)

    admin_host: str = Field(default="127.0.0.1", description="Address the admin API listens on.")
    admin_port: int = Field(default=8080, ge=0, le=65535, description="Admin API port; 0 picks a free one.")
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of the operator role; generated at start when unset."
    )
    viewer_token: SecretStr | None = Field(default=None, description="Optional read-only bearer token.")
    state_dir: Path = Field(default=Path("var/slsbot"), description="Supervisor database, runtime state and logs.")
    tick_interval: float = Field(default=0.5, gt=0, le=10, description="Seconds between two supervisor passes.")
    stop_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds a runtime gets to stop after SIGTERM before SIGKILL."
    )
    probe_timeout: float = Field(default=0.5, gt=0, le=10, description="Timeout of one HTTP call to a runtime.")
    backoff_base: float = Field(default=1.0, gt=0, le=3600, description="Crash-loop backoff base, in seconds.")
    backoff_cap: float = Field(default=300.0, gt=0, le=86_400, description="Crash-loop backoff cap, in seconds.")
    runtime_command: list[str] = Field(
        default_factory=_default_runtime_command,
        min_length=1,
        description="Command that starts one runtime; ``--config FILE`` is appended.",
    )
    runtime_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="How many niceness steps below the supervisor each runtime runs, so that the admin API and the "
        "supervisor's passes stay responsive while many runtimes start at once.",
    )
    bytecode_cache: Path = Field(
        default_factory=_default_bytecode_cache,
        description="Where runtimes cache compiled bytecode (their PYTHONPYCACHEPREFIX, unless one is set): "
        "shared by every state folder, so only the first runtime ever started compiles the modules.",
    )

    @field_validator("admin_token")
    @classmethod
    def _admin_token_not_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_token(value, "SLSBOT_ADMIN_TOKEN")

    @field_validator("viewer_token")
    @classmethod
    def _viewer_token_not_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_token(value, "SLSBOT_VIEWER_TOKEN")

    @model_validator(mode="after")
    def _distinct_tokens(self) -> ControlPlaneSettings:
        if (
            self.admin_token is not None
            and self.viewer_token is not None
            and self.admin_token.get_secret_value() == self.viewer_token.get_secret_value()
        ):
            raise ValueError("SLSBOT_VIEWER_TOKEN must differ from SLSBOT_ADMIN_TOKEN")
        if self.backoff_cap < self.backoff_base:
            raise ValueError("backoff_cap must not be below backoff_base")
        return self

    @property
    def database_path(self) -> Path:
        return self.state_dir / "supervisor.db"

    @property
    def control_key_path(self) -> Path:
        """The master key of the runtimes' control tokens: generated once (mode 0600), reused after restarts."""
        return self.state_dir / "control.key"

    @property
    def admin_url(self) -> str:
        return f"http://{self.admin_host}:{self.admin_port}"
