"""The rotation's decision, branch by branch: what a newer version starts, the window, the drain and its timeout,
the check's three answers, and a rolled-back version not tried again."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from slsbot_runtime.domain.key_rotation import (
    RotationAction,
    RotationObserved,
    RotationPhase,
    next_rotation_step,
    window_is_open,
)

IDLE = RotationObserved(
    phase=RotationPhase.IDLE,
    version_in_use=3,
    newest_version=3,
    refused_version=None,
    in_flight=0,
    elapsed_s=0.0,
    settle_timeout_s=60.0,
    window_open=True,
)


@pytest.mark.parametrize(
    ("change", "action", "phase"),
    [
        ({}, RotationAction.NOTHING, RotationPhase.IDLE),
        ({"newest_version": None}, RotationAction.NOTHING, RotationPhase.IDLE),
        ({"newest_version": 2}, RotationAction.NOTHING, RotationPhase.IDLE),  # an older version is never taken
        ({"newest_version": 4}, RotationAction.STOP_ENTRIES, RotationPhase.DRAINING),
        ({"newest_version": 4, "in_flight": 2}, RotationAction.STOP_ENTRIES, RotationPhase.DRAINING),
        ({"newest_version": 4, "refused_version": 4}, RotationAction.NOTHING, RotationPhase.IDLE),
        ({"newest_version": 5, "refused_version": 4}, RotationAction.STOP_ENTRIES, RotationPhase.DRAINING),
        ({"newest_version": 4, "window_open": False}, RotationAction.WAIT_FOR_WINDOW, RotationPhase.WAITING_WINDOW),
        (
            {"phase": RotationPhase.WAITING_WINDOW, "newest_version": 4, "window_open": False},
            RotationAction.WAIT_FOR_WINDOW,
            RotationPhase.WAITING_WINDOW,
        ),
        (
            {"phase": RotationPhase.WAITING_WINDOW, "newest_version": 4},
            RotationAction.STOP_ENTRIES,
            RotationPhase.DRAINING,
        ),
    ],
)
def test_idle_and_waiting_for_the_window(change, action, phase):
    step = next_rotation_step(replace(IDLE, **change))
    assert (step.action, step.phase) == (action, phase)


DRAINING = replace(IDLE, phase=RotationPhase.DRAINING, newest_version=4)


def test_draining_switches_once_nothing_is_in_flight_and_rolls_back_at_the_settle_timeout():
    assert next_rotation_step(DRAINING).action is RotationAction.SWITCH
    waiting = next_rotation_step(replace(DRAINING, in_flight=2, elapsed_s=59.9))
    assert (waiting.action, waiting.phase, waiting.reason) == (
        RotationAction.NOTHING,
        RotationPhase.DRAINING,
        "2 orders in flight",
    )
    timed_out = next_rotation_step(replace(DRAINING, in_flight=2, elapsed_s=60.0))
    assert (timed_out.action, timed_out.phase) == (RotationAction.ROLL_BACK, RotationPhase.IDLE)
    assert "2 orders still in flight after the settle timeout (60s)" in timed_out.reason
    # nothing in flight wins over the timeout: the switch is safe whenever the books are quiet
    assert next_rotation_step(replace(DRAINING, elapsed_s=500)).action is RotationAction.SWITCH


CHECKING = replace(DRAINING, phase=RotationPhase.CHECKING)


@pytest.mark.parametrize(
    ("check_ok", "elapsed_s", "action", "phase"),
    [
        (True, 0.0, RotationAction.RESUME, RotationPhase.IDLE),
        (True, 999.0, RotationAction.RESUME, RotationPhase.IDLE),
        (False, 0.0, RotationAction.ROLL_BACK, RotationPhase.IDLE),
        (None, 10.0, RotationAction.NOTHING, RotationPhase.CHECKING),
        (None, 60.0, RotationAction.ROLL_BACK, RotationPhase.IDLE),
    ],
)
def test_checking(check_ok, elapsed_s, action, phase):
    step = next_rotation_step(replace(CHECKING, check_ok=check_ok, elapsed_s=elapsed_s))
    assert (step.action, step.phase) == (action, phase)
    assert step.refuse_version is (check_ok is False)  # only a refused key is never tried again


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-03-01T02:59:59", False),
        ("2026-03-01T03:00:00", True),
        ("2026-03-01T03:14:59", True),
        ("2026-03-01T03:15:00", False),
        ("2026-03-01T12:00:00", False),
    ],
)
def test_the_window_is_open_from_each_opening_for_its_length(now, expected):
    assert window_is_open("0 3 * * *", 900, at(now)) is expected


def test_no_window_is_always_open():
    assert window_is_open(None, 900, at("2026-03-01T12:00:00")) is True
