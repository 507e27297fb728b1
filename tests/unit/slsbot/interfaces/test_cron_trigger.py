"""The crontab trigger reads the day-of-week field as cron does (APScheduler 3's from_crontab does not)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slsbot.interfaces.cron_trigger import CrontabTrigger

TUESDAY = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("crontab", "weekday"), [("5 0 * * 0", "Sunday"), ("5 0 * * 7", "Sunday"), ("5 0 * * 1", "Monday")]
)
def test_day_of_week_numbers_count_from_sunday(crontab: str, weekday: str) -> None:
    fire = CrontabTrigger(crontab).get_next_fire_time(None, TUESDAY)
    assert fire is not None and fire.strftime("%A") == weekday and (fire.hour, fire.minute) == (0, 5)


def test_each_time_follows_the_previous_one() -> None:
    trigger = CrontabTrigger("5 0 * * *")
    first = trigger.get_next_fire_time(None, TUESDAY)
    assert first == datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
    assert trigger.get_next_fire_time(first, first) == datetime(2026, 12, 2, 0, 5, tzinfo=UTC)


def test_an_unreadable_crontab_is_refused() -> None:
    with pytest.raises(ValueError, match="five-field"):
        CrontabTrigger("every day")
