"""RuntimeConfig: the contract between the control plane and a bot runtime.

The operator (into a ConfigMap) and the local supervisor (into a file) render one of these from a Strategy,
its TradingAccount and its effective RiskPolicy. The runtime reads nothing else: no Kubernetes API, no
control-plane database. Secrets are never in it; in live and testnet modes the runtime reads them from
the files or environment variables named by ``credentials``.
"""

from __future__ import annotations

from pydantic import Field

from slsbot.api.account import AccountMode, PaperSettings
from slsbot.api.base import API_VERSION, Name, SpecModel
from slsbot.api.riskpolicy import RiskPolicySpec
from slsbot.api.strategy import Ensemble, MarketData, MLSettings, Sizing, Symbol, Timeframe


class RuntimeAccount(SpecModel):
    name: Name
    exchange: str = Field(pattern=r"^[a-z][a-z0-9]*$")
    mode: AccountMode = AccountMode.PAPER
    paper: PaperSettings = Field(default_factory=PaperSettings)
    credentials_dir: str | None = Field(
        default=None,
        description="Folder with one file per credential key (a mounted Secret); never the values.",
    )


class StateSettings(SpecModel):
    path: str = Field(default="state.db", min_length=1, description="SQLite file with orders, fills and equity.")


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
    market_data: MarketData = Field(default_factory=MarketData)
    paused: bool = False
    state: StateSettings = Field(default_factory=StateSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
