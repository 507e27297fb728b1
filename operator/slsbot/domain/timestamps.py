"""Timestamps as the API server and the runtimes write them (RFC 3339, ``...Z`` or an offset). Pure."""

from __future__ import annotations

from datetime import datetime


def aware_time(value: object) -> datetime | None:
    """``value`` as an aware datetime; None when it is not a string, not a timestamp, or carries no offset (a time
    whose zone is unknown is no time to measure from)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
