"""What a RiskPolicy says about healing, incidents and notifications, and what a Strategy reports about its healing.

The thresholds are the defaults of the product's roadmap; each can be set per RiskPolicy. The decisions that use
them live in the control plane's domain (``slsbot.domain.healing``, ``slsbot.domain.incident_rules``); see
docs/concepts/healing.md and docs/concepts/incidents.md.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from slsbot.api.base import DNS_LABEL, Duration, Name, SpecModel


class FailureClass(StrEnum):
    """What is wrong with a runtime; each class has its own escalation ladder."""

    CRASHED = "Crashed"  # the runtime exits (or stops answering) again and again
    STALE_DATA = "StaleData"  # no new candle for longer than the policy allows
    EXCHANGE_UNREACHABLE = "ExchangeUnreachable"  # the exchange does not answer, or keeps refusing the connection
    STATE_MISMATCH = "StateMismatch"  # the runtime's orders or positions disagree with the exchange's
    EXECUTION_ERRORS = "ExecutionErrors"  # orders rejected or failing again and again
    MODEL_DEGRADED = "ModelDegraded"  # models drifted, or their accuracy fell
    RESOURCE_EXHAUSTION = "ResourceExhaustion"  # memory above its limit


class HealingRung(StrEnum):
    """The ladder, in order: each rung is tried when the one before did not heal the runtime."""

    RESTART = "Restart"  # restart the runtime, with backoff
    SAFE_MODE = "SafeMode"  # no new entries; orders reduce-only
    HALT = "Halt"  # cancel orders, flatten where the policy says, trade no more
    INCIDENT = "Incident"  # halted and handed to a person: an incident is open


class TradingMode(StrEnum):
    """What the control plane lets a runtime do (pushed to the runtime's ``POST /trading-mode``)."""

    NORMAL = "normal"
    SAFE = "safe"  # no new entries, orders reduce-only
    HALTED = "halted"  # orders cancelled, positions flattened when asked, no orders at all


class HealingPolicy(SpecModel):
    """When a runtime counts as unhealthy, and how far up its ladder the control plane climbs before a person is
    called."""

    stale_after_candles: float = Field(
        default=2.0,
        gt=0,
        le=1000,
        description="Data is stale once no new candle has arrived for this many candle intervals.",
    )
    stale_after_min: Duration = Field(
        default="10s",
        description="Never stale sooner than this, however short the interval: a paced replay's candles come a "
        "fraction of a second apart, and a pause of a few seconds (a model training, a busy machine) is not a dead "
        "feed.",
    )
    exchange_down_after: Duration = Field(
        default="30s", description="The exchange counts as unreachable once every call has failed for this long."
    )
    reject_limit: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Consecutive rejected or failed orders that stop new entries (safe mode) at once.",
    )
    restarts_per_rung: int = Field(
        default=3, ge=1, le=100, description="Restarts tried for one failure class before the next rung."
    )
    rung_timeout: Duration = Field(
        default="2m", description="How long a rung (safe mode, halt) may go without healing before the next rung."
    )
    recover_after: Duration = Field(
        default="2m", description="Healthy for this long after a fault: back to normal trading, automatically."
    )
    flatten_on_halt: bool = Field(
        default=False, description="Close positions when the ladder halts a runtime (orders are always cancelled)."
    )
    memory_limit_mb: int | None = Field(
        default=None,
        ge=16,
        le=1_048_576,
        description="Resident memory that counts as exhaustion; unset: 90 % of the container's limit, if any.",
    )


class IncidentRules(SpecModel):
    """Severity rules. Severity 1 (critical): cancel orders, close positions where ``flattenOnCritical`` allows,
    halt, page. Severity 2 (high): cut size and pause the worst contributor, alert. Severity 3 (medium): log, monitor
    and include in the daily summary."""

    liquidation_margin_percent: float = Field(
        default=50.0, gt=0, le=100, description="Severity 1: margin used above this where leverage is used."
    )
    execution_failures: int = Field(
        default=5, ge=1, le=1000, description="Severity 1: orders failing this many times in a row."
    )
    connection_lost_after: Duration = Field(
        default="5m", description="Severity 1: the exchange connection lost for longer than this."
    )
    flatten_on_critical: bool = Field(
        default=True, description="Severity 1 closes positions as well as cancelling orders and halting."
    )
    drawdown_percent: float = Field(default=10.0, gt=0, le=100, description="Severity 2: drawdown beyond this.")
    correlation_threshold: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Severity 2: correlation of daily returns between two bots of one account above this.",
    )
    model_accuracy_drop: float = Field(
        default=0.1, gt=0, le=1, description="Severity 2: a model's accuracy fell by this much (absolute)."
    )
    size_multiplier: float = Field(
        default=0.5, gt=0, le=1, description="Severity 2: every new position of the account is cut to this share."
    )
    slippage_bps: float = Field(
        default=25.0, gt=0, le=10_000, description="Severity 3: mean slippage against the expected fill above this."
    )
    low_confidence: float = Field(
        default=0.5,
        ge=0,
        lt=1,
        description="Severity 3: the mean confidence of the last 20 signals below this share of the strategy's "
        "usual (the mean of up to 500 signals before them, once 50 are in); 0 turns the rule off.",
    )


class ReceiverType(StrEnum):
    ALERTMANAGER = "alertmanager"  # Alertmanager's POST /api/v2/alerts
    SLACK = "slack"  # a Slack incoming webhook
    WEBHOOK = "webhook"  # a generic JSON webhook


class SecretKeyRef(SpecModel):
    """One key of a Secret in the policy's namespace (locally: a file under the secrets folder, see
    docs/concepts/incidents.md)."""

    name: Name = Field(description="The Secret's name.")
    key: str = Field(
        min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="The key in the Secret's data."
    )


class NotificationReceiver(SpecModel):
    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL, description="Names the receiver in status.")
    type: ReceiverType
    url_secret_ref: SecretKeyRef = Field(
        description="The webhook URL, from a Secret: URLs carry tokens, so they are never written inline."
    )
    min_severity: int = Field(
        default=2, ge=1, le=3, description="Send incidents of this severity and more severe (1 is most severe)."
    )


class Notifications(SpecModel):
    """Alertmanager-style grouping: the first incident of a group waits ``groupWait`` for others, a group sends at
    most once per ``groupInterval``, and all receivers together at most ``maxPerHour`` messages."""

    receivers: list[NotificationReceiver] = Field(default_factory=list, max_length=16)
    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = Field(default="4h", description="Remind about a group still open this often.")
    max_per_hour: int = Field(default=20, ge=1, le=10_000)


class HealingStatus(SpecModel):
    """Where a Strategy stands on its healing ladder; absent while it is healthy."""

    failure_class: FailureClass | None = Field(default=None, description="What is wrong; unset once recovered.")
    rung: HealingRung | None = None
    trading_mode: TradingMode = TradingMode.NORMAL
    attempts: int = Field(default=0, ge=0, description="Restarts tried on the current rung.")
    fault_at: datetime | None = Field(default=None, description="When the fault began, as the runtime reports it.")
    detected_at: datetime | None = Field(default=None, description="When the control plane saw it.")
    rung_since: datetime | None = None
    healthy_since: datetime | None = Field(default=None, description="Healthy again since; normal after recoverAfter.")
    incident_id: str | None = Field(default=None, max_length=64)
    message: str = Field(default="", max_length=4096)
    cause: str | None = Field(
        default=None,
        max_length=64,
        description="The failure class, or the incident rule (e.g. Drawdown) that put the runtime on the ladder.",
    )
    flatten: bool = Field(default=False, description="Whether the halt closes positions as well.")
    restarts_at_fault: int = Field(default=0, ge=0, description="The runtime's restart count when the fault began.")
    last_action_at: datetime | None = Field(
        default=None, description="When the ladder last restarted the runtime for this fault."
    )
