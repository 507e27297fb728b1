"""TradingAccount: an exchange account, its mode, and where its credentials live (never the secrets)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from slsbot.api.base import Name, ObjectRef, ObjectStatus, SpecModel


class AccountMode(StrEnum):
    PAPER = "paper"
    TESTNET = "testnet"
    LIVE = "live"


class CredentialKeys(SpecModel):
    """Names of the keys that hold each credential, inside the Vault secret or Kubernetes Secret."""

    api_key: str = Field(default="apiKey", min_length=1, max_length=253)
    secret: str = Field(default="secret", min_length=1, max_length=253)
    password: str | None = Field(default=None, max_length=253, description="Only for exchanges with a passphrase.")


class VaultCredentials(SpecModel):
    mount: str = Field(default="secret", pattern=r"^[A-Za-z0-9_\-/]+$", description="KV v2 mount point.")
    path: str = Field(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9_\-/]+$", description="Secret path.")
    keys: CredentialKeys = Field(default_factory=CredentialKeys)


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
