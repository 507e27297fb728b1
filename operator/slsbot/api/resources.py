"""The six kinds as whole objects (apiVersion, kind, metadata, spec, status) and what their CRDs carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from slsbot.api.account import TradingAccountSpec, TradingAccountStatus
from slsbot.api.backup import BackupScheduleSpec, BackupScheduleStatus
from slsbot.api.base import API_VERSION, DNS_LABEL, GROUP, VERSION, ObjectStatus, SpecModel
from slsbot.api.experiment import ExperimentSpec, ExperimentStatus
from slsbot.api.incident import IncidentSpec, IncidentStatus
from slsbot.api.riskpolicy import RiskPolicySpec, RiskPolicyStatus
from slsbot.api.strategy import StrategySpec, StrategyStatus

SpecT = TypeVar("SpecT", bound=SpecModel)
StatusT = TypeVar("StatusT", bound=ObjectStatus)


class ObjectMeta(BaseModel):
    """The part of Kubernetes metadata slsbot reads; everything else is kept as it is."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    namespace: str = Field(default="default", min_length=1, max_length=63, pattern=DNS_LABEL)
    generation: int = Field(default=1, ge=0)
    creation_timestamp: datetime | None = Field(
        default=None, alias="creationTimestamp", description="Set by the API server (or the local store)."
    )
    uid: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Resource(SpecModel, Generic[SpecT, StatusT]):
    kind_info: ClassVar[KindInfo]

    api_version: str = Field(default=API_VERSION, pattern=rf"^{GROUP}/{VERSION}$")
    kind: str
    metadata: ObjectMeta
    spec: SpecT
    status: StatusT | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec_model: type[SpecModel]
    status_model: type[ObjectStatus]
    description: str
    columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)

    @property
    def singular(self) -> str:
        return self.kind.lower()


_READY = PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status')
_PHASE = PrinterColumn("Phase", ".status.phase")
_REASON = PrinterColumn(
    "Reason", '.status.conditions[?(@.type=="Ready")].reason', description="Why Ready is what it is."
)
_MESSAGE = PrinterColumn(
    "Message", '.status.conditions[?(@.type=="Ready")].message', priority=1, description="Ready's message."
)
_AGE = PrinterColumn("Age", ".metadata.creationTimestamp", type="date")


class TradingAccount(Resource[TradingAccountSpec, TradingAccountStatus]):
    kind: str = Field(default="TradingAccount", pattern="^TradingAccount$")
    status: TradingAccountStatus | None = None


class Strategy(Resource[StrategySpec, StrategyStatus]):
    kind: str = Field(default="Strategy", pattern="^Strategy$")
    status: StrategyStatus | None = None


class Experiment(Resource[ExperimentSpec, ExperimentStatus]):
    kind: str = Field(default="Experiment", pattern="^Experiment$")
    status: ExperimentStatus | None = None


class RiskPolicy(Resource[RiskPolicySpec, RiskPolicyStatus]):
    kind: str = Field(default="RiskPolicy", pattern="^RiskPolicy$")
    status: RiskPolicyStatus | None = None


TradingAccount.kind_info = KindInfo(
    kind="TradingAccount",
    plural="tradingaccounts",
    short_names=("ta", "account"),
    spec_model=TradingAccountSpec,
    status_model=TradingAccountStatus,
    description="An exchange account, its trading mode and a reference to its credentials.",
    columns=(
        PrinterColumn("Exchange", ".spec.exchange"),
        PrinterColumn("Mode", ".spec.mode"),
        PrinterColumn(
            "Allocated%",
            ".status.allocatedPercent",
            type="number",
            description="Sum of its Strategies' allocationPercent.",
        ),
        _PHASE,
        _READY,
        _REASON,
        _AGE,
        _MESSAGE,
    ),
)
Strategy.kind_info = KindInfo(
    kind="Strategy",
    plural="strategies",
    short_names=("strat", "bot"),
    spec_model=StrategySpec,
    status_model=StrategyStatus,
    description="A trading bot: its markets, its ensemble of strategy components, and its runtime.",
    columns=(
        PrinterColumn("Account", ".spec.accountRef.name"),
        _PHASE,
        _READY,
        _REASON,
        PrinterColumn("Return%", ".status.returnPercent", type="number", description="Return net of fees, in %."),
        PrinterColumn("PnL", ".status.realizedPnl", type="number", description="Realised profit, net of fees."),
        PrinterColumn("Trades", ".status.closedTrades", type="integer", description="Closed round trips."),
        PrinterColumn("Restarts", ".status.restarts", type="integer"),
        _AGE,
        PrinterColumn("Timeframe", ".spec.timeframe", priority=1),
        PrinterColumn("Equity", ".status.equity", type="number", priority=1),
        PrinterColumn("Unrealized", ".status.unrealizedPnl", type="number", priority=1),
        PrinterColumn("Idle", ".status.idleReason", priority=1, description="Why no new trades are taken now."),
        _MESSAGE,
    ),
)
Experiment.kind_info = KindInfo(
    kind="Experiment",
    plural="experiments",
    short_names=("exp",),
    spec_model=ExperimentSpec,
    status_model=ExperimentStatus,
    description="A parameter-tuning run or an A/B rollout of a Strategy.",
    columns=(
        PrinterColumn("Type", ".spec.type"),
        PrinterColumn("Strategy", ".spec.strategyRef.name"),
        _PHASE,
        _READY,
        _REASON,
        _AGE,
        _MESSAGE,
    ),
)
RiskPolicy.kind_info = KindInfo(
    kind="RiskPolicy",
    plural="riskpolicies",
    short_names=("rp", "risk"),
    spec_model=RiskPolicySpec,
    status_model=RiskPolicyStatus,
    description="Position, loss and drawdown limits, circuit breakers and a kill switch.",
    columns=(
        PrinterColumn("MaxDrawdown", ".spec.maxDrawdownPercent", type="number"),
        PrinterColumn("KillSwitch", ".spec.killSwitch", type="boolean"),
        _PHASE,
        _READY,
        _REASON,
        _AGE,
        _MESSAGE,
    ),
)


class Incident(Resource[IncidentSpec, IncidentStatus]):
    """Written only by the operator (docs/concepts/incidents.md); people acknowledge and resolve through the admin
    API or by patching ``status`` where RBAC lets them."""

    kind: str = Field(default="Incident", pattern="^Incident$")
    status: IncidentStatus | None = None


Incident.kind_info = KindInfo(
    kind="Incident",
    plural="incidents",
    short_names=("inc",),
    spec_model=IncidentSpec,
    status_model=IncidentStatus,
    description="Something a person must know about: a severity, the objects involved, a timeline and a runbook. "
    "Opened and updated by the operator only.",
    columns=(
        PrinterColumn("Severity", ".spec.severity", type="integer"),
        PrinterColumn("Rule", ".spec.rule"),
        PrinterColumn("State", ".status.state"),
        PrinterColumn("Count", ".status.count", type="integer"),
        _AGE,
        PrinterColumn("Objects", ".spec.objects", priority=1),
        PrinterColumn("Runbook", ".spec.runbook", priority=1),
        PrinterColumn("Message", ".spec.message", priority=1),
    ),
)


class BackupSchedule(Resource[BackupScheduleSpec, BackupScheduleStatus]):
    kind: str = Field(default="BackupSchedule", pattern="^BackupSchedule$")
    status: BackupScheduleStatus | None = None


BackupSchedule.kind_info = KindInfo(
    kind="BackupSchedule",
    plural="backupschedules",
    short_names=("bs", "backup"),
    spec_model=BackupScheduleSpec,
    status_model=BackupScheduleStatus,
    description="restic backups of a namespace's runtime state, with checks, retention and restore drills.",
    columns=(
        PrinterColumn("Repository", ".spec.repository", priority=1),
        PrinterColumn("LastBackup", ".status.lastBackup.startedAt", type="date"),
        PrinterColumn("Backup", ".status.lastBackup.outcome"),
        PrinterColumn("Drill", ".status.lastDrill.outcome"),
        _READY,
        _AGE,
        _MESSAGE,
    ),
)

KINDS: dict[str, type[Resource[Any, Any]]] = {
    cls.kind_info.kind: cls for cls in (TradingAccount, Strategy, Experiment, RiskPolicy, Incident, BackupSchedule)
}


#: Kinds only the control plane writes: a manifest (the folder of YAML, ``kubectl apply``) never declares them.
CONTROL_PLANE_KINDS = frozenset({"Incident"})


def parse_resource(document: dict[str, Any]) -> Resource[Any, Any]:
    """Turn one YAML document (a manifest a person wrote) into its kind's model; raises pydantic.ValidationError
    naming the field, or ValueError for a kind that is not one a manifest declares."""
    kind = document.get("kind")
    declarable = sorted(k for k in KINDS if k not in CONTROL_PLANE_KINDS)
    if kind in CONTROL_PLANE_KINDS:
        raise ValueError(f"kind: {kind} objects are written by the control plane only; remove this document")
    if kind not in KINDS:
        raise ValueError(f"kind: {kind!r} is not a slsbot kind; use one of {', '.join(declarable)}")
    return KINDS[kind].model_validate(document)
