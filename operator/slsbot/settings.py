"""The control plane's settings: ONE tree, read once at start-up by the command that needs it and passed down.

Nothing here is read at import time. Every field can come from the environment with the ``SLSBOT_`` prefix
(``SLSBOT_ADMIN_TOKEN``, ``SLSBOT_OPERATOR_TOKEN``, ``SLSBOT_VIEWER_TOKEN``, ``SLSBOT_STATE_DIR``,
``SLSBOT_ADMIN_PORT``, ``SLSBOT_VAULT_ADDR``...) or from the command line, which wins. ``ControlPlaneSettings``
is what ``slsbot up`` reads; ``AdminClientSettings`` what the commands that call its admin API (``slsbot get``)
read. Tokens are ``SecretStr`` so they never show in a repr, a log line or an error message.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

from croniter import croniter
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from slsbot.api.account import VaultAuth, VaultAuthMethod

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


class AdminApiSettings(BaseModel):
    """How the admin API protects itself (docs/concepts/admin-api-security.md). From the environment with the prefix
    ``SLSBOT_ADMIN_API__``, e.g. ``SLSBOT_ADMIN_API__RATE_LIMIT_PER_SECOND=20`` or
    ``SLSBOT_ADMIN_API__CORS_ORIGINS='["https://ops.example.com"]'``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit_per_second: float = Field(
        default=50.0,
        ge=0,
        le=100_000,
        description="Requests a second one client address may send on average; 0 turns rate limiting off.",
    )
    rate_limit_burst: int = Field(
        default=100, ge=1, le=100_000, description="Requests one client address may send at once above that rate."
    )
    lockout_after_failures: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="Failed authentications (401) from one address, each within lockout_window_seconds of the one "
        "before, after which the address is refused for a while; 0 turns the lockout off.",
    )
    lockout_window_seconds: float = Field(
        default=60.0, gt=0, le=86_400, description="Seconds without a failure after which the count starts again."
    )
    lockout_base_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="The first lockout's length; each further failure doubles it."
    )
    lockout_max_seconds: float = Field(
        default=300.0, gt=0, le=86_400, description="The longest lockout, however many failures."
    )
    tracked_clients: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Client addresses the rate limit and the lockout remember at most (least recently seen dropped).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Addresses of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (the "
        "client's address for the rate limit and the lockout, TLS for HSTS); empty (the default): none, the "
        "address is the TCP peer's.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=1_073_741_824,
        description="Largest request body accepted; a larger one is refused 413 before it is read whole.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Origins a browser page may call the API from (CORS), e.g. https://ops.example.com; "
        "empty (the default): none, no Access-Control-Allow-Origin header at all.",
    )
    audit_retention_days: float | None = Field(
        default=None,
        gt=0,
        le=36_500,
        description="Audit records older than this many days are removed (the chain stays verifiable from the last "
        "one removed); unset: kept forever.",
    )

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            scheme, _, rest = origin.partition("://")
            if origin == "*" or scheme not in ("http", "https") or not rest or "/" in rest:
                raise ValueError(
                    f"cors_origins: {origin[:100]!r} is not an origin; give scheme://host[:port] with no path, "
                    "e.g. https://ops.example.com ('*' is not accepted: the API takes bearer tokens)"
                )
        return origins

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {proxy[:100]!r} is not an IP address or network; give e.g. 10.0.0.5 or "
                    "10.0.0.0/24 ('*' is not accepted: any client could then choose its address)"
                ) from None
        return proxies

    @model_validator(mode="after")
    def _lockout_cap(self) -> AdminApiSettings:
        if self.lockout_max_seconds < self.lockout_base_seconds:
            raise ValueError("lockout_max_seconds must not be below lockout_base_seconds")
        return self


class DailyReportSettings(BaseModel):
    """``slsbot up``'s daily account report (docs/how-to/daily-report.md). From the environment with the prefix
    ``SLSBOT_DAILY_REPORT__``, e.g. ``SLSBOT_DAILY_REPORT__CRON='30 6 * * *'`` or
    ``SLSBOT_DAILY_REPORT__ENABLED=false``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Whether slsbot up writes (and sends) the report every day.")
    cron: str = Field(
        default="5 0 * * *",
        max_length=128,
        description="When, as a five-field cron expression in UTC; each run covers the previous UTC day.",
    )
    slack: bool = Field(
        default=True, description="Post each account's report to the Slack receivers its namespace's RiskPolicies name."
    )
    pdf_dir: Path | None = Field(
        default=None, description="Where the PDFs are written, <pdf_dir>/<YYYY-MM-DD>.pdf; unset: <state_dir>/reports."
    )

    @field_validator("cron")
    @classmethod
    def _cron_is_valid(cls, cron: str) -> str:
        if len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise ValueError(
                f"cron: {cron[:128]!r} is not a five-field cron expression (minute hour day month weekday), "
                "e.g. '5 0 * * *' for 00:05 UTC"
            )
        return cron


class ControlPlaneSettings(BaseSettings):
    """Settings of ``slsbot up``: the admin API, the state folder and the supervisor loop."""

    model_config = SettingsConfigDict(
        env_prefix="SLSBOT_", extra="ignore", validate_default=True, env_nested_delimiter="__"
    )

    admin_host: str = Field(default="127.0.0.1", description="Address the admin API listens on.")
    admin_port: int = Field(default=8080, ge=0, le=65535, description="Admin API port; 0 picks a free one.")
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of the admin role; generated at start (and printed once) when unset."
    )
    operator_token: SecretStr | None = Field(
        default=None, description="Optional bearer token of the operator role: reads, pauses and resumes."
    )
    viewer_token: SecretStr | None = Field(default=None, description="Optional read-only bearer token.")
    admin_token_previous: SecretStr | None = Field(
        default=None,
        description="The admin token a rotation replaced: still accepted until token_grace_until, refused after.",
    )
    operator_token_previous: SecretStr | None = Field(
        default=None, description="The operator token a rotation replaced, accepted until token_grace_until."
    )
    viewer_token_previous: SecretStr | None = Field(
        default=None, description="The viewer token a rotation replaced, accepted until token_grace_until."
    )
    token_grace_until: AwareDatetime | None = Field(
        default=None,
        description="End of the rotation's grace period (ISO 8601 with a zone, e.g. 2026-12-06T12:00:00Z): the "
        "previous tokens are refused from then on. Required with any *_TOKEN_PREVIOUS.",
    )
    admin_api: AdminApiSettings = Field(
        default_factory=AdminApiSettings,
        description="Rate limit, lockout, CORS, request size and audit retention of the admin API.",
    )
    daily_report: DailyReportSettings = Field(
        default_factory=DailyReportSettings, description="When and where slsbot up writes the daily account report."
    )
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
    vault_addr: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="Vault's URL (SLSBOT_VAULT_ADDR) for TradingAccounts whose credentials.vault names none.",
    )
    vault_token_file: Path | None = Field(
        default=None,
        description="A file holding a Vault token (SLSBOT_VAULT_TOKEN_FILE); runtimes get its path, never the token.",
    )
    vault_role_id: str | None = Field(
        default=None, max_length=253, description="AppRole role id (SLSBOT_VAULT_ROLE_ID), with the secret id file."
    )
    vault_secret_id_file: Path | None = Field(
        default=None, description="A file holding the AppRole secret id (SLSBOT_VAULT_SECRET_ID_FILE)."
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

    @field_validator("admin_token_previous", "operator_token_previous", "viewer_token_previous")
    @classmethod
    def _previous_token_not_placeholder(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        return _check_token(value, f"SLSBOT_{str(info.field_name).upper()}")

    @model_validator(mode="after")
    def _distinct_tokens(self) -> ControlPlaneSettings:
        given = [
            (name, token.get_secret_value())
            for name, token in (
                ("SLSBOT_ADMIN_TOKEN", self.admin_token),
                ("SLSBOT_OPERATOR_TOKEN", self.operator_token),
                ("SLSBOT_VIEWER_TOKEN", self.viewer_token),
                ("SLSBOT_ADMIN_TOKEN_PREVIOUS", self.admin_token_previous),
                ("SLSBOT_OPERATOR_TOKEN_PREVIOUS", self.operator_token_previous),
                ("SLSBOT_VIEWER_TOKEN_PREVIOUS", self.viewer_token_previous),
            )
            if token is not None
        ]
        for index, (name, value) in enumerate(given):
            for other, other_value in given[:index]:
                if value == other_value:
                    raise ValueError(f"{name} must differ from {other}: each token grants one role, once")
        previous = [name for name, _ in given if name.endswith("_PREVIOUS")]
        if previous and self.token_grace_until is None:
            raise ValueError(
                f"{previous[0]} is set without SLSBOT_TOKEN_GRACE_UNTIL: set when the rotated token stops being "
                "accepted, e.g. SLSBOT_TOKEN_GRACE_UNTIL=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
            )
        if self.backoff_cap < self.backoff_base:
            raise ValueError("backoff_cap must not be below backoff_base")
        if (self.vault_role_id is None) != (self.vault_secret_id_file is None):
            raise ValueError("SLSBOT_VAULT_ROLE_ID and SLSBOT_VAULT_SECRET_ID_FILE go together: set both or neither")
        if self.vault_role_id is not None and self.vault_token_file is not None:
            raise ValueError("set SLSBOT_VAULT_TOKEN_FILE or SLSBOT_VAULT_ROLE_ID (AppRole), not both")
        return self

    def token_registry_arguments(self, admin_token: SecretStr) -> dict[str, Any]:
        """What ``TokenRegistry.from_tokens`` takes: the current tokens (``admin_token``: the set or generated one)
        and the ones a rotation retired, with the end of their grace period."""
        return {
            "admin": admin_token,
            "operator": self.operator_token,
            "viewer": self.viewer_token,
            "admin_previous": self.admin_token_previous,
            "operator_previous": self.operator_token_previous,
            "viewer_previous": self.viewer_token_previous,
            "previous_valid_until": self.token_grace_until,
        }

    def vault_auth(self) -> VaultAuth | None:
        """How runtimes log in to Vault when their account says nothing: a token file, or AppRole; None without
        either (a runtime whose account needs Vault then refuses to start and names these settings)."""
        if self.vault_token_file is not None:
            return VaultAuth(method=VaultAuthMethod.TOKEN, token_file=str(self.vault_token_file.resolve()))
        if self.vault_role_id is not None and self.vault_secret_id_file is not None:
            return VaultAuth(
                method=VaultAuthMethod.APPROLE,
                role_id=self.vault_role_id,
                secret_id_file=str(self.vault_secret_id_file.resolve()),
            )
        return None

    @property
    def database_path(self) -> Path:
        return supervisor_database_path(self.state_dir)

    @property
    def incident_secrets_dir(self) -> Path:
        return self.secrets_dir if self.secrets_dir is not None else self.state_dir / "secrets"

    @property
    def report_dir(self) -> Path:
        """Where the daily reports' PDFs are written."""
        return self.daily_report.pdf_dir if self.daily_report.pdf_dir is not None else self.state_dir / "reports"

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


def supervisor_database_path(state_dir: Path) -> Path:
    """The supervisor's database (objects, runtimes, events, the audit trail, incidents) in its state folder."""
    return state_dir / "supervisor.db"


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
