"""Whether a restore on a cluster may begin, and what holds a runtime for one: pure decisions."""

from __future__ import annotations

from slsbot.domain.restore_plan import ANNOTATION_RESTORE, restore_hold, restore_refusal

OK = {"namespace": "trading", "strategy": "btc", "paused": True, "deleting": False, "hold": None, "has_claim": True}


def test_a_paused_strategy_with_a_claim_and_no_hold_may_be_restored() -> None:
    assert restore_refusal(**OK) is None


def test_each_refusal_names_its_fix() -> None:
    running = restore_refusal(**{**OK, "paused": False})
    assert running is not None and "not paused" in running and '"paused":true' in running
    held = restore_refusal(**{**OK, "hold": "latest@20260302t100000z"})
    assert held is not None and f"{ANNOTATION_RESTORE}-" in held
    no_claim = restore_refusal(**{**OK, "has_claim": False})
    assert no_claim is not None and "emptyDir" in no_claim
    deleting = restore_refusal(**{**OK, "deleting": True, "paused": False})
    assert deleting is not None and "being deleted" in deleting


def test_the_hold_is_the_annotation() -> None:
    assert restore_hold({ANNOTATION_RESTORE: "3a02dd65@20260302t100000z"}) == "3a02dd65@20260302t100000z"
    assert restore_hold({ANNOTATION_RESTORE: ""}) is None
    assert restore_hold(None) is None and restore_hold({"other": "x"}) is None
