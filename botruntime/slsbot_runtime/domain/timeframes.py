"""Candle intervals and timestamps as text: the one place the runtime turns a timeframe into milliseconds and
a millisecond timestamp (UTC) into ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime

from slsbot.api import TIMEFRAME_SECONDS
from slsbot_runtime.domain.errors import ConfigError


def interval_ms(timeframe: str, *, field: str = "timeframe") -> int:
    """Milliseconds of one ``timeframe`` candle (``1h`` -> 3,600,000); ConfigError naming ``field`` otherwise."""
    seconds = TIMEFRAME_SECONDS.get(str(timeframe))
    if seconds is None:
        raise ConfigError(f"{field}: {timeframe!r} is not one of {', '.join(TIMEFRAME_SECONDS)}")
    return seconds * 1000


def utc_iso(ms: int) -> str:
    """``2024-09-14T00:00:00Z``: a timestamp in ms as ISO 8601 in UTC, to the second (or finer if it has it)."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def utc_minute(ms: int) -> str:
    """``2024-09-14T00:00Z``: a timestamp in ms, to the minute, for messages people read."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")
