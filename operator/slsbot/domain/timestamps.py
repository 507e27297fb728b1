"""Timestamps as the API server and the runtimes write them (RFC 3339, ``...Z`` or an offset). Pure."""

from __future__ import annotations

from datetime import UTC, datetime


def aware_time(value: object, *, naive_is_utc: bool = False) -> datetime | None:
    """``value`` as an aware datetime; None when it is not a string or not a timestamp. One without an offset is
    None too (a time whose zone is unknown is no time to measure from), or UTC with ``naive_is_utc``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        return parsed
    return parsed.replace(tzinfo=UTC) if naive_is_utc else None
