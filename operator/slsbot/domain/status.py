"""Phase and conditions of each kind, derived from what the reconciler found and did. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slsbot.api import StrategyPhase, StrategyStatus
from slsbot.api.base import ObjectStatus
from slsbot.domain.conditions import DEGRADED, PROGRESSING, READY, set_condition
from slsbot.domain.plan import Action, ActionKind, ObservedRuntime, RuntimeState
from slsbot.domain.resolve import INVALID_SPEC, Problem


def validation_status(
    previous: ObjectStatus, problems: Sequence[Problem], *, generation: int, now: datetime
) -> ObjectStatus:
    """Status of a kind that is only validated (TradingAccount, RiskPolicy, Experiment for now)."""
    status = previous.model_copy(deep=True)
    if problems:
        first = problems[0]
        message = "; ".join(str(p) for p in problems)
        status.phase = "Invalid" if first.reason == INVALID_SPEC else "Pending"
        status.conditions = set_condition(
            status.conditions,
            type=READY,
            status=False,
            reason=first.reason,
            message=message,
            generation=generation,
            now=now,
        )
    else:
        status.phase = "Ready"
        status.conditions = set_condition(
            status.conditions,
            type=READY,
            status=True,
            reason="Valid",
            message="the spec is valid",
            generation=generation,
            now=now,
        )
    status.observed_generation = generation
    return status


def strategy_status(
    previous: StrategyStatus | None,
    *,
    generation: int,
    now: datetime,
    problems: Sequence[Problem] = (),
    observed: ObservedRuntime | None = None,
    action: Action | None = None,
    desired_paused: bool = False,
    config_hash: str | None = None,
) -> StrategyStatus:
    status = (previous or StrategyStatus()).model_copy(deep=True)
    conds = status.conditions

    def put(type: str, ok: bool, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(
            conds, type=type, status=ok, reason=reason, message=message, generation=generation, now=now
        )

    if problems:
        first = problems[0]
        message = "; ".join(str(p) for p in problems)
        status.phase = StrategyPhase.FAILED if first.reason == INVALID_SPEC else StrategyPhase.PENDING
        put(READY, False, first.reason, message)
        put(PROGRESSING, False, first.reason, "waiting for the spec or its dependencies to be fixed")
    elif observed is not None:
        if observed.workload:
            status.workload = observed.workload
        status.pid = observed.pid
        status.restarts = observed.restarts
        _copy_runtime_figures(status, observed.runtime_status)
        rolling = action is not None and action.kind in (
            ActionKind.CREATE,
            ActionKind.UPDATE,
            ActionKind.RESTART,
        )
        if rolling:
            status.phase = StrategyPhase.PROGRESSING
            put(PROGRESSING, True, action.reason, action.message)
            put(READY, False, action.reason, action.message)
        elif action is not None and action.reason == "RuntimeDrained":
            status.phase = StrategyPhase.DEGRADED
            put(READY, False, action.reason, action.message)
            put(DEGRADED, True, action.reason, action.message)
        elif observed.state is RuntimeState.READY and observed.config_hash == config_hash:
            status.phase = StrategyPhase.PAUSED if desired_paused else StrategyPhase.RUNNING
            put(READY, True, "RuntimeReady", "the runtime is trading" if not desired_paused else "paused")
            put(PROGRESSING, False, "UpToDate", "the runtime runs the current spec")
            put(DEGRADED, False, "Healthy", "the runtime is healthy")
        elif observed.state is RuntimeState.EXITED:
            status.phase = StrategyPhase.DEGRADED
            reason = action.reason if action is not None else "RuntimeExited"
            message = action.message if action is not None else observed.detail or "the runtime exited"
            put(READY, False, reason, message)
            put(DEGRADED, True, reason, message)
        else:
            status.phase = StrategyPhase.PROGRESSING
            message = observed.detail or "waiting for the runtime to become ready"
            put(READY, False, "Starting", message)
            put(PROGRESSING, True, "Starting", message)
        if config_hash is not None:
            status.config_hash = config_hash
    status.conditions = conds
    status.observed_generation = generation
    return status


def _copy_runtime_figures(status: StrategyStatus, runtime_status: dict) -> None:
    if not runtime_status:
        return
    if runtime_status.get("equity") is not None:
        status.equity = float(runtime_status["equity"])
    if runtime_status.get("open_positions") is not None:
        status.open_positions = int(runtime_status["open_positions"])
    if runtime_status.get("trade_count") is not None:
        status.trade_count = int(runtime_status["trade_count"])
    if runtime_status.get("heartbeat"):
        status.last_heartbeat = runtime_status["heartbeat"]
