from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slsbot.domain.conditions import get_condition, set_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_transition_time_moves_only_when_status_changes():
    conds = set_condition([], type="Ready", status=False, reason="Starting", message="m", generation=1, now=T0)
    same = set_condition(
        conds,
        type="Ready",
        status=False,
        reason="Still",
        message="m2",
        generation=2,
        now=T0 + timedelta(minutes=5),
    )
    ready = get_condition(same, "Ready")
    assert ready.last_transition_time == T0
    assert ready.reason == "Still" and ready.observed_generation == 2
    flipped = set_condition(
        same, type="Ready", status=True, reason="Ok", message="", generation=2, now=T0 + timedelta(minutes=9)
    )
    assert get_condition(flipped, "Ready").last_transition_time == T0 + timedelta(minutes=9)
    assert len(flipped) == 1
