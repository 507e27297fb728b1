"""BackupSchedule: restic backups of a namespace's runtime state (and the control plane's store), checked, pruned
and proved by restore drills, each on its own cron schedule. See docs/concepts/backups.md.

As with k8up's Schedule and CloudNativePG's ScheduledBackup, the schedule says what and when; each run (a backup, a
check, a prune or a drill) records when it ran, what it produced and how it ended, and the newest run of each kind
is summarised in ``status``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from croniter import croniter
from pydantic import Field, field_validator

from slsbot.api.base import Name, ObjectStatus, SpecModel
from slsbot.api.health import SecretKeyRef

CRON_PATTERN = r"^\S+( \S+){4}$"


def check_cron(text: str) -> str:
    """A five-field cron expression (minute hour day-of-month month day-of-week), evaluated in UTC, with cron's own
    meanings (day-of-week 0 and 7 are Sunday), as ``croniter`` reads it."""
    fields = text.split()
    if len(fields) != 5 or not croniter.is_valid(text):
        problem = f"{len(fields)} fields" if len(fields) != 5 else "croniter cannot read it"
        raise ValueError(
            f"{text!r} is not a cron expression ({problem}); write five fields: minute hour day month weekday, "
            "e.g. '0 * * * *' for hourly"
        )
    return text


class BackupJobKind(StrEnum):
    BACKUP = "backup"
    CHECK = "check"
    PRUNE = "prune"
    DRILL = "drill"


class JobOutcome(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class _Scheduled(SpecModel):
    schedule: str = Field(
        pattern=CRON_PATTERN, description="Cron expression, five fields, UTC.", examples=["0 * * * *"]
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)


class BackupJobSpec(_Scheduled):
    schedule: str = Field(default="0 * * * *", pattern=CRON_PATTERN, description="When to back up (default hourly).")


class CheckJobSpec(_Scheduled):
    schedule: str = Field(
        default="30 3 * * *", pattern=CRON_PATTERN, description="When to run restic check (default daily, 03:30)."
    )
    read_data_subset: str | None = Field(
        default=None,
        pattern=r"^([0-9]+(\.[0-9]+)?%|[0-9]+/[0-9]+|[0-9]+[KMGT]?)$",
        description="Also read back this part of the data: '10%', '1/7' or '500M' (restic check --read-data-subset).",
    )


class PruneJobSpec(_Scheduled):
    schedule: str = Field(
        default="15 4 * * *", pattern=CRON_PATTERN, description="When to forget and prune (default daily, 04:15)."
    )
    keep_hourly: int = Field(default=24, ge=0, le=10000, description="Newest snapshot of each of the last N hours.")
    keep_daily: int = Field(default=7, ge=0, le=10000)
    keep_weekly: int = Field(default=4, ge=0, le=10000)
    keep_monthly: int = Field(default=6, ge=0, le=10000)


class DrillJobSpec(_Scheduled):
    schedule: str = Field(
        default="0 5 * * 0", pattern=CRON_PATTERN, description="When to run a restore drill (default weekly)."
    )


class SecretRef(SpecModel):
    name: Name = Field(description="The Secret's name, in the schedule's namespace.")


class StrategySelector(SpecModel):
    """Which Strategies' state to back up: every one in the namespace when empty."""

    match_labels: dict[str, str] = Field(default_factory=dict, description="Only Strategies with all these labels.")
    account: Name | None = Field(default=None, description="Only the Strategies of this TradingAccount.")


class BackupScheduleSpec(SpecModel):
    repository: str = Field(
        min_length=1,
        max_length=1024,
        description="restic repository: /srv/restic, s3:host/bucket/path, rest:https://host/path, sftp:...",
        examples=["s3:s3.amazonaws.com/my-bucket/slsbot"],
    )
    password_secret_ref: SecretKeyRef = Field(description="The repository's password: one key of a Secret.")
    environment_secret_ref: SecretRef | None = Field(
        default=None,
        description="A Secret whose keys become the backend's environment (AWS_ACCESS_KEY_ID, B2_ACCOUNT_KEY, ...).",
    )
    selector: StrategySelector = Field(default_factory=StrategySelector)
    include_control_plane: bool = Field(
        default=True, description="Also back up the control plane's store (slsbot up's database) where there is one."
    )
    backup: BackupJobSpec = Field(default_factory=BackupJobSpec)
    check: CheckJobSpec = Field(default_factory=CheckJobSpec)
    prune: PruneJobSpec = Field(default_factory=PruneJobSpec)
    restore_drill: DrillJobSpec = Field(default_factory=DrillJobSpec)

    @field_validator("repository")
    @classmethod
    def _no_credentials_in_repository(cls, value: str) -> str:
        if "@" in value.split("?")[0] and "://" in value and ":" in value.split("://", 1)[1].split("@")[0]:
            raise ValueError(
                "the repository string holds a user:password; put the password in passwordSecretRef and the "
                "backend's credentials in environmentSecretRef"
            )
        return value


class JobResult(SpecModel):
    """How the newest run of one job kind ended."""

    started_at: datetime
    duration_seconds: float = Field(ge=0)
    outcome: JobOutcome
    snapshot_ids: list[str] = Field(default_factory=list, max_length=256, description="Snapshots made or drilled.")
    size_bytes: int | None = Field(default=None, ge=0, description="Backup: bytes added to the repository.")
    message: str = Field(default="", max_length=4096)


class BackupScheduleStatus(ObjectStatus):
    last_backup: JobResult | None = None
    last_check: JobResult | None = None
    last_prune: JobResult | None = None
    last_drill: JobResult | None = None
