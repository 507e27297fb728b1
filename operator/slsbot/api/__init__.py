"""The slsbot API, group ``slsbot.io``, version ``v1alpha1``: the one source of truth for the CRDs,
the runtime configuration, the JSON schema and the reference docs. Pure models, no I/O."""

from slsbot.api.account import AccountMode, PaperSettings, TradingAccountSpec, TradingAccountStatus
from slsbot.api.backup import BackupScheduleSpec, BackupScheduleStatus
from slsbot.api.base import API_VERSION, GROUP, VERSION, Condition, ConditionStatus, ObjectRef, parse_duration
from slsbot.api.experiment import ExperimentSpec, ExperimentStatus, ExperimentType
from slsbot.api.resources import (
    KINDS,
    BackupSchedule,
    Experiment,
    Incident,
    KindInfo,
    ObjectMeta,
    Resource,
    RiskPolicy,
    Strategy,
    TradingAccount,
    parse_resource,
)
from slsbot.api.riskpolicy import BreakerAction, RiskLimits, RiskPolicySpec, RiskPolicyStatus
from slsbot.api.runtime_config import RuntimeAccount, RuntimeConfig
from slsbot.api.strategy import (
    TIMEFRAME_SECONDS,
    Ensemble,
    EnsembleMember,
    MarketData,
    StrategyPhase,
    StrategySpec,
    StrategyStatus,
    Timeframe,
    Voting,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "TIMEFRAME_SECONDS",
    "VERSION",
    "AccountMode",
    "BackupSchedule",
    "BackupScheduleSpec",
    "BackupScheduleStatus",
    "BreakerAction",
    "Condition",
    "ConditionStatus",
    "Ensemble",
    "EnsembleMember",
    "Experiment",
    "ExperimentSpec",
    "ExperimentStatus",
    "ExperimentType",
    "Incident",
    "KindInfo",
    "MarketData",
    "ObjectMeta",
    "ObjectRef",
    "PaperSettings",
    "Resource",
    "RiskLimits",
    "RiskPolicy",
    "RiskPolicySpec",
    "RiskPolicyStatus",
    "RuntimeAccount",
    "RuntimeConfig",
    "Strategy",
    "StrategyPhase",
    "StrategySpec",
    "StrategyStatus",
    "Timeframe",
    "TradingAccount",
    "TradingAccountSpec",
    "TradingAccountStatus",
    "Voting",
    "parse_duration",
    "parse_resource",
]
