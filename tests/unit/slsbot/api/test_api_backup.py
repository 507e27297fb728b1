"""BackupSchedule: defaults, and errors that name the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from slsbot.api import BackupSchedule, parse_resource


def schedule(**spec: Any) -> dict[str, Any]:
    base = {"repository": "/srv/restic", "passwordSecretRef": {"name": "restic", "key": "password"}}
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "BackupSchedule",
        "metadata": {"name": "nightly", "namespace": "trading"},
        "spec": {**base, **spec},
    }


def test_defaults_are_hourly_backup_daily_check_and_prune_weekly_drill() -> None:
    parsed = parse_resource(schedule())
    assert isinstance(parsed, BackupSchedule)
    spec = parsed.spec
    assert spec.backup.schedule == "0 * * * *"
    assert spec.check.schedule == "30 3 * * *"
    assert spec.prune.schedule == "15 4 * * *"
    assert (spec.prune.keep_hourly, spec.prune.keep_daily, spec.prune.keep_weekly) == (24, 7, 4)
    assert spec.restore_drill.schedule == "0 5 * * 0"
    assert spec.selector.match_labels == {} and spec.selector.account is None
    assert spec.environment_secret_ref is None


def test_a_bad_cron_names_the_field_and_the_form() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_resource(schedule(backup={"schedule": "0 25 * * *"}))
    text = str(caught.value)
    assert "spec.backup.schedule" in text
    assert "minute hour day month weekday" in text


def test_credentials_in_the_repository_string_are_refused_with_the_fix() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_resource(schedule(repository="rest:https://bob:hunter2@backup.example:8000/slsbot"))
    text = str(caught.value)
    assert "spec.repository" in text
    assert "passwordSecretRef" in text and "environmentSecretRef" in text


def test_unknown_fields_and_bad_subsets_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"spec.keepHourly"):
        parse_resource(schedule(keepHourly=3))
    with pytest.raises(ValidationError, match=r"spec.check.readDataSubset"):
        parse_resource(schedule(check={"readDataSubset": "ten percent"}))
    with pytest.raises(ValidationError, match=r"spec.passwordSecretRef"):
        parse_resource({**schedule(), "spec": {"repository": "/srv/restic"}})
