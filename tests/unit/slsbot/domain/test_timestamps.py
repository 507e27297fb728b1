"""``aware_time``: API-server and runtime timestamps as aware datetimes; anything else None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from slsbot.domain.timestamps import aware_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T13:00:00+01:00", datetime(2026, 3, 1, 13, tzinfo=timezone(timedelta(hours=1)))),
        ("2026-03-01T12:00:00", None),  # no offset: no zone to measure from
        ("yesterday", None),
        ("", None),
        (None, None),
        (1_772_366_400, None),
    ],
)
def test_timestamps_with_an_offset_are_read_and_the_rest_is_none(text: object, expected: datetime | None) -> None:
    assert aware_time(text) == expected


def test_a_time_without_an_offset_is_utc_when_asked() -> None:
    assert aware_time("2026-03-01T12:00:00", naive_is_utc=True) == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert aware_time("2026-03-01T12:00:00Z", naive_is_utc=True) == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert aware_time("not a time", naive_is_utc=True) is None
