"""Phase and conditions of each kind, derived from what the reconciler found and did. Pure."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime

from slsbot.api import StrategyPhase, StrategyStatus
from slsbot.api.base import ObjectStatus
from slsbot.api.health import HealingRung, HealingStatus
from slsbot.domain.conditions import (
    DEGRADED,
    DRIFTED,
    HEALING,
    MODELS_DEGRADED,
    PROGRESSING,
    READY,
    TRADING,
    set_condition,
)
from slsbot.domain.plan import Action, ActionKind, ObservedRuntime, RuntimeState
from slsbot.domain.resolve import INVALID_SPEC, Problem

_REASON = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")


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

    if problems and observed is not None and observed.state is not RuntimeState.ABSENT:
        _running_on_last_good_config(status, put, problems, observed)
    elif problems:
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
        rolling = action is not None and action.kind in (ActionKind.CREATE, ActionKind.UPDATE)
        if action is not None and action.kind is ActionKind.RESTART:
            # A restart follows a failure (a crash, a silent runtime): degraded, with why, while it comes back.
            status.phase = StrategyPhase.DEGRADED
            put(PROGRESSING, True, action.reason, action.message)
            put(READY, False, action.reason, action.message)
            put(DEGRADED, True, action.reason, action.message)
        elif rolling:
            status.phase = StrategyPhase.PROGRESSING
            put(PROGRESSING, True, action.reason, action.message)
            put(READY, False, action.reason, action.message)
        elif action is not None and action.reason == "RuntimeDrained":
            status.phase = StrategyPhase.DEGRADED
            put(READY, False, action.reason, action.message)
            put(DEGRADED, True, action.reason, action.message)
        elif observed.state is RuntimeState.READY and observed.config_hash == config_hash:
            status.phase = StrategyPhase.PAUSED if desired_paused else StrategyPhase.RUNNING
            # Whether it takes new trades right now is the Trading condition's to say (an idle runtime is ready).
            put(
                READY,
                True,
                "RuntimeReady",
                "the runtime runs the current spec" + (", paused" if desired_paused else ""),
            )
            put(PROGRESSING, False, "UpToDate", "the runtime runs the current spec")
            put(DEGRADED, False, "Healthy", "the runtime is healthy")
            idle = _idle(observed.runtime_status, desired_paused)
            if idle is None:
                put(TRADING, True, "Trading", "the runtime takes the trades its signals and the risk policy allow")
            else:
                put(TRADING, False, *idle)
            models = models_degraded(observed.runtime_status)
            if models is not None:
                put(MODELS_DEGRADED, *models)
            if "drift" in observed.runtime_status:
                drift = _drift(observed.runtime_status["drift"])
                if drift is None:
                    conds = [c for c in conds if c.type != DRIFTED]  # no model to drift any more
                else:
                    put(DRIFTED, *drift)
        elif observed.state in (RuntimeState.EXITED, RuntimeState.UNRESPONSIVE):
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


def apply_healing(
    status: StrategyStatus,
    healing: HealingStatus | None,
    condition: tuple[bool, str, str] | None,
    *,
    generation: int,
    now: datetime,
) -> StrategyStatus:
    """``status`` with the healing ladder's record and its ``Healing`` condition (None: leave the condition as it is).
    A ready runtime held in safe mode or halted by the ladder is Degraded, and its Trading condition says why."""
    status.healing = healing
    conds = status.conditions
    if condition is not None:
        ok, reason, message = condition
        conds = set_condition(
            conds, type=HEALING, status=ok, reason=reason, message=message, generation=generation, now=now
        )
    restricted = healing is not None and healing.rung not in (None, HealingRung.RESTART)
    if restricted and status.phase in (StrategyPhase.RUNNING, StrategyPhase.PAUSED):
        assert healing is not None and condition is not None
        _, reason, message = condition
        status.phase = StrategyPhase.DEGRADED
        conds = set_condition(
            conds, type=DEGRADED, status=True, reason=reason, message=message, generation=generation, now=now
        )
        idle = "SafeMode" if healing.rung == HealingRung.SAFE_MODE else "Halted"
        conds = set_condition(
            conds, type=TRADING, status=False, reason=idle, message=message, generation=generation, now=now
        )
    status.conditions = conds
    return status


LAST_GOOD_CONFIG = "RunningLastGoodConfig"


def _running_on_last_good_config(
    status: StrategyStatus,
    put: Callable[[str, bool, str, str], None],
    problems: Sequence[Problem],
    observed: ObservedRuntime,
) -> None:
    """A runtime exists while the spec cannot be applied (an invalid edit, a deleted TradingAccount or RiskPolicy):
    say that it goes on, on what, why that is degraded, and what waits until the problem is fixed."""
    first = problems[0]
    problem = "; ".join(str(p) for p in problems)
    if observed.workload:
        status.workload = observed.workload
    status.pid = observed.pid
    status.restarts = observed.restarts
    _copy_runtime_figures(status, observed.runtime_status)
    config = f" (config {observed.config_hash})" if observed.config_hash else ""
    if observed.state is RuntimeState.READY:
        what = f"the runtime keeps trading on its last good config{config}"
    else:
        what = f"the runtime is {observed.state} on its last good config{config}"
    waits = (
        "until this is fixed slsbot rolls out no new config and applies no pause, resume or restart; "
        "deleting the Strategy still drains the runtime"
    )
    status.phase = StrategyPhase.DEGRADED
    put(READY, observed.state is RuntimeState.READY, LAST_GOOD_CONFIG, f"{what}; {problem}")
    put(DEGRADED, True, first.reason, f"{problem}; {waits}")
    put(PROGRESSING, False, first.reason, "waiting for the spec or its dependencies to be fixed")


# The runtime's /status key -> the StrategyStatus field it fills, and how it is read. Figures the runtime does not
# report (an older runtime, or one that has not traded yet) keep their previous value.
_FLOAT_FIGURES = {
    "equity": "equity",
    "return_pct": "return_percent",
    "realized_pnl": "realized_pnl",
    "unrealized_pnl": "unrealized_pnl",
    "win_rate_pct": "win_rate_percent",
    "drawdown_pct": "drawdown_percent",
    "max_drawdown_pct": "max_drawdown_percent",
}
_INT_FIGURES = {"open_positions": "open_positions", "trade_count": "trade_count", "closed_trades": "closed_trades"}
_PERCENT_BOUNDED = frozenset({"win_rate_percent", "drawdown_percent", "max_drawdown_percent"})


def _copy_runtime_figures(status: StrategyStatus, runtime_status: dict) -> None:
    if not runtime_status:
        return
    for key, name in _FLOAT_FIGURES.items():
        value = runtime_status.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            number = round(float(value), 6)
            setattr(status, name, min(max(number, 0.0), 100.0) if name in _PERCENT_BOUNDED else number)
    for key, name in _INT_FIGURES.items():
        value = runtime_status.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            setattr(status, name, value)
    if runtime_status.get("heartbeat"):
        status.last_heartbeat = runtime_status["heartbeat"]
    status.idle_reason = _idle_reason(runtime_status)


def models_degraded(runtime_status: dict) -> tuple[bool, str, str] | None:
    """(status, reason, message) of the ModelsDegraded condition from the runtime's ``models`` (one entry per
    signal model: state, in_vote, ...); None for a runtime without models. True while any model is out of the
    ensemble's vote: the rule-based members (and the models still in) decide without it."""
    models = runtime_status.get("models")
    if not isinstance(models, dict) or not models:
        return None
    out = []
    for name, entry in sorted(models.items()):
        if isinstance(entry, dict) and not entry.get("in_vote", False):
            why = entry.get("reason")
            out.append(f"{name} ({entry.get('state', 'unknown')}{': ' + str(why)[:200] if why else ''})")
    if not out:
        return False, "ModelsInVote", f"all {len(models)} signal models vote"
    return (
        True,
        "ModelsOutOfVote",
        f"{len(out)} of {len(models)} signal models out of the vote, the ensemble goes on without them: "
        + "; ".join(out),
    )


def _idle_reason(runtime_status: dict) -> str | None:
    reason = runtime_status.get("idle_reason")
    if isinstance(reason, str) and _REASON.fullmatch(reason):
        return reason
    return None


def _idle(runtime_status: dict, desired_paused: bool) -> tuple[str, str] | None:
    """(reason, message) of the Trading condition when a ready runtime takes no new trades, else None."""
    reason = _idle_reason(runtime_status)
    if reason is None:
        return ("Paused", "paused: no new positions are opened") if desired_paused else None
    message = runtime_status.get("idle_message")
    return reason, str(message)[:1024] if message else reason


def _drift(drift: object) -> tuple[bool, str, str] | None:
    """(status, reason, message) of the Drifted condition from the runtime's ``drift``; None without models."""
    if not isinstance(drift, dict) or not drift:
        return None
    drifted: list[str] = []
    acted = False  # an early retrain was asked for a drift (a runtime from before early_retrain: always)
    worst: list[tuple[float, str]] = []
    for model, entry in sorted(drift.items()):
        if not isinstance(model, str) or not isinstance(entry, dict):
            continue
        if entry.get("drifted") is True:
            drifted.append(model)
            acted = acted or entry.get("early_retrain", True) is not False
        threshold = entry.get("threshold")
        for series in entry.get("series") or ():
            psi = series.get("psi") if isinstance(series, dict) else None
            if series.get("drifted") is True and _finite(psi) and _finite(threshold):
                where = " ".join(str(series.get(key)) for key in ("symbol", "name") if series.get(key))
                worst.append((psi, f"{model} {where} psi {psi:.3f} > {threshold:.3f}"))
    models = ", ".join(sorted(m for m in drift if isinstance(m, str)))
    if not drifted:
        message = f"every input and output of {models} is within ml.driftThreshold of its training window"
        return False, "NoDrift", message[:1024]
    worst.sort(key=lambda item: -item[0])
    shown = "; ".join(text for _, text in worst[:3]) + (f" and {len(worst) - 3} more" if len(worst) > 3 else "")
    if acted:
        then = "an early retrain was requested"
    else:
        then = (
            "reported only: the drift check acts on a model's version once it has made enough predictions, and "
            "these are retrained on schedule first; they stay in the vote"
        )
    message = f"drifted: {', '.join(drifted)} ({shown}); {then}"
    return True, "ModelDrifted", message[:1024]


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
