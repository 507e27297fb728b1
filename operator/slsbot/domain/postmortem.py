"""The post-mortem bundle of an incident: one JSON document with everything a person needs to write the
post-mortem (runbooks/postmortem-template.md). Pure: the caller gathers the pieces."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slsbot.domain.incidents import Incident

BUNDLE_VERSION = 1
#: Keys of a runtime's /status that describe its risk decisions.
RISK_KEYS = ("risk", "breaker", "breaker_level", "trading_mode", "trading_mode_reason", "headroom", "idle_reason")


def postmortem_bundle(
    incident: Incident,
    *,
    runtime_status: Mapping[str, Mapping[str, Any] | None],
    orders: Mapping[str, Sequence[Mapping[str, Any]]],
    events: Sequence[Mapping[str, Any]],
    generated_at: datetime,
) -> dict[str, Any]:
    """``runtime_status`` and ``orders`` are keyed by the incident's objects ("Strategy/name"); ``events`` are the
    Events of those objects, newest first."""
    return {
        "bundleVersion": BUNDLE_VERSION,
        "generatedAt": generated_at.isoformat(),
        "template": "runbooks/postmortem-template.md",
        "incident": incident.model_dump(mode="json", by_alias=True, exclude_none=True),
        "runtimes": {
            obj: {
                "lastStatus": dict(status) if status is not None else None,
                "riskDecisions": {k: status[k] for k in RISK_KEYS if status is not None and k in status},
                "recentOrders": [dict(o) for o in orders.get(obj, ())],
            }
            for obj, status in runtime_status.items()
        },
        "events": [dict(e) for e in events],
    }
