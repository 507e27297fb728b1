"""Key rotation while trading: from what the runtime observes, the next step. Pure.

A rotation goes idle -> (waiting for the window) -> draining -> checking -> idle:

* **idle**: the secret's newest version is the one in use (or the one that failed last time): nothing to do. A newer
  one starts a rotation at once, or at the next opening of ``rotation.window`` when one is set (waiting_window).
* **draining**: new entries stopped (the trading mode's ``safe``: exits still go out); once no order is in flight
  the key is switched (``SWITCH``). Orders still in flight after ``settleTimeout`` roll the rotation back.
* **checking**: the new key is in use and checked with an authenticated read-only call; it passes -> reconcile with
  the exchange and resume (``RESUME``), it is refused -> the old key again (``ROLL_BACK``). A check that could not
  be made (the exchange did not answer) is tried again until ``settleTimeout``, then rolled back.

A rolled-back version is not tried again: only a newer one starts the next rotation. ``execution`` is the
engine's (``engine.key_rotation``); this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from croniter import croniter


class RotationPhase(StrEnum):
    IDLE = "idle"
    WAITING_WINDOW = "waiting_window"
    DRAINING = "draining"
    CHECKING = "checking"


class RotationAction(StrEnum):
    NOTHING = "nothing"  # stay in the phase, look again later
    WAIT_FOR_WINDOW = "wait_for_window"  # a newer version waits for the window to open
    STOP_ENTRIES = "stop_entries"  # start draining: no new entries
    SWITCH = "switch"  # no order in flight: use the new key and check it
    RESUME = "resume"  # the check passed: reconcile, restore the trading mode, report success
    ROLL_BACK = "roll_back"  # the old key again, restore the trading mode, report the failure


class RotationOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True, slots=True)
class RotationObserved:
    phase: RotationPhase
    version_in_use: int
    newest_version: int | None  # None: not known yet (the metadata could not be read)
    refused_version: int | None  # the last version rolled back; not tried again
    in_flight: int  # unfinished orders (pending ones included)
    elapsed_s: float  # in the current phase
    settle_timeout_s: float
    window_open: bool  # True when no window is set
    check_ok: bool | None = None  # checking: the read-only call's answer; None when it could not be made


@dataclass(frozen=True, slots=True)
class RotationStep:
    action: RotationAction
    phase: RotationPhase  # the phase after the action
    reason: str
    refuse_version: bool = False  # a roll-back because the version itself is refused: never tried again


def next_rotation_step(observed: RotationObserved) -> RotationStep:
    """The next step of a rotation from what is observed now."""
    phase = observed.phase
    if phase in (RotationPhase.IDLE, RotationPhase.WAITING_WINDOW):
        newest = observed.newest_version
        if newest is None or newest <= observed.version_in_use:
            return RotationStep(RotationAction.NOTHING, RotationPhase.IDLE, "the version in use is the newest")
        if newest == observed.refused_version:
            return RotationStep(
                RotationAction.NOTHING, RotationPhase.IDLE, f"version {newest} was rolled back; waiting for a newer one"
            )
        if not observed.window_open:
            return RotationStep(
                RotationAction.WAIT_FOR_WINDOW,
                RotationPhase.WAITING_WINDOW,
                f"version {newest} waits for the rotation window",
            )
        return RotationStep(
            RotationAction.STOP_ENTRIES,
            RotationPhase.DRAINING,
            f"version {newest} found: new entries stop until the switch",
        )
    timed_out = observed.elapsed_s >= observed.settle_timeout_s
    if phase is RotationPhase.DRAINING:
        if observed.in_flight == 0:
            return RotationStep(RotationAction.SWITCH, RotationPhase.CHECKING, "no order in flight: switching the key")
        if timed_out:
            return RotationStep(
                RotationAction.ROLL_BACK,
                RotationPhase.IDLE,
                f"{observed.in_flight} orders still in flight after the settle timeout "
                f"({observed.settle_timeout_s:g}s); the key in use stays",
            )
        return RotationStep(RotationAction.NOTHING, RotationPhase.DRAINING, f"{observed.in_flight} orders in flight")
    if observed.check_ok is True:
        return RotationStep(RotationAction.RESUME, RotationPhase.IDLE, "the new key passed its check")
    if observed.check_ok is False:
        return RotationStep(
            RotationAction.ROLL_BACK, RotationPhase.IDLE, "the new key was refused", refuse_version=True
        )
    if timed_out:
        return RotationStep(
            RotationAction.ROLL_BACK,
            RotationPhase.IDLE,
            f"the new key could not be checked within the settle timeout ({observed.settle_timeout_s:g}s)",
        )
    return RotationStep(RotationAction.NOTHING, RotationPhase.CHECKING, "the check could not be made; trying again")


def window_is_open(window: str | None, length_s: float, now: datetime) -> bool:
    """True when no window is set, or ``now`` (UTC) is less than ``length_s`` after the cron schedule's last
    opening (a firing exactly at ``now`` counts)."""
    if window is None:
        return True
    now = now.astimezone(UTC)
    opened: datetime = croniter(window, now + timedelta(seconds=1)).get_prev(datetime)
    return (now - opened.astimezone(UTC)).total_seconds() < length_s
