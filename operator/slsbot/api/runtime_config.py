"""RuntimeConfig: the contract between the control plane and a bot runtime.

The operator (into a ConfigMap) and the local supervisor (into a file) render one of these from a Strategy,
its TradingAccount and its effective RiskPolicy. The runtime reads nothing else: no Kubernetes API, no
control-plane database. Secrets are never in it; in live and testnet modes the runtime reads them from
the files or environment variables named by ``credentialsDir``, or from Vault as ``vault`` says (address, how to log
in with files it names, the KV v2 path and the rotation settings).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from slsbot.api.account import AccountMode, PaperSettings, VaultCredentials
from slsbot.api.base import API_VERSION, Duration, Name, SpecModel, parse_duration
from slsbot.api.riskpolicy import RiskPolicySpec
from slsbot.api.strategy import Ensemble, MarketData, MLSettings, Sizing, Symbol, Timeframe, check_model_members


class RuntimeAccount(SpecModel):
    name: Name
    exchange: str = Field(pattern=r"^[a-z][a-z0-9]*$")
    mode: AccountMode = AccountMode.PAPER
    paper: PaperSettings = Field(default_factory=PaperSettings)
    credentials_dir: str | None = Field(
        default=None,
        description="Folder with one file per credential key (a mounted Secret); never the values.",
    )
    vault: VaultCredentials | None = Field(
        default=None,
        description="The keys are in Vault: the runtime logs in and reads them itself, and rotates to a new version "
        "while trading. Needs address and auth (the control plane fills them in).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> RuntimeAccount:
        if self.vault is not None and self.credentials_dir is not None:
            raise ValueError("account: set credentialsDir or vault, not both")
        return self


class EquityRetention(SpecModel):
    """How much of the equity curve (one row per candle) the state file keeps, so that a bot left on does not grow
    it without bound: every row of the newest ``fullResolution`` of candle time; of older rows, the last of each
    ``downsampleInterval``; and when those would pass ``maxDownsampledRows``, the interval doubles (2h, 4h, ...)
    for every older row. The state file then holds at most the window plus ``maxDownsampledRows`` rows, however
    long the bot runs. ``keepAll`` keeps every row (backtests do: their results are read from every row)."""

    keep_all: bool = Field(default=False, description="Keep every equity row (no downsampling).")
    full_resolution: Duration = Field(
        default="7d", description="Candle time, back from the newest row, in which every equity row is kept."
    )
    downsample_interval: Duration = Field(
        default="1h", description="Older rows: the last row of each such interval (UTC-aligned) is kept."
    )
    max_downsampled_rows: int = Field(
        default=10_000,
        ge=100,
        le=10_000_000,
        description="Older rows kept at most; the interval doubles whenever they would be more.",
    )

    @model_validator(mode="after")
    def _positive_interval(self) -> EquityRetention:
        if parse_duration(self.downsample_interval).total_seconds() < 1:
            raise ValueError(f"downsampleInterval: {self.downsample_interval!r} is shorter than a second; use e.g. 1h")
        return self

    @property
    def full_resolution_ms(self) -> int:
        return int(parse_duration(self.full_resolution).total_seconds() * 1000)

    @property
    def downsample_interval_ms(self) -> int:
        return int(parse_duration(self.downsample_interval).total_seconds() * 1000)


class StateSettings(SpecModel):
    path: str = Field(default="state.db", min_length=1, description="SQLite file with orders, fills and equity.")
    equity_retention: EquityRetention = Field(
        default_factory=EquityRetention, description="How much of the equity curve the state file keeps."
    )


class ServerSettings(SpecModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535, description="0 picks a free port (written to the state).")


class RuntimeConfig(SpecModel):
    api_version: str = Field(default=API_VERSION, pattern=r"^slsbot\.io/v1alpha1$")
    kind: str = Field(default="RuntimeConfig", pattern=r"^RuntimeConfig$")
    name: Name = Field(description="The Strategy's name.")
    namespace: Name = "default"
    account: RuntimeAccount
    symbols: list[Symbol] = Field(min_length=1, max_length=64)
    timeframe: Timeframe = Timeframe.H1
    long_only: bool = True
    ensemble: Ensemble
    ml: MLSettings = Field(default_factory=MLSettings)
    risk: RiskPolicySpec = Field(default_factory=RiskPolicySpec, description="The effective policy.")
    sizing: Sizing = Field(default_factory=Sizing)
    allocation_percent: float = Field(
        default=100.0,
        ge=0,
        le=100,
        description="share of the account's capital this Strategy trades with (the Strategy's allocationPercent); "
        "a controller's override, persisted in the state file, takes its place until cleared.",
    )
    market_data: MarketData = Field(default_factory=MarketData)
    paused: bool = False
    state: StateSettings = Field(default_factory=StateSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @model_validator(mode="after")
    def _model_members(self) -> RuntimeConfig:
        check_model_members(self.ensemble, self.ml)
        return self
