"""Whether an object needs its owner's attention, read from the status the reconciler wrote. Pure.

An object is worth a warning when it is not Ready and not on its way there: a Strategy that is starting or rolling
out (``Progressing``) or being deleted (``Terminating``) is fine; one that waits for a missing account, has an
invalid spec or crash-loops is not, nor is an Experiment that nothing runs yet.
"""

from __future__ import annotations

from typing import Any

from slsbot.api import ConditionStatus
from slsbot.domain.conditions import READY, get_condition

ON_ITS_WAY = frozenset({"Progressing", "Terminating"})


def reconciled(resource: Any) -> bool:
    """The reconciler has written a status for the object's current spec."""
    status = resource.status
    return status is not None and status.observed_generation == resource.metadata.generation


def not_ready_warning(resource: Any) -> str | None:
    """``Kind ns/name is not ready (Reason): message``, or None when the object is Ready or on its way."""
    status = resource.status
    label = f"{resource.kind} {resource.namespace}/{resource.name}"
    if status is None:
        return f"{label} is not ready: it has not been reconciled yet; see its events"
    ready = get_condition(status.conditions, READY)
    if ready is not None and ready.status == ConditionStatus.TRUE:
        return None
    if status.phase in ON_ITS_WAY:
        return None
    if ready is None:
        return f"{label} is not ready: it has not been reconciled yet; see its events"
    return f"{label} is not ready ({ready.reason}): {ready.message}"
