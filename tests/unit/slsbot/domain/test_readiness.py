"""Which objects `slsbot up` warns about after a load: not Ready and not on their way, with their status' message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slsbot.api import StrategyStatus, parse_resource
from slsbot.domain.conditions import READY, set_condition
from slsbot.domain.readiness import not_ready_warning, reconciled

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def strategy(phase: str | None, ready: bool = False, reason: str = "Starting", message: str = "m") -> Any:
    resource = parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "btc", "generation": 2},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            },
        }
    )
    if phase is not None:
        conditions = set_condition([], type=READY, status=ready, reason=reason, message=message, generation=2, now=NOW)
        resource.status = StrategyStatus(phase=phase, conditions=conditions, observed_generation=2)
    return resource


def test_a_strategy_with_a_problem_is_named_with_its_reason_and_message() -> None:
    waiting = strategy("Pending", reason="WaitingForDependency", message="spec.accountRef.name: 'x' does not exist")
    assert not_ready_warning(waiting) == (
        "Strategy default/btc is not ready (WaitingForDependency): spec.accountRef.name: 'x' does not exist"
    )
    assert "(InvalidSpec)" in not_ready_warning(strategy("Failed", reason="InvalidSpec"))
    assert "(BackOff)" in not_ready_warning(strategy("Degraded", reason="BackOff"))


def test_ready_starting_and_terminating_objects_need_no_warning() -> None:
    assert not_ready_warning(strategy("Running", ready=True, reason="RuntimeReady")) is None
    assert not_ready_warning(strategy("Progressing", reason="Creating")) is None
    assert not_ready_warning(strategy("Terminating", reason="Draining")) is None


def test_an_object_without_status_is_not_reconciled_and_says_so() -> None:
    fresh = strategy(None)
    assert not reconciled(fresh)
    assert (
        not_ready_warning(fresh) == "Strategy default/btc is not ready: it has not been reconciled yet; see its events"
    )


def test_reconciled_means_the_status_is_for_the_current_generation() -> None:
    current = strategy("Running", ready=True)
    assert reconciled(current)
    current.metadata.generation = 3
    assert not reconciled(current)
