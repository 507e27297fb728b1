"""Severity rules: which incident signals a Strategy's runtime health and its account's figures raise. Pure.

The thresholds are a RiskPolicy's ``incidents`` rules (``slsbot.api.health.IncidentRules``), the anomaly threshold
its ``anomaly.threshold``. The inputs are plain data the control plane already has: the runtime's ``/status`` (its
``health`` block, issue 9 contract section 1) and its ``drawdown_percent``, the Strategy's equity, and each bot's
daily returns (``daily_returns`` builds them from the equity points of the runtime's ``GET /performance``).

Severity 1 (critical): LiquidationRisk, ExecutionFailure, ConnectionLost, StateMismatch.
Severity 2 (high): Drawdown, Correlation (per account), ModelAccuracy.
Severity 3 (medium): Slippage, Anomaly, LowConfidence.
CredentialRotationFailed (severity 2, no automatic action: the runtime kept trading on the old key): the runtime's
last key rotation from Vault was rolled back (``health.credentials.last_rotation``); it clears once a rotation
succeeds.
Every signal names its runbook (``runbooks/<kebab-case-of-rule>.md``); ``runbook_for`` maps a rule or a failure
class to it, and a test checks that every file it can name exists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from slsbot.api.base import parse_duration
from slsbot.api.health import FailureClass, HealingStatus
from slsbot.api.riskpolicy import RiskPolicySpec
from slsbot.domain.timestamps import aware_time

SEVERITY_1_RULES = ("LiquidationRisk", "ExecutionFailure", "ConnectionLost", "StateMismatch")
SEVERITY_2_RULES = ("Drawdown", "Correlation", "ModelAccuracy")
SEVERITY_3_RULES = ("Slippage", "Anomaly", "LowConfidence")
RULES = SEVERITY_1_RULES + SEVERITY_2_RULES + SEVERITY_3_RULES
#: The runtime's own key rotation failed and it rolled back: a person must look at the new key, nothing to stop.
CREDENTIAL_ROTATION_RULE = "CredentialRotationFailed"
#: Ladder classes whose Incident rung is severity 1 (the others are 2), contract section 3.
CRITICAL_HEALING_CLASSES = frozenset(
    {FailureClass.STATE_MISMATCH, FailureClass.EXECUTION_ERRORS, FailureClass.EXCHANGE_UNREACHABLE}
)
#: Days both bots must have a return for before their correlation means anything.
MIN_CORRELATION_DAYS = 5


@dataclass(frozen=True, slots=True)
class IncidentSignal:
    cause: str  # dedup key, stable: f"{failure_class or rule}:{namespace}/{object}"
    severity: int  # 1, 2, 3
    rule: str  # CamelCase rule, or "Healing<FailureClass>" when the ladder reached its Incident rung
    namespace: str
    objects: tuple[str, ...]  # "Strategy/btc-trend", "TradingAccount/binance", ...
    message: str  # no secrets
    runbook: str  # "runbooks/<file>.md" that exists
    detected_at: datetime
    actions: tuple[str, ...] = ()  # what was done automatically, e.g. ("CancelOrders","Flatten","Halt")


@dataclass(frozen=True, slots=True)
class StrategyObservation:
    """What the control plane knows of one Strategy's runtime in a pass."""

    namespace: str
    name: str
    account: str | None = None  # the TradingAccount's name
    runtime_status: Mapping[str, Any] = field(default_factory=dict)  # the runtime's /status ({} when unreachable)
    equity: float | None = None
    drawdown_percent: float | None = None  # below its equity peak now
    daily_returns: Mapping[str, float] = field(default_factory=dict)  # "YYYY-MM-DD" (UTC) -> return, 0.01 = 1 %
    # When the healing ladder saw the exchange go (``status.healing.faultAt`` of an ExchangeUnreachable fault): the
    # outage goes on across the ladder's restarts, and a restarted runtime that cannot connect reports no health.
    exchange_lost_since: datetime | None = None

    @property
    def objects(self) -> tuple[str, ...]:
        own = (f"Strategy/{self.name}",)
        return own + ((f"TradingAccount/{self.account}",) if self.account else ())


def kebab(name: str) -> str:
    """``StateMismatch`` -> ``state-mismatch``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def runbook_for(rule: str) -> str:
    """The runbook of a rule (``Drawdown``), a failure class (``StaleData``) or a ladder signal (``HealingCrashed``:
    the class's runbook)."""
    if rule.startswith("Healing") and rule != "Healing":
        rule = rule.removeprefix("Healing")
    return f"runbooks/{kebab(rule)}.md"


def all_runbooks() -> set[str]:
    """Every runbook a signal can name."""
    return (
        {runbook_for(rule) for rule in RULES + BACKUP_RULES}
        | {runbook_for(f"Healing{c.value}") for c in FailureClass}
        | {runbook_for(CREDENTIAL_ROTATION_RULE)}
    )


# --- backups (services.backups): a failed backup, check or prune, and a failed restore drill ------------------------
#: Severity 2: the bots trade on, but their state could not be brought back if lost.
BACKUP_RULES = ("BackupFailed", "RestoreDrillFailed")


def backup_signal(namespace: str, schedule: str, job: str, message: str, now: datetime) -> IncidentSignal:
    """The signal of a BackupSchedule's failed job (``job``: backup, check, prune or drill): rule RestoreDrillFailed
    for a drill, else BackupFailed; cause ``<rule>:<namespace>/<schedule>:<job>``, so each kind opens its own
    incident and clears when that kind next succeeds. No automatic action: nothing to cut while bots trade."""
    rule = "RestoreDrillFailed" if job == "drill" else "BackupFailed"
    return IncidentSignal(
        cause=f"{rule}:{namespace}/{schedule}:{job}",
        severity=2,
        rule=rule,
        namespace=namespace,
        objects=(f"BackupSchedule/{schedule}",),
        message=message[:1024],
        runbook=runbook_for(rule),
        detected_at=now,
    )


def healing_signal(
    namespace: str,
    strategy: str,
    failure_class: FailureClass | str,
    message: str,
    now: datetime,
    *,
    account: str | None = None,
    actions: tuple[str, ...] = (),
) -> IncidentSignal:
    """The signal of a Strategy whose healing ladder reached its Incident rung (contract section 3): rule
    ``Healing<Class>``, severity 1 for StateMismatch, ExecutionErrors and ExchangeUnreachable, else 2; cause
    ``<Class>:<namespace>/<strategy>``; the class's runbook. ``actions``: what the ladder did (e.g. ``("Halt",)``)."""
    klass = FailureClass(failure_class)
    objects = (f"Strategy/{strategy}",) + ((f"TradingAccount/{account}",) if account else ())
    return IncidentSignal(
        cause=f"{klass.value}:{namespace}/{strategy}",
        severity=1 if klass in CRITICAL_HEALING_CLASSES else 2,
        rule=f"Healing{klass.value}",
        namespace=namespace,
        objects=objects,
        message=message[:1024],
        runbook=runbook_for(klass.value),
        detected_at=now,
        actions=actions,
    )


def severity_signals(
    strategies: Sequence[StrategyObservation],
    policies: Mapping[tuple[str, str], RiskPolicySpec],
    now: datetime,
) -> list[IncidentSignal]:
    """Every signal raised in one pass: each Strategy's own (its health), then each account's (drawdown and
    correlation across the bots of one account, under the policy of the account's first bot by name).
    ``policies`` maps (namespace, strategy name) to the RiskPolicy in force; a Strategy without one uses defaults."""
    default = RiskPolicySpec()
    signals: list[IncidentSignal] = []
    for item in strategies:
        signals.extend(strategy_signals(item, policies.get((item.namespace, item.name), default), now))
    accounts: dict[tuple[str, str], list[StrategyObservation]] = {}
    for item in strategies:
        if item.account:
            accounts.setdefault((item.namespace, item.account), []).append(item)
    for (namespace, account), members in sorted(accounts.items()):
        members.sort(key=lambda m: m.name)
        policy = policies.get((namespace, members[0].name), default)
        signals.extend(account_signals(namespace, account, members, policy, now))
    return signals


def strategy_signals(item: StrategyObservation, policy: RiskPolicySpec, now: datetime) -> list[IncidentSignal]:
    """The signals of one Strategy's own health. A runtime that reports no ``health`` block raises none, but for a
    connection lost since the ladder saw it go (``exchange_lost_since``): restarted, it cannot connect to say so."""
    health = item.runtime_status.get("health")
    if not isinstance(health, Mapping):
        lost = _connection_lost(item, {}, policy, now)
        return [] if lost is None else [_signal(lost[0], item.namespace, item.name, item.objects, lost[1], now, policy)]
    rules = policy.incidents
    found: list[tuple[str, str]] = []  # (rule, message)

    margin = _number(health.get("margin_used_percent"))
    if margin is not None and margin > rules.liquidation_margin_percent:
        found.append(("LiquidationRisk", f"margin used {margin:.1f} % is above {rules.liquidation_margin_percent:g} %"))
    orders = _mapping(health.get("orders"))
    failures = _number(orders.get("consecutive_failures"))
    if failures is not None and failures >= rules.execution_failures:
        found.append(("ExecutionFailure", f"{int(failures)} orders failed in a row (rule: {rules.execution_failures})"))
    lost = _connection_lost(item, _mapping(health.get("exchange")), policy, now)
    if lost is not None:
        found.append(lost)
    reconcile = _mapping(health.get("reconcile"))
    if reconcile.get("ok") is False:
        problem = str(reconcile.get("last_problem") or "orders or positions disagree with the exchange")[:300]
        found.append(("StateMismatch", f"state mismatch with the exchange: {problem}"))

    models = _mapping(health.get("models"))
    accuracy, baseline = _number(models.get("accuracy")), _number(models.get("baseline_accuracy"))
    if accuracy is not None and baseline is not None and baseline - accuracy >= rules.model_accuracy_drop:
        model = models.get("accuracy_model")
        found.append(
            (
                "ModelAccuracy",
                ("model accuracy" if not model else f"model {str(model)[:63]}: live accuracy")
                + f" fell from {baseline:.3f} (holdout at training) to {accuracy:.3f} "
                f"(rule: a drop of {rules.model_accuracy_drop:g})",
            )
        )
    if item.account is None and item.drawdown_percent is not None and item.drawdown_percent > rules.drawdown_percent:
        found.append(("Drawdown", f"drawdown {item.drawdown_percent:.1f} % is beyond {rules.drawdown_percent:g} %"))

    slippage = _number(_mapping(health.get("slippage")).get("mean_bps"))
    if slippage is not None and slippage > rules.slippage_bps:
        found.append(("Slippage", f"mean slippage {slippage:.1f} bps is above {rules.slippage_bps:g} bps"))
    anomaly = _number(health.get("anomaly_score"))
    if anomaly is not None and anomaly > policy.anomaly.threshold:
        found.append(("Anomaly", f"anomaly score {anomaly:.2f} is above {policy.anomaly.threshold:g}"))
    recent, usual = _number(health.get("confidence_recent_mean")), _number(health.get("confidence_usual_mean"))
    if recent is not None and usual is not None and usual > 0 and recent < rules.low_confidence * usual:
        found.append(
            (
                "LowConfidence",
                f"mean signal confidence {recent:.3f} over the last {health.get('confidence_recent_signals', 20)} "
                f"signals is below {rules.low_confidence:g} of "
                f"this strategy's usual {usual:.3f} ({health.get('confidence_usual_signals')} signals before them)",
            )
        )

    signals = [_signal(rule, item.namespace, item.name, item.objects, message, now, policy) for rule, message in found]
    rotation = credential_rotation_signal(item, health, now)
    return signals if rotation is None else [*signals, rotation]


def exchange_lost_since(healing: HealingStatus | None) -> datetime | None:
    """When the healing ladder saw the exchange go, while the Strategy is on its ExchangeUnreachable ladder."""
    if healing is None or healing.failure_class != FailureClass.EXCHANGE_UNREACHABLE:
        return None
    return healing.fault_at or healing.detected_at


def _connection_lost(
    item: StrategyObservation, exchange: Mapping[str, Any], policy: RiskPolicySpec, now: datetime
) -> tuple[str, str] | None:
    """ConnectionLost: the runtime's calls have failed for longer than ``connectionLostAfter``, counted from the
    earlier of its ``failing_since`` and when the ladder saw the exchange go, while no runtime says it is connected."""
    rules = policy.incidents
    connected = exchange.get("connected")
    if connected is True:
        return None
    starts = [item.exchange_lost_since]  # no health (a restarted runtime still connecting): the ladder's word
    if connected is False:
        starts.append(aware_time(exchange.get("failing_since"), naive_is_utc=True))
    known = [t for t in starts if t is not None]
    since = min(known) if known else None
    if since is None or now - since <= parse_duration(rules.connection_lost_after):
        return None
    return (
        "ConnectionLost",
        f"exchange connection lost for {_seconds(now - since)} (rule: {rules.connection_lost_after}); "
        f"last error: {str(exchange.get('last_error') or item.runtime_status.get('error') or 'none')[:200]}",
    )


def credential_rotation_signal(
    item: StrategyObservation, health: Mapping[str, Any], now: datetime
) -> IncidentSignal | None:
    """``CredentialRotationFailed`` while the runtime's last key rotation is a roll-back (severity 2, nothing done
    automatically: the old key still trades); None once one succeeds, or for keys not from Vault."""
    last = _mapping(_mapping(health.get("credentials")).get("last_rotation"))
    if last.get("outcome") != "rolled_back":
        return None
    message = (
        f"key rotation from version {last.get('from_version')} to {last.get('to_version')} rolled back at "
        f"{last.get('at')}: {str(last.get('reason') or 'no reason given')[:300]}; it trades on with the old key"
    )
    return IncidentSignal(
        cause=f"{CREDENTIAL_ROTATION_RULE}:{item.namespace}/{item.name}",
        severity=2,
        rule=CREDENTIAL_ROTATION_RULE,
        namespace=item.namespace,
        objects=item.objects,
        message=message,
        runbook=runbook_for(CREDENTIAL_ROTATION_RULE),
        detected_at=now,
    )


def account_signals(
    namespace: str,
    account: str,
    members: Sequence[StrategyObservation],
    policy: RiskPolicySpec,
    now: datetime,
) -> list[IncidentSignal]:
    """Drawdown and correlation across the bots of one account. Each names the worst contributor first among its
    objects (severity 2: that bot is paused, the account's size is cut)."""
    rules = policy.incidents
    signals: list[IncidentSignal] = []
    drawdown, worst = account_drawdown(members)
    if drawdown is not None and worst is not None and drawdown > rules.drawdown_percent:
        objects = (f"Strategy/{worst.name}", f"TradingAccount/{account}")
        message = (
            f"account {account}: drawdown {drawdown:.1f} % is beyond {rules.drawdown_percent:g} %; "
            f"worst contributor Strategy/{worst.name}"
        )
        signals.append(_signal("Drawdown", namespace, account, objects, message, now, policy))
    pair = most_correlated(members, rules.correlation_threshold)
    if pair is not None:
        first, second, rho = pair
        objects = (f"Strategy/{first.name}", f"Strategy/{second.name}", f"TradingAccount/{account}")
        message = (
            f"account {account}: daily returns of {first.name} and {second.name} correlate at {rho:.2f}, "
            f"above {rules.correlation_threshold:g}; worst contributor Strategy/{first.name}"
        )
        signals.append(_signal("Correlation", namespace, account, objects, message, now, policy))
    return signals


def account_drawdown(members: Sequence[StrategyObservation]) -> tuple[float | None, StrategyObservation | None]:
    """The account's drawdown, in percent, from its bots' equity and drawdowns now: 1 - sum(equity) / sum(peak),
    each bot's peak being ``equity / (1 - drawdown)``. The sum of the peaks is at least the peak of the sum, so this
    never understates the account's drawdown. Also the bot that lost the most from its peak (quote currency).
    (None, None) when no bot reports both figures."""
    total_equity = total_peak = 0.0
    worst: StrategyObservation | None = None
    worst_loss = -1.0
    for item in members:
        if item.equity is None or item.drawdown_percent is None or item.equity <= 0 or item.drawdown_percent >= 100:
            continue
        peak = item.equity / (1 - item.drawdown_percent / 100)
        total_equity += item.equity
        total_peak += peak
        if peak - item.equity > worst_loss:
            worst, worst_loss = item, peak - item.equity
    if total_peak <= 0:
        return None, None
    return 100 * (1 - total_equity / total_peak), worst


def most_correlated(
    members: Sequence[StrategyObservation], threshold: float
) -> tuple[StrategyObservation, StrategyObservation, float] | None:
    """The pair of bots whose daily returns correlate the most above ``threshold`` (Pearson, over the days both
    report, at least ``MIN_CORRELATION_DAYS``), the one with the lower summed return first; None when no pair does.
    pandas computes every pair at once over a days x bots table (each pair on the days both have)."""
    usable = [m for m in members if len(m.daily_returns) >= MIN_CORRELATION_DAYS]
    if len(usable) < 2:
        return None
    table = pd.DataFrame({i: pd.Series(dict(m.daily_returns), dtype=float) for i, m in enumerate(usable)})
    matrix = table.corr(method="pearson", min_periods=MIN_CORRELATION_DAYS).to_numpy(copy=True)
    np.fill_diagonal(matrix, np.nan)
    upper = np.where(np.triu(np.ones_like(matrix, dtype=bool), k=1), matrix, np.nan)
    if np.all(np.isnan(upper)):
        return None
    i, j = np.unravel_index(np.nanargmax(upper), upper.shape)
    rho = float(upper[i, j])
    if rho <= threshold:
        return None
    first, second = usable[int(i)], usable[int(j)]
    both = table[[int(i), int(j)]].dropna()
    if both[int(i)].sum() <= both[int(j)].sum():
        return first, second, rho
    return second, first, rho


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's correlation; None when either series is constant."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mean_x) ** 2 for x in xs)
    syy = sum((y - mean_y) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def daily_returns(points: Iterable[tuple[int, float]]) -> dict[str, float]:
    """Daily returns from equity points ``(ts ms UTC, equity)``: each UTC day's last equity against the day
    before's last (the first day has none)."""
    closes: dict[str, float] = {}
    for ts, equity in sorted(points):
        closes[datetime.fromtimestamp(ts / 1000, UTC).date().isoformat()] = equity
    days = sorted(closes)
    return {day: closes[day] / closes[before] - 1 for before, day in pairwise(days) if closes[before] > 0}


def _signal(
    rule: str,
    namespace: str,
    subject: str,
    objects: tuple[str, ...],
    message: str,
    now: datetime,
    policy: RiskPolicySpec,
) -> IncidentSignal:
    severity = 1 if rule in SEVERITY_1_RULES else 2 if rule in SEVERITY_2_RULES else 3
    return IncidentSignal(
        cause=f"{rule}:{namespace}/{subject}",
        severity=severity,
        rule=rule,
        namespace=namespace,
        objects=objects,
        message=message,
        runbook=runbook_for(rule),
        detected_at=now,
        actions=automatic_actions(severity, flatten=policy.incidents.flatten_on_critical),
    )


def automatic_actions(severity: int, *, flatten: bool) -> tuple[str, ...]:
    """What the control plane does by itself for a severity (the healing ladder and the account pass carry it out):
    1: cancel orders, flatten where the policy allows, halt; 2: cut size, pause the worst contributor; 3: nothing."""
    if severity == 1:
        return ("CancelOrders", "Flatten", "Halt") if flatten else ("CancelOrders", "Halt")
    if severity == 2:
        return ("CutSize", "PauseWorstContributor")
    return ()


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _seconds(delta: Any) -> str:
    return f"{int(delta.total_seconds())}s"
