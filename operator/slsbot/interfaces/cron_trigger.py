"""An APScheduler trigger that reads a crontab line as cron does.

APScheduler 3's own ``CronTrigger.from_crontab`` counts the day-of-week field from Monday (0 = Monday), where cron
counts from Sunday (0 and 7 = Sunday): '5 0 * * 0' would run on Mondays. ``croniter``, which the pure decisions
already use for every other schedule (tuning, backups, key rotation windows), reads it as cron does; this trigger
asks it for each next time, so a schedule means the same thing wherever slsbot reads one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.triggers.base import BaseTrigger
from croniter import croniter


class CrontabTrigger(BaseTrigger):
    """Fires at every time ``crontab`` (five fields, UTC) names."""

    def __init__(self, crontab: str) -> None:
        if len(crontab.split()) != 5 or not croniter.is_valid(crontab):
            raise ValueError(f"{crontab!r} is not a five-field cron expression")
        self.crontab = crontab

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        start = max(previous_fire_time, now) if previous_fire_time is not None else now
        fire: datetime = croniter(self.crontab, start.astimezone(UTC)).get_next(datetime)
        return fire.astimezone(UTC)

    def __str__(self) -> str:
        return f"crontab[{self.crontab}]"
