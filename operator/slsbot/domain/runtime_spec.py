"""Render what a runtime should run: the RuntimeConfig for a resolved Strategy, and its content hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from slsbot.api import RiskPolicySpec, RuntimeAccount, RuntimeConfig
from slsbot.api.account import Credentials, VaultAuth, VaultCredentials
from slsbot.api.health import IncidentRules, Notifications
from slsbot.api.runtime_config import ServerSettings, StateSettings
from slsbot.api.strategy import OnDelete, RuntimeSettings
from slsbot.domain.resolve import ResolvedStrategy


@dataclass(frozen=True, slots=True)
class DesiredRuntime:
    """What should run for one Strategy. ``config_hash`` ignores ``paused``: pausing is not a rollout."""

    namespace: str
    name: str
    generation: int
    config: RuntimeConfig
    config_hash: str
    paused: bool
    runtime: RuntimeSettings
    on_delete: OnDelete


def config_hash(config: RuntimeConfig) -> str:
    """A short stable hash of everything that needs a restart to take effect."""
    payload = config.model_dump(mode="json", by_alias=True, exclude={"paused"})
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return digest[:16]


def build_runtime_config(
    resolved: ResolvedStrategy,
    *,
    state_path: str,
    port: int,
    host: str = "0.0.0.0",
    credentials_dir: str | None = None,
    default_data_dir: str | None = None,
    vault: VaultCredentials | None = None,
) -> RuntimeConfig:
    strategy, account = resolved.strategy, resolved.account
    market_data = strategy.spec.market_data
    if market_data.data_dir is None and default_data_dir is not None:
        market_data = market_data.model_copy(update={"data_dir": default_data_dir})
    return RuntimeConfig(
        name=strategy.name,
        namespace=strategy.namespace,
        account=RuntimeAccount(
            name=account.name,
            exchange=account.spec.exchange,
            mode=account.spec.mode,
            paper=account.spec.paper,
            credentials_dir=credentials_dir if account.spec.credentials is not None else None,
            vault=vault
            if account.spec.credentials is not None and account.spec.credentials.vault is not None
            else None,
        ),
        symbols=list(strategy.spec.symbols),
        timeframe=strategy.spec.timeframe,
        long_only=strategy.spec.long_only,
        ensemble=strategy.spec.ensemble,
        ml=strategy.spec.ml,
        risk=runtime_risk(resolved.policy),
        sizing=strategy.spec.sizing,
        allocation_percent=strategy.spec.allocation_percent,
        market_data=market_data,
        paused=strategy.spec.paused,
        state=StateSettings(path=state_path),
        server=ServerSettings(host=host, port=port),
    )


def runtime_vault(
    credentials: Credentials | None, *, address: str | None, default_auth: VaultAuth | None
) -> VaultCredentials | None:
    """The account's Vault settings as its runtime gets them: the spec's, with Vault's address and the way to log in
    taken from the control plane's settings where the spec leaves them out (the runtime refuses a config that still
    lacks one, naming the setting). None for an account whose keys are not in Vault."""
    if credentials is None or credentials.vault is None:
        return None
    vault = credentials.vault
    return vault.model_copy(update={"address": vault.address or address, "auth": vault.auth or default_auth})


def runtime_risk(policy: RiskPolicySpec) -> RiskPolicySpec:
    """The policy as a runtime gets it: without what only the control plane acts on (incident rules, who is
    notified), so that editing those changes no runtime's config and restarts no bot."""
    return policy.model_copy(update={"incidents": IncidentRules(), "notifications": Notifications()})


def desired_runtime(resolved: ResolvedStrategy, config: RuntimeConfig) -> DesiredRuntime:
    strategy = resolved.strategy
    return DesiredRuntime(
        namespace=strategy.namespace,
        name=strategy.name,
        generation=strategy.metadata.generation,
        config=config,
        config_hash=config_hash(config),
        paused=strategy.spec.paused,
        runtime=strategy.spec.runtime,
        on_delete=strategy.spec.on_delete,
    )
