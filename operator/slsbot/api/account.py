"""TradingAccount: an exchange account, its mode, and where its credentials live (never the secrets)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from croniter import croniter
from pydantic import ConfigDict, Field, model_validator

from slsbot.api.base import Duration, Name, ObjectRef, ObjectStatus, SpecModel, parse_duration


class AccountMode(StrEnum):
    PAPER = "paper"
    TESTNET = "testnet"
    LIVE = "live"


class CredentialKeys(SpecModel):
    """Names of the keys that hold each credential, inside the Vault secret or Kubernetes Secret."""

    api_key: str = Field(default="apiKey", min_length=1, max_length=253)
    secret: str = Field(default="secret", min_length=1, max_length=253)
    password: str | None = Field(default=None, max_length=253, description="Only for exchanges with a passphrase.")


#: Where Kubernetes puts a pod's service-account token (the Kubernetes auth method's JWT).
SERVICE_ACCOUNT_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path
#: The ``trading_mode_reason`` a runtime reports while a key rotation holds its entries (``safe`` for a moment, never
#: written): the control plane's healing reads it as expected, not as a fault.
ROTATION_HOLD_REASON = "credential rotation"
_MOUNT_PATTERN = r"^[A-Za-z0-9_\-/]+$"
_FILE_PATTERN = r"^/[^\x00]*$"


class VaultAuthMethod(StrEnum):
    KUBERNETES = "kubernetes"
    APPROLE = "approle"
    TOKEN = "token"  # noqa: S105 - a method's name


class VaultAuth(SpecModel):
    """How the runtime logs in to Vault. Secrets are named by file path, never written here: the Kubernetes method
    reads the pod's service-account token, AppRole a file with the secret id, the token method a file with the
    token. In a cluster use ``kubernetes``; ``approle`` and ``token`` are for ``slsbot up``."""

    method: VaultAuthMethod = VaultAuthMethod.KUBERNETES
    role: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="kubernetes: the Vault role bound to the runtime's service account (default: the account's name).",
    )
    mount: str | None = Field(
        default=None,
        max_length=253,
        pattern=_MOUNT_PATTERN,
        description="Where the auth method is mounted in Vault (default: the method's name).",
    )
    token_path: str = Field(
        default=SERVICE_ACCOUNT_TOKEN_PATH,
        max_length=1024,
        pattern=_FILE_PATTERN,
        description="kubernetes: the file with the service-account token (JWT) presented at login.",
    )
    service_account_name: Name | None = Field(
        default=None,
        description="kubernetes: the service account the runtime pod runs as (the Vault role binds it); "
        "default: the namespace's default service account. The operator runs the pod only as a ServiceAccount of "
        "the account's namespace labelled slsbot.io/runtime-service-account=true (an administrator's statement "
        "that slsbot runtimes may run as it); until then the account and its Strategies wait. slsbot's own "
        "(slsbot-operator, slsbot-backup) are refused.",
    )
    role_id: str | None = Field(
        default=None, min_length=1, max_length=253, description="approle: the role id (not a secret on its own)."
    )
    secret_id_file: str | None = Field(
        default=None, max_length=1024, pattern=_FILE_PATTERN, description="approle: the file holding the secret id."
    )
    token_file: str | None = Field(
        default=None, max_length=1024, pattern=_FILE_PATTERN, description="token: the file holding a Vault token."
    )

    @model_validator(mode="after")
    def _fields_of_the_method(self) -> VaultAuth:
        method = VaultAuthMethod(self.method)
        needs = {
            VaultAuthMethod.APPROLE: ("role_id", "secret_id_file"),
            VaultAuthMethod.TOKEN: ("token_file",),
            VaultAuthMethod.KUBERNETES: (),
        }[method]
        for name in needs:
            if getattr(self, name) is None:
                raise ValueError(f"auth.{_camel(name)}: method {method} needs it")
        others = {"role_id", "secret_id_file", "token_file", "role", "service_account_name"} - set(needs)
        if method is VaultAuthMethod.KUBERNETES:
            others -= {"role", "service_account_name"}
        for name in sorted(others):
            if getattr(self, name) is not None:
                raise ValueError(f"auth.{_camel(name)}: not used by method {method}; remove it")
        return self

    @property
    def mount_point(self) -> str:
        return self.mount or str(self.method)


class VaultRotation(SpecModel):
    """How the runtime notices a new version of the secret and switches to it while trading: every ``checkEvery`` it
    reads the secret's metadata; a newer version stops new entries, waits (at most ``settleTimeout``) for the orders
    in flight, switches the key, checks it with a read-only call, reconciles and resumes. A failed check rolls back
    to the key in use."""

    check_every: Duration = Field(default="30s", description="How often the runtime reads the secret's metadata.")
    window: str | None = Field(
        default=None,
        max_length=100,
        description="A cron schedule (5 fields, UTC), e.g. '0 3 * * *': a new version found waits for the next "
        "opening instead of being applied at once.",
    )
    window_length: Duration = Field(default="15m", description="How long a window stays open after each opening.")
    settle_timeout: Duration = Field(
        default="60s", description="How long the switch waits for in-flight orders before it gives up and rolls back."
    )

    @model_validator(mode="after")
    def _bounds(self) -> VaultRotation:
        for name, low, high in (
            ("check_every", 1, 86_400),
            ("settle_timeout", 1, 3_600),
            ("window_length", 60, 86_400),
        ):
            seconds = parse_duration(getattr(self, name)).total_seconds()
            if not low <= seconds <= high:
                raise ValueError(
                    f"rotation.{_camel(name)}: {getattr(self, name)!r} is outside {low}s..{high}s; e.g. the default"
                )
        if self.window is not None:
            hint = "write five fields, e.g. '0 3 * * *' (03:00 UTC every day)"
            if len(self.window.split()) != 5:
                raise ValueError(f"rotation.window: {self.window!r} has {len(self.window.split())} fields; {hint}")
            try:
                croniter(self.window, datetime(2000, 1, 1, tzinfo=UTC))
            except (ValueError, KeyError) as exc:
                raise ValueError(f"rotation.window: {self.window!r} is not a cron schedule ({exc}); {hint}") from exc
        return self

    @property
    def check_every_s(self) -> float:
        return parse_duration(self.check_every).total_seconds()

    @property
    def settle_timeout_s(self) -> float:
        return parse_duration(self.settle_timeout).total_seconds()

    @property
    def window_length_s(self) -> float:
        return parse_duration(self.window_length).total_seconds()


class VaultCredentials(SpecModel):
    """The exchange keys in a Vault KV v2 secret. The runtime reads them itself (Vault's Kubernetes auth checks the
    runtime's own service account): they never pass through the control plane."""

    address: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^https?://[^\s]+$",
        description="Vault's URL, e.g. https://vault.vault.svc:8200; default: the operator's (or slsbot up's) "
        "SLSBOT_VAULT_ADDR.",
    )
    mount: str = Field(default="secret", pattern=_MOUNT_PATTERN, description="KV v2 mount point.")
    path: str = Field(min_length=1, max_length=512, pattern=_MOUNT_PATTERN, description="Secret path.")
    keys: CredentialKeys = Field(default_factory=CredentialKeys)
    auth: VaultAuth | None = Field(
        default=None,
        description="How the runtime logs in; default: kubernetes with the role named after the account in a "
        "cluster, the token or AppRole files of slsbot up's settings locally.",
    )
    rotation: VaultRotation = Field(default_factory=VaultRotation)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class SecretCredentials(SpecModel):
    name: Name = Field(
        description="A Kubernetes Secret in the account's namespace, labelled slsbot.io/credentials=true (the "
        "operator mounts no other); never one of the operator's own Secrets."
    )
    keys: CredentialKeys = Field(default_factory=CredentialKeys)


class Credentials(SpecModel):
    """Exactly one of ``vault`` or ``secretRef``. Secrets are never written inline."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.vault) != has(self.secretRef)",
                    "message": "set exactly one of credentials.vault or credentials.secretRef",
                }
            ]
        }
    )

    vault: VaultCredentials | None = None
    secret_ref: SecretCredentials | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Credentials:
        if (self.vault is None) == (self.secret_ref is None):
            raise ValueError("credentials: set exactly one of credentials.vault or credentials.secretRef")
        return self


class PaperSettings(SpecModel):
    """The simulated account used in paper mode."""

    starting_balance: float = Field(default=10_000.0, gt=0, le=1e12)
    quote_currency: str = Field(default="USDT", pattern=r"^[A-Z0-9]{2,10}$")
    fee_rate: float = Field(default=0.001, ge=0, le=0.05, description="Fee per side, as a fraction (0.001 = 0.1%).")
    spread_bps: float = Field(default=1.0, ge=0, le=1000, description="Full bid-ask spread in basis points.")
    slippage_bps: float = Field(default=2.0, ge=0, le=1000, description="Extra adverse price move per fill.")
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    max_volume_participation: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="At most this fraction of a candle's volume fills; the rest waits.",
    )
    short_initial_margin: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description=(
            "Collateral every short needs, as a fraction of its notional, out of the account's equity (with "
            "longOnly: false). 0.5 lets shorts reach twice the equity, as Binance's Cross Margin Classic (3x) "
            "and Reg T's 150% do; a sell beyond it is cut to what the collateral allows."
        ),
    )
    short_borrow_rate_per_day: float = Field(
        default=0.0002,
        ge=0,
        le=0.05,
        description=(
            "Interest on borrowed base, per day (0.0002 = 0.02%, the rate of Binance's margin interest example). "
            "Accrued as Binance does: one hour (rate / 24) when borrowed, then one at the start of every UTC hour; "
            "paid in the quote currency, with the buy that repays the short."
        ),
    )


class TradingAccountSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.mode == 'paper' || has(self.credentials)",
                    "message": "testnet and live modes need credentials.vault or credentials.secretRef",
                }
            ]
        }
    )

    exchange: str = Field(
        pattern=r"^[a-z][a-z0-9]*$", max_length=40, description="A ccxt exchange id, e.g. binance or bybit."
    )
    mode: AccountMode = AccountMode.PAPER
    credentials: Credentials | None = Field(default=None, description="Required for testnet and live modes.")
    paper: PaperSettings = Field(default_factory=PaperSettings)
    risk_policy_ref: ObjectRef | None = None

    @model_validator(mode="after")
    def _credentials_outside_paper(self) -> TradingAccountSpec:
        if self.mode != AccountMode.PAPER and self.credentials is None:
            raise ValueError(f"credentials: mode {self.mode} needs credentials.vault or credentials.secretRef")
        return self


class TradingAccountStatus(ObjectStatus):
    strategies: int = Field(default=0, ge=0)
    allocated_percent: float | None = Field(
        default=None,
        ge=0,
        description="Sum of the allocationPercent of its Strategies; above 100 the later-created ones are refused.",
    )
