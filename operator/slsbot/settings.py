"""The control plane's settings: ONE tree, read once at start-up by the command that needs it and passed down.

Nothing here is read at import time. Every field can come from the environment with the ``SLSBOT_`` prefix
(``SLSBOT_ADMIN_TOKEN``, ``SLSBOT_OPERATOR_TOKEN``, ``SLSBOT_VIEWER_TOKEN``, ``SLSBOT_STATE_DIR``,
``SLSBOT_ADMIN_PORT``...) or from the command line, which wins. ``ControlPlaneSettings`` is what ``slsbot up``
reads; ``AdminClientSettings`` what the commands that call its admin API (``slsbot get``) read. Tokens are
``SecretStr`` so they never show in a repr, a log line or an error message.
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
        default=None, description="Bearer token of the admin role; generated at start (and printed once) when unset."
    )
    operator_token: SecretStr | None = Field(
        default=None, description="Optional bearer token of the operator role: reads, pauses and resumes."
    )
    viewer_token: SecretStr | None = Field(default=None, description="Optional read-only bearer token.")
    state_dir: Path = Field(default=Path("var/slsbot"), description="Supervisor database, runtime state and logs.")
    tick_interval: float = Field(default=0.5, gt=0, le=10, description="Seconds between two supervisor passes.")
    watch_interval: float = Field(
        default=1.0, gt=0, le=60, description="Seconds between two looks at the folder of YAML for changes."
    )
    stop_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds a runtime gets to stop after SIGTERM before SIGKILL."
    )
    probe_timeout: float = Field(default=0.5, gt=0, le=10, description="Timeout of one HTTP call to a runtime.")
    backoff_base: float = Field(default=1.0, gt=0, le=3600, description="Crash-loop backoff base, in seconds.")
    backoff_cap: float = Field(default=300.0, gt=0, le=86_400, description="Crash-loop backoff cap, in seconds.")
    liveness_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds a runtime that answered before may go without a healthy /healthz before it is killed "
        "and restarted (a Kubernetes liveness probe's job on a cluster).",
    )
    drain_wait: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Seconds a deleted Strategy waits for its runtime to answer and finish draining before it is "
        "removed anyway, with a DeletedWithoutDrain warning.",
    )
    startup_timeout: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Seconds a started runtime may take to answer /healthz at all before it is restarted.",
    )
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
    secrets_dir: Path | None = Field(
        default=None,
        description="Where the Secrets that notification receivers name are read from when the folder does not "
        "declare them (sops-encrypted), laid out like mounted Secrets: <secrets_dir>/<namespace>/<secret>/<key>. "
        "Unset: <state_dir>/secrets.",
    )
    sops_command: list[str] = Field(
        default_factory=lambda: ["sops"],
        min_length=1,
        description="How to run sops, which decrypts the sops-encrypted files of the folder (with the age key from "
        "SOPS_AGE_KEY_FILE or SOPS_AGE_KEY); ``--decrypt ...`` is appended.",
    )
    sops_timeout: float = Field(
        default=30.0, gt=0, le=600, description="Seconds sops may take to decrypt one file of the folder."
    )
    runbook_base_url: str = Field(
        default="",
        max_length=1024,
        description="Prefix of the runbook links in notifications (e.g. a repository's URL ending in /); "
        "unset: the runbook's path in the repository, runbooks/<file>.md.",
    )
    notify_interval: float = Field(
        default=1.0, gt=0, le=60, description="Seconds between two looks for incident notifications that are due."
    )
    notify_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Timeout of one delivery to a notification receiver, in seconds."
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

    @field_validator("operator_token")
    @classmethod
    def _operator_token_not_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_token(value, "SLSBOT_OPERATOR_TOKEN")

    @field_validator("viewer_token")
    @classmethod
    def _viewer_token_not_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_token(value, "SLSBOT_VIEWER_TOKEN")

    @model_validator(mode="after")
    def _distinct_tokens(self) -> ControlPlaneSettings:
        given = [
            (name, token.get_secret_value())
            for name, token in (
                ("SLSBOT_ADMIN_TOKEN", self.admin_token),
                ("SLSBOT_OPERATOR_TOKEN", self.operator_token),
                ("SLSBOT_VIEWER_TOKEN", self.viewer_token),
            )
            if token is not None
        ]
        for index, (name, value) in enumerate(given):
            for other, other_value in given[:index]:
                if value == other_value:
                    raise ValueError(f"{name} must differ from {other}: each token grants one role")
        if self.backoff_cap < self.backoff_base:
            raise ValueError("backoff_cap must not be below backoff_base")
        return self

    @property
    def database_path(self) -> Path:
        return self.state_dir / "supervisor.db"

    @property
    def incident_secrets_dir(self) -> Path:
        return self.secrets_dir if self.secrets_dir is not None else self.state_dir / "secrets"

    @property
    def tuning_dir(self) -> Path:
        """Tuning runs: each run's plan, study (an Optuna journal), worker logs, result and report."""
        return self.state_dir / "tuning"

    @property
    def control_key_path(self) -> Path:
        """The master key of the runtimes' control tokens: generated once (mode 0600), reused after restarts."""
        return self.state_dir / "control.key"

    @property
    def admin_url(self) -> str:
        return f"http://{self.admin_host}:{self.admin_port}"

    @property
    def admin_connection_path(self) -> Path:
        """Where ``slsbot up`` writes the admin API's URL (and its generated token) for ``slsbot get`` (mode 0600)."""
        return admin_connection_path(self.state_dir)


def admin_connection_path(state_dir: Path) -> Path:
    return state_dir / "admin-api.json"


class AdminClientSettings(BaseSettings):
    """Settings of the commands that call a running supervisor's admin API (``slsbot get``). The URL and the token
    come from the command line, else the environment, else the file ``slsbot up`` wrote in its state folder. A read
    needs only the viewer role, so the least powerful token in the environment is used."""

    model_config = SettingsConfigDict(env_prefix="SLSBOT_", extra="ignore")

    admin_url: str | None = Field(
        default=None, description="The admin API's URL (SLSBOT_ADMIN_URL); default: the one slsbot up wrote."
    )
    state_dir: Path = Field(default=Path("var/slsbot"), description="The state folder of the supervisor to ask.")
    token_file: Path | None = Field(default=None, description="A file holding the bearer token (SLSBOT_TOKEN_FILE).")
    viewer_token: SecretStr | None = None
    operator_token: SecretStr | None = None
    admin_token: SecretStr | None = None

    @property
    def admin_connection_path(self) -> Path:
        return admin_connection_path(self.state_dir)

    @property
    def environment_token(self) -> tuple[str, SecretStr] | None:
        """The least powerful token set in the environment, with the variable's name."""
        for name, token in (
            ("SLSBOT_VIEWER_TOKEN", self.viewer_token),
            ("SLSBOT_OPERATOR_TOKEN", self.operator_token),
            ("SLSBOT_ADMIN_TOKEN", self.admin_token),
        ):
            if token is not None and token.get_secret_value().strip():
                return name, token
        return None

    @property
    def acting_environment_token(self) -> tuple[str, SecretStr] | None:
        """The least powerful token set in the environment that may act (steer an experiment): the operator's, else
        the admin's."""
        for name, token in (("SLSBOT_OPERATOR_TOKEN", self.operator_token), ("SLSBOT_ADMIN_TOKEN", self.admin_token)):
            if token is not None and token.get_secret_value().strip():
                return name, token
        return None
