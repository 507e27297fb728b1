"""The healing ladder: what is wrong with a runtime, which rung it stands on, and the one step to take. Pure.

From what a backend observed (``ObservedRuntime``: state, restarts, and the runtime's ``/status`` with its ``health``
block and ``trading_mode``), the Strategy's previous ``HealingStatus``, its RiskPolicy's ``HealingPolicy``, the open
severity-1/2 incident signals naming it, and ``now``, ``decide_healing`` classifies the failure (``FailureClass``),
chooses the rung, the trading mode the runtime may use, the Event of a rung change, the ``Healing`` condition and
when to look again. The service (``services.reconcile``) executes its action, one per pass, as for ``plan_runtime``.

The ladder, per class (docs/concepts/healing.md):

- Restart (with backoff) -> SafeMode (no new entries, orders reduce-only) -> Halt (orders cancelled, positions
  flattened when ``flattenOnHalt``) -> Incident (halted, handed to a person). Crashes climb by the restarts seen
  (``plan_runtime``'s crash-loop backoff does the restarting); the other restartable classes (StaleData,
  ExchangeUnreachable, ResourceExhaustion, ModelDegraded) are restarted here, ``restartsPerRung`` times, a
  ``rungTimeout / restartsPerRung`` apart. SafeMode and Halt last ``rungTimeout`` each before the next rung.
- StateMismatch and ExecutionErrors start at SafeMode: a runtime that cannot trade safely stops its entries before
  anything else is tried (the runtime has done so itself already; the ladder keeps it so). So does ModelDegraded
  when a model drifted: a restart cannot cure drift (the runtime retrains the model itself; the way back is that
  retrain or the drift passing); a model that failed or went stale is restarted first.
- A severity-1 signal halts at once (flattening per ``incidents.flattenOnCritical``); a severity-2 one puts the
  runtime in safe mode at least.
- The way back is automatic: once the runtime has been healthy for ``recoverAfter``, it trades normally again.
- The ladder never lowers the trading mode while a fault lasts, and never lifts a mode it did not set (a kill
  switch's halt stays).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slsbot.api.account import ROTATION_HOLD_REASON
from slsbot.api.base import parse_duration
from slsbot.api.health import FailureClass, HealingPolicy, HealingRung, HealingStatus, TradingMode
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.plan import Action, ActionKind, ObservedRuntime, RuntimeState
from slsbot.domain.runtime_spec import DesiredRuntime
from slsbot.domain.timestamps import aware_time

LADDER = (HealingRung.RESTART, HealingRung.SAFE_MODE, HealingRung.HALT, HealingRung.INCIDENT)
MODE_OF_RUNG = {
    HealingRung.RESTART: TradingMode.NORMAL,
    HealingRung.SAFE_MODE: TradingMode.SAFE,
    HealingRung.HALT: TradingMode.HALTED,
    HealingRung.INCIDENT: TradingMode.HALTED,
}
_MODE_RANK = {TradingMode.NORMAL: 0, TradingMode.SAFE: 1, TradingMode.HALTED: 2}
#: Classes whose first rung is safe mode: restarting first would let an unsafe runtime trade on.
SAFETY_FIRST = frozenset({FailureClass.STATE_MISMATCH, FailureClass.EXECUTION_ERRORS})
#: Classes whose Incident rung is severity 1 (contract section 3); the others are severity 2.
CRITICAL_CLASSES = frozenset(
    {FailureClass.STATE_MISMATCH, FailureClass.EXECUTION_ERRORS, FailureClass.EXCHANGE_UNREACHABLE}
)
#: The incident rules that name a failure class (the others, Drawdown, LiquidationRisk..., have none).
CLASS_OF_RULE = {
    "StateMismatch": FailureClass.STATE_MISMATCH,
    "ExecutionFailure": FailureClass.EXECUTION_ERRORS,
    "ConnectionLost": FailureClass.EXCHANGE_UNREACHABLE,
    "ModelAccuracy": FailureClass.MODEL_DEGRADED,
}
MEMORY_SHARE_OF_LIMIT = 0.9  # memoryLimitMb unset: exhaustion is above this share of the container's limit
MESSAGE_LIMIT = 1000  # of a fault's message in status.healing (the runtime's last words can be long)
WHILE_HEALING = timedelta(seconds=5)  # how often a runtime on the ladder is looked at, at most
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Fault:
    """One thing wrong with a runtime now. ``cause`` is the failure class, or the incident rule without one."""

    cause: str
    failure_class: FailureClass | None
    message: str
    fault_at: datetime | None = None  # when it began, as the runtime (or the backend) reports it
    first_rung: HealingRung = HealingRung.RESTART
    flatten: bool | None = None  # a severity-1 signal's flatten (flattenOnCritical); None: the policy's flattenOnHalt


@dataclass(frozen=True, slots=True)
class HealingEvent:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class HealingDecision:
    """What the ladder decided in one pass. ``action``: SET_TRADING_MODE or RESTART, or None (nothing to do, or a
    crash that ``plan_runtime`` restarts). ``condition``: (status, reason, message) of the ``Healing`` condition,
    None to leave it as it is. ``detection_seconds`` and ``recovery_seconds`` are measured once per fault: fault to
    detection when it is detected, detection to healthy when the runtime is first healthy again."""

    status: HealingStatus | None
    action: Action | None = None
    events: tuple[HealingEvent, ...] = ()
    condition: tuple[bool, str, str] | None = None
    requeue_after: timedelta | None = None
    rung_entered: HealingRung | None = None
    detection_seconds: float | None = None
    recovery_seconds: float | None = None
    signals: tuple[IncidentSignal, ...] = ()
    cause: str | None = None  # what the measurements are of: the failure class, or the incident rule


def decide_healing(
    observed: ObservedRuntime,
    previous: HealingStatus | None,
    policy: HealingPolicy,
    *,
    desired: DesiredRuntime,
    namespace: str,
    name: str,
    now: datetime,
    signals: tuple[IncidentSignal, ...] | list[IncidentSignal] = (),
    flatten_on_critical: bool = True,
) -> HealingDecision:
    """The ladder's step for one Strategy's runtime (see the module's docstring)."""
    fault = classify(observed, policy, previous=previous, now=now) or _not_back(observed, previous, policy, now)
    fault = _with_signals(fault, signals, flatten_on_critical, now)
    if fault is None:
        if previous is None or previous.rung is None:
            return HealingDecision(status=None)
        if not _healthy_now(observed, previous):
            return HealingDecision(status=previous, requeue_after=WHILE_HEALING)  # coming back: no verdict yet
        return _recovering(observed, previous, policy, now)
    return _climb(observed, previous, fault, policy, desired=desired, namespace=namespace, name=name, now=now)


def classify(
    observed: ObservedRuntime, policy: HealingPolicy, *, previous: HealingStatus | None, now: datetime
) -> Fault | None:
    """The worst thing wrong with the runtime now; None when nothing is, or when it cannot tell (a runtime the
    ladder restarted, still starting). Safety first: a state mismatch and repeated rejects come before the rest."""
    state = observed.state
    if state is RuntimeState.EXITED:
        return Fault(
            FailureClass.CRASHED.value,
            FailureClass.CRASHED,
            observed.detail or "the runtime exited",
            fault_at=observed.exited_at or now,
        )
    if state is RuntimeState.UNRESPONSIVE:
        silent = observed.unresponsive_for or timedelta(0)
        return Fault(
            FailureClass.CRASHED.value,
            FailureClass.CRASHED,
            f"the runtime does not answer its health check ({observed.detail or 'no answer'})",
            fault_at=now - silent,
        )
    if state is RuntimeState.STARTING:
        restarted_by_ladder = previous is not None and previous.failure_class not in (None, FailureClass.CRASHED)
        exits = observed.consecutive_failures
        if exits > 0 and not restarted_by_ladder:
            return Fault(
                FailureClass.CRASHED.value,
                FailureClass.CRASHED,
                f"the runtime exited {exits} time{'s' if exits != 1 else ''} since it was last ready; it is starting",
                fault_at=observed.exited_at or now,
            )
        return None
    if state is not RuntimeState.READY:
        return None
    status = observed.runtime_status
    health = _dict(status.get("health"))
    checked_at = aware_time(health.get("checked_at")) or now
    mode = _mode(status.get("trading_mode"))
    mode_reason = str(status.get("trading_mode_reason") or "")[:300]
    reconcile = _dict(health.get("reconcile"))
    if reconcile.get("ok") is False:
        problem = str(reconcile.get("last_problem") or "")[:300]
        return Fault(
            FailureClass.STATE_MISMATCH.value,
            FailureClass.STATE_MISMATCH,
            "the runtime's orders or positions disagree with the exchange's"
            + (f": {problem}" if problem else "")
            + f" ({_int(reconcile.get('problems'))} problems)",
            fault_at=aware_time(reconcile.get("checked_at")) or checked_at,
            first_rung=HealingRung.SAFE_MODE,
        )
    orders = _dict(health.get("orders"))
    in_a_row = max(_int(orders.get("consecutive_rejects")), _int(orders.get("consecutive_failures")))
    if in_a_row >= policy.reject_limit:
        return Fault(
            FailureClass.EXECUTION_ERRORS.value,
            FailureClass.EXECUTION_ERRORS,
            f"{in_a_row} orders rejected or failed in a row (rejectLimit {policy.reject_limit})",
            fault_at=checked_at,
            first_rung=HealingRung.SAFE_MODE,
        )
    ours = previous.trading_mode if previous is not None else TradingMode.NORMAL
    rotating = mode_reason == ROTATION_HOLD_REASON  # a key rotation holds entries for a moment: no fault
    if mode == TradingMode.SAFE and _MODE_RANK[mode] > _MODE_RANK[ours] and not rotating:
        # It stopped its entries itself (repeated rejects, or its books disagree with the exchange: contract section
        # 1). A reason that names neither counts as the graver of the two, a state mismatch.
        said = mode_reason.lower()
        execution = "reject" in said or "orders in a row" in said
        failure_class = FailureClass.EXECUTION_ERRORS if execution else FailureClass.STATE_MISMATCH
        return Fault(
            failure_class.value,
            failure_class,
            f"the runtime put itself in safe mode: {mode_reason or 'no reason given'}",
            fault_at=checked_at,
            first_rung=HealingRung.SAFE_MODE,
        )
    exchange = _dict(health.get("exchange"))
    failing_since = aware_time(exchange.get("failing_since"))
    if exchange.get("connected") is False and failing_since is not None:
        down_for = now - failing_since
        if down_for >= parse_duration(policy.exchange_down_after):
            last = str(exchange.get("last_error") or "")[:200]
            return Fault(
                FailureClass.EXCHANGE_UNREACHABLE.value,
                FailureClass.EXCHANGE_UNREACHABLE,
                f"every exchange call has failed for {down_for.total_seconds():.0f}s"
                + (f" (last: {last})" if last else ""),
                fault_at=failing_since,
            )
    stale = _stale_data(_dict(health.get("data")), policy, checked_at)
    if stale is not None:
        return stale
    memory = _memory(health, policy, checked_at)
    if memory is not None:
        return memory
    models = health.get("models")
    if isinstance(models, dict) and models.get("degraded") is True:
        drifted = ", ".join(str(m) for m in models.get("drifted") or [])[:200]
        # Drift is cured by a retrain (the runtime asks for one itself) or by the drift passing, never by a restart:
        # the restarted runtime judges the same candles again and loses the retrain under way. Entries stop instead.
        return Fault(
            FailureClass.MODEL_DEGRADED.value,
            FailureClass.MODEL_DEGRADED,
            "the runtime's models are degraded" + (f" (drifted: {drifted})" if drifted else ""),
            fault_at=checked_at,
            first_rung=HealingRung.SAFE_MODE if drifted else HealingRung.RESTART,
        )
    return None


def _not_back(
    observed: ObservedRuntime, previous: HealingStatus | None, policy: HealingPolicy, now: datetime
) -> Fault | None:
    """The fault still stands when a runtime the ladder restarted for it has run ``rungTimeout / restartsPerRung``
    since it last started without becoming ready: it cannot come up (an exchange it cannot reach keeps it connecting),
    so the restart did not heal it and the ladder goes on, instead of waiting for it without end. Both backends measure
    ``not_ready_for`` (Kubernetes: from the pod's ``Ready`` condition and its runtime container's start); where it is
    not measured (None: the pod does not say), a starting runtime is left without a verdict."""
    if observed.state is not RuntimeState.STARTING or observed.not_ready_for is None:
        return None
    if previous is None or previous.rung is None or previous.cause is None or previous.last_action_at is None:
        return None  # not restarted by the ladder (a crash: plan_runtime restarts those and counts them)
    if observed.not_ready_for < parse_duration(policy.rung_timeout) / policy.restarts_per_rung:
        return None
    detail = f": {observed.detail}" if observed.detail else ""
    return Fault(
        previous.cause,
        previous.failure_class,
        f"not ready {observed.not_ready_for.total_seconds():.0f}s after it started again{detail}"[:MESSAGE_LIMIT],
        fault_at=previous.fault_at,
    )


def stale_threshold(policy: HealingPolicy, interval: float) -> float:
    """Seconds past a candle's due time after which data is stale: ``staleAfterCandles`` intervals, at least
    ``staleAfterMin``."""
    return max(policy.stale_after_candles * interval, parse_duration(policy.stale_after_min).total_seconds())


def _stale_data(data: dict[str, Any], policy: HealingPolicy, checked_at: datetime) -> Fault | None:
    """The symbol whose candles are most overdue, once past ``staleAfterCandles`` intervals (or flagged stale)."""
    worst: tuple[float, str, float] | None = None
    for symbol, entry in sorted(data.items()):
        if not isinstance(entry, dict):
            continue
        age, interval = _float(entry.get("age_seconds")), _float(entry.get("interval_seconds"))
        # The policy's threshold where the age is measurable; the runtime's own verdict where it is not.
        if age is not None and interval is not None and interval > 0:
            over = age > stale_threshold(policy, interval)
        else:
            over = entry.get("stale") is True
        if over and (worst is None or (age or 0.0) > worst[0]):
            worst = (age or 0.0, str(symbol), interval or 0.0)
    if worst is None:
        return None
    age, symbol, interval = worst
    return Fault(
        FailureClass.STALE_DATA.value,
        FailureClass.STALE_DATA,
        f"no new {symbol} candle for {age:.1f}s since one was due (interval {interval:g}s, stale after "
        f"{stale_threshold(policy, interval):g}s: {policy.stale_after_candles:g} intervals, at least "
        f"{policy.stale_after_min})",
        fault_at=checked_at - timedelta(seconds=age),  # when the missing candle was due
    )


def _memory(health: dict[str, Any], policy: HealingPolicy, checked_at: datetime) -> Fault | None:
    used = _int(health.get("memory_bytes"))
    if policy.memory_limit_mb is not None:
        limit, what = policy.memory_limit_mb * _MIB, f"memoryLimitMb {policy.memory_limit_mb}"
    else:
        container = _int(health.get("memory_limit_bytes"))
        if container <= 0:
            return None
        limit = int(container * MEMORY_SHARE_OF_LIMIT)
        what = f"{MEMORY_SHARE_OF_LIMIT:.0%} of its {container // _MIB} MiB limit"
    if used <= limit:
        return None
    return Fault(
        FailureClass.RESOURCE_EXHAUSTION.value,
        FailureClass.RESOURCE_EXHAUSTION,
        f"the runtime uses {used // _MIB} MiB, above {what}",
        fault_at=checked_at,
    )


def _with_signals(
    fault: Fault | None, signals: tuple[IncidentSignal, ...] | list[IncidentSignal], flatten: bool, now: datetime
) -> Fault | None:
    """A severity-1 signal halts at once; a severity-2 one is safe mode at least (the "pause" of the worst
    contributor). The health's own fault keeps its class when there is one."""
    ranked = sorted((s for s in signals if s.severity in (1, 2)), key=lambda s: (s.severity, s.cause))
    if not ranked:
        return fault
    worst = ranked[0]
    rung = HealingRung.HALT if worst.severity == 1 else HealingRung.SAFE_MODE
    if fault is not None and _at_least(fault.first_rung, rung):
        return fault
    failure_class = fault.failure_class if fault is not None else CLASS_OF_RULE.get(worst.rule)
    cause = fault.cause if fault is not None else (failure_class.value if failure_class else worst.rule)
    message = f"severity-{worst.severity} incident {worst.rule}: {worst.message}"
    if fault is not None:
        message = f"{fault.message}; {message}"
    return Fault(
        cause,
        failure_class,
        message[:1000],
        fault_at=(fault.fault_at if fault is not None else None) or worst.detected_at or now,
        first_rung=rung,
        flatten=flatten if worst.severity == 1 else None,
    )


def _climb(
    observed: ObservedRuntime,
    previous: HealingStatus | None,
    fault: Fault,
    policy: HealingPolicy,
    *,
    desired: DesiredRuntime,
    namespace: str,
    name: str,
    now: datetime,
) -> HealingDecision:
    """A fault now: begin the ladder, or go on climbing it."""
    fresh = previous is None or previous.rung is None or previous.cause != fault.cause
    detection = None
    if fresh:
        # A new fault, or another one: a new record whose rung never falls below the one before (nor its mode).
        floor = previous.rung if previous is not None and previous.rung is not None else HealingRung.RESTART
        rung = _higher(fault.first_rung, floor)
        record = HealingStatus(
            failure_class=fault.failure_class,
            cause=fault.cause,
            rung=rung,
            trading_mode=MODE_OF_RUNG[rung],
            attempts=0,
            fault_at=fault.fault_at,
            detected_at=now,
            rung_since=now,
            restarts_at_fault=observed.restarts,
            flatten=_flatten(fault, policy) if rung in (HealingRung.HALT, HealingRung.INCIDENT) else False,
            incident_id=previous.incident_id if previous is not None else None,
            message=fault.message[:MESSAGE_LIMIT],
        )
        if fault.fault_at is not None:
            detection = max((now - fault.fault_at).total_seconds(), 0.0)
    else:
        assert previous is not None
        record = previous.model_copy(update={"message": fault.message[:MESSAGE_LIMIT], "healthy_since": None})
        if not _at_least(record.rung, fault.first_rung):  # a signal raised the floor meanwhile
            record = _enter(record, fault.first_rung, fault, policy, now)
    before = previous.rung if previous is not None and not fresh else None
    record, action, wait = _step(observed, record, fault, policy, desired=desired, now=now)
    entered = HealingRung(record.rung) if fresh or record.rung != before else None
    events: list[HealingEvent] = []
    signals: tuple[IncidentSignal, ...] = ()
    if entered is not None:
        events.append(HealingEvent("Warning", _reason(record), _rung_message(record, policy)))
    if record.rung == HealingRung.INCIDENT:  # on every pass at this rung: the incident's cause is still there
        signals = (_incident_signal(record, namespace=namespace, name=name, now=now),)
    if action is None:
        action = _push(observed, record)
    requeue = WHILE_HEALING if wait is None else min(wait, WHILE_HEALING)
    return HealingDecision(
        status=record,
        action=action,
        events=tuple(events),
        condition=(True, _reason(record), _rung_message(record, policy)),
        requeue_after=requeue,
        rung_entered=entered,
        detection_seconds=detection,
        signals=signals,
        cause=record.cause,
    )


def _step(
    observed: ObservedRuntime,
    record: HealingStatus,
    fault: Fault,
    policy: HealingPolicy,
    *,
    desired: DesiredRuntime,
    now: datetime,
) -> tuple[HealingStatus, Action | None, timedelta | None]:
    """Climb one rung when this one has had its chance; restart when the rung says so. (record, action, wait)."""
    rung_timeout = parse_duration(policy.rung_timeout)
    assert record.rung is not None
    if record.rung == HealingRung.RESTART:
        if record.failure_class == FailureClass.CRASHED:
            # plan_runtime restarts a crashed runtime, with its backoff: count those restarts.
            attempts = max(record.attempts, observed.restarts - record.restarts_at_fault)
            record = record.model_copy(update={"attempts": attempts})
            if attempts >= policy.restarts_per_rung:
                return _enter(record, HealingRung.SAFE_MODE, fault, policy, now), None, None
            return record, None, None
        grace = rung_timeout / policy.restarts_per_rung
        since = now - record.last_action_at if record.last_action_at is not None else None
        if since is not None and since < grace:
            return record, None, grace - since
        if record.attempts >= policy.restarts_per_rung:
            return _enter(record, HealingRung.SAFE_MODE, fault, policy, now), None, None
        if observed.state not in (RuntimeState.READY, RuntimeState.STARTING):  # starting: stuck since the last one
            return record, None, None
        record = record.model_copy(update={"attempts": record.attempts + 1, "last_action_at": now})
        restart = Action(
            ActionKind.RESTART,
            "HealingRestart",
            f"{record.cause}: restart {record.attempts} of {policy.restarts_per_rung}: {fault.message}",
            desired=desired,
        )
        return record, restart, grace
    if record.rung == HealingRung.INCIDENT:
        return record, None, None
    in_rung = now - (record.rung_since or now)
    if in_rung >= rung_timeout:
        following = LADDER[LADDER.index(record.rung) + 1]
        return _enter(record, following, fault, policy, now), None, None
    return record, None, rung_timeout - in_rung


def _enter(
    record: HealingStatus, rung: HealingRung, fault: Fault, policy: HealingPolicy, now: datetime
) -> HealingStatus:
    mode = MODE_OF_RUNG[rung]
    if _MODE_RANK[mode] < _MODE_RANK[record.trading_mode]:
        mode = record.trading_mode
    return record.model_copy(
        update={
            "rung": rung,
            "trading_mode": mode,
            "rung_since": now,
            "attempts": 0 if rung != HealingRung.RESTART else record.attempts,
            "flatten": record.flatten or (rung in (HealingRung.HALT, HealingRung.INCIDENT) and _flatten(fault, policy)),
        }
    )


def _recovering(
    observed: ObservedRuntime, previous: HealingStatus, policy: HealingPolicy, now: datetime
) -> HealingDecision:
    """Healthy now: count the time; after ``recoverAfter`` back to normal trading, automatically."""
    first = previous.healthy_since is None
    healthy_since = previous.healthy_since or now
    recovery = None
    if first and previous.detected_at is not None:
        recovery = max((now - previous.detected_at).total_seconds(), 0.0)
    recover_after = parse_duration(policy.recover_after)
    if now - healthy_since < recover_after:
        record = previous.model_copy(update={"healthy_since": healthy_since})
        back_at = healthy_since + recover_after
        message = f"healthy since {_iso(healthy_since)}; back to normal trading at {_iso(back_at)} if it stays so"
        events = ()
        if first:
            events = (HealingEvent("Normal", "Healthy", f"{previous.cause}: the runtime is healthy again; {message}"),)
        return HealingDecision(
            status=record,
            action=_push(observed, record),
            events=events,
            condition=(True, _reason(record), message),
            requeue_after=min(back_at - now, WHILE_HEALING),
            recovery_seconds=recovery,
            cause=previous.cause,
        )
    message = (
        f"{previous.cause}: healthy for {recover_after.total_seconds():.0f}s (recoverAfter); "
        f"back to normal trading from {previous.rung}"
    )
    push = None
    reported = _mode(observed.runtime_status.get("trading_mode"))
    # Lift only the mode the ladder set: a halt it did not order (a kill switch) stays.
    if previous.trading_mode != TradingMode.NORMAL and reported in (None, previous.trading_mode):
        push = Action(ActionKind.SET_TRADING_MODE, "Recovered", message, trading_mode=TradingMode.NORMAL)
    return HealingDecision(
        status=None,
        action=push,
        events=(HealingEvent("Normal", "Recovered", message),),
        condition=(False, "Recovered", message),
        recovery_seconds=recovery,
        cause=previous.cause,
    )


def _push(observed: ObservedRuntime, record: HealingStatus) -> Action | None:
    """SET_TRADING_MODE when the ready runtime is less restricted than the rung wants (never lifts another's
    stricter mode; a runtime that does not report its mode is told whenever the rung wants more than normal)."""
    if observed.state is not RuntimeState.READY:
        return None
    wanted = TradingMode(record.trading_mode)
    reported = _mode(observed.runtime_status.get("trading_mode"))
    current = reported if reported is not None else TradingMode.NORMAL
    if _MODE_RANK[wanted] <= _MODE_RANK[current]:
        return None
    return Action(
        ActionKind.SET_TRADING_MODE,
        _reason(record),
        f"{record.cause}: {record.rung}: trading mode {wanted}" + (" (flatten)" if record.flatten else ""),
        trading_mode=wanted,
        flatten=record.flatten and wanted == TradingMode.HALTED,
    )


def _incident_signal(record: HealingStatus, *, namespace: str, name: str, now: datetime) -> IncidentSignal:
    cause = record.cause or "Unknown"
    severity = 1 if record.failure_class in CRITICAL_CLASSES or record.failure_class is None else 2
    actions = ("CancelOrders", "Flatten", "Halt") if record.flatten else ("CancelOrders", "Halt")
    return IncidentSignal(
        cause=f"{cause}:{namespace}/{name}",
        severity=severity,
        rule=f"Healing{cause}",
        namespace=namespace,
        objects=(f"Strategy/{name}",),
        message=f"the healing ladder halted the runtime and could not heal it: {record.message}"[:1000],
        runbook=f"runbooks/{_kebab(cause)}.md",
        detected_at=record.detected_at or now,
        actions=actions,
    )


def _flatten(fault: Fault, policy: HealingPolicy) -> bool:
    return policy.flatten_on_halt if fault.flatten is None else fault.flatten


def _healthy_now(observed: ObservedRuntime, previous: HealingStatus) -> bool:
    """Healthy means ready and answering with nothing wrong, not even below the thresholds for the fault it had (an
    exchange still disconnected, a feed still flagged stale: a restarted runtime measures those afresh); a runtime
    still starting gives no verdict."""
    if observed.state is not RuntimeState.READY or not observed.runtime_status:
        return False
    health = _dict(observed.runtime_status.get("health"))
    if previous.failure_class == FailureClass.EXCHANGE_UNREACHABLE:
        return _dict(health.get("exchange")).get("connected") is not False
    if previous.failure_class == FailureClass.STALE_DATA:
        return not any(isinstance(e, dict) and e.get("stale") is True for e in _dict(health.get("data")).values())
    return True


def _reason(record: HealingStatus) -> str:
    return f"{record.cause}_{record.rung}"


def _rung_message(record: HealingStatus, policy: HealingPolicy) -> str:
    what = {
        HealingRung.RESTART: f"restarting it (attempt {record.attempts} of {policy.restarts_per_rung})",
        HealingRung.SAFE_MODE: "safe mode: no new entries, orders reduce-only",
        HealingRung.HALT: "halted: orders cancelled" + (", positions flattened" if record.flatten else ""),
        HealingRung.INCIDENT: "halted and handed to a person: an incident is open",
    }[record.rung or HealingRung.RESTART]
    return f"{record.cause}: {what}: {record.message}"[:4096]


def _higher(a: HealingRung, b: HealingRung) -> HealingRung:
    return a if LADDER.index(a) >= LADDER.index(b) else b


def _at_least(rung: HealingRung | None, floor: HealingRung) -> bool:
    return rung is not None and LADDER.index(rung) >= LADDER.index(floor)


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _mode(value: object) -> TradingMode | None:
    try:
        return TradingMode(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
