"""Incident: a record of something a person must know about, opened by the control plane (never by hand).

On a cluster each incident is an ``Incident`` object, written only by the operator: it survives an operator restart,
``kubectl get incidents`` lists them, and RBAC decides who may read them. Under ``slsbot up`` the same record is a row
of the supervisor's database. See docs/concepts/incidents.md.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from slsbot.api.base import ObjectStatus, SpecModel


class IncidentState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class TimelineKind(StrEnum):
    DETECTED = "Detected"  # the cause was seen (again, after it had cleared: the count moves on)
    ACTION = "Action"  # what the control plane did by itself (cancel, flatten, halt, cut size, pause)
    CLEARED = "Cleared"  # the cause is no longer seen; resolved automatically after recoverAfter
    NOTIFIED = "Notified"  # a message went to a receiver (named, never its URL)
    ACKNOWLEDGED = "Acknowledged"
    RESOLVED = "Resolved"


class TimelineEntry(SpecModel):
    at: datetime
    kind: TimelineKind
    message: str = Field(default="", max_length=1024)
    actor: str | None = Field(
        default=None, max_length=64, description="Who: 'slsbot' when automatic, else the role and token id."
    )


class IncidentSpec(SpecModel):
    """What the incident is about; set when it opens and never changed."""

    cause: str = Field(min_length=1, max_length=512, description="Dedup key: one open incident per cause.")
    severity: int = Field(ge=1, le=3, description="1 critical, 2 high, 3 medium.")
    rule: str = Field(min_length=1, max_length=64, description="The severity rule, or Healing<FailureClass>.")
    objects: list[str] = Field(default_factory=list, max_length=32, description='e.g. "Strategy/btc-trend".')
    message: str = Field(default="", max_length=4096, description="What was seen, when the incident opened.")
    runbook: str = Field(max_length=256, description="runbooks/<file>.md: what a person checks and does.")


class IncidentStatus(ObjectStatus):
    state: IncidentState = IncidentState.OPEN
    count: int = Field(default=1, ge=1, description="Times the cause was detected while this incident was open.")
    opened_at: datetime
    clear_since: datetime | None = Field(default=None, description="The cause has not been seen since.")
    recover_after_seconds: float = Field(
        default=120.0, ge=0, description="Resolved automatically once the cause has been absent this long."
    )
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list, max_length=64)
