"""Conditions in the Kubernetes API conventions: set one, keep lastTransitionTime when nothing changed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slsbot.api.base import Condition, ConditionStatus

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
TRADING = "Trading"  # a Ready runtime that takes new trades (False: idle, with the reason)
MODELS_DEGRADED = "ModelsDegraded"  # a signal model is out of the ensemble's vote (missing, failed, stale, drifted)
HEALING = "Healing"  # the runtime is on its healing ladder (reason: <class>_<rung>, e.g. StaleData_SafeMode)
DRIFTED = "Drifted"  # a model's inputs or output moved away from its training window (only with ml.models)


def set_condition(
    conditions: Sequence[Condition],
    *,
    type: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """A new list with ``type`` set; its lastTransitionTime moves only when its status changes."""
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    previous = next((c for c in conditions if c.type == type), None)
    moved = previous is None or previous.status != status
    updated = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=now if moved else previous.last_transition_time,
        observed_generation=generation,
    )
    return [c for c in conditions if c.type != type] + [updated]


def get_condition(conditions: Sequence[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)
