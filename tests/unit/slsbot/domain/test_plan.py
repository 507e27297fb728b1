"""plan_runtime / plan_deletion: one step toward the desired runtime, decided with no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slsbot.api import Strategy, TradingAccount
from slsbot.api.strategy import OnDelete
from slsbot.domain.plan import (
    ActionKind,
    BackoffPolicy,
    ObservedRuntime,
    RuntimeState,
    plan_deletion,
    plan_runtime,
)
from slsbot.domain.resolve import resolve_strategy
from slsbot.domain.runtime_spec import build_runtime_config, desired_runtime

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _desired(paused: bool = False, fast: int = 10):
    account = TradingAccount.model_validate({"metadata": {"name": "paper"}, "spec": {"exchange": "binance"}})
    strategy = Strategy.model_validate(
        {
            "metadata": {"name": "btc"},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "paused": paused,
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": fast}}]},
            },
        }
    )
    resolved = resolve_strategy(strategy, {"paper": account}, {})
    assert not isinstance(resolved, list)
    return desired_runtime(resolved, build_runtime_config(resolved, state_path="s.db", port=9000))


def test_absent_runtime_is_created():
    desired = _desired()
    action = plan_runtime(desired, ObservedRuntime(), now=NOW)
    assert action.kind is ActionKind.CREATE
    assert action.desired is desired


def test_ready_runtime_with_same_config_is_left_alone():
    desired = _desired()
    observed = ObservedRuntime(state=RuntimeState.READY, config_hash=desired.config_hash, paused=False)
    action = plan_runtime(desired, observed, now=NOW)
    assert action.kind is ActionKind.WAIT
    assert action.reason == "UpToDate"


def test_changed_params_roll_out_a_new_config():
    old, new = _desired(fast=10), _desired(fast=12)
    assert old.config_hash != new.config_hash
    observed = ObservedRuntime(state=RuntimeState.READY, config_hash=old.config_hash, paused=False)
    assert plan_runtime(new, observed, now=NOW).kind is ActionKind.UPDATE


def test_pausing_is_not_a_rollout():
    running, paused = _desired(paused=False), _desired(paused=True)
    assert running.config_hash == paused.config_hash
    observed = ObservedRuntime(state=RuntimeState.READY, config_hash=running.config_hash, paused=False)
    action = plan_runtime(paused, observed, now=NOW)
    assert action.kind is ActionKind.SET_PAUSED
    assert action.reason == "Pausing"


def test_first_crash_restarts_at_once():
    desired = _desired()
    observed = ObservedRuntime(
        state=RuntimeState.EXITED, config_hash=desired.config_hash, consecutive_failures=1, exited_at=NOW
    )
    assert plan_runtime(desired, observed, now=NOW).kind is ActionKind.RESTART


def test_crash_loop_backs_off_exponentially():
    desired = _desired()
    policy = BackoffPolicy(base=timedelta(seconds=1), cap=timedelta(seconds=60))
    assert [policy.delay(n).total_seconds() for n in range(1, 9)] == [0, 1, 2, 4, 8, 16, 32, 60]
    observed = ObservedRuntime(
        state=RuntimeState.EXITED, config_hash=desired.config_hash, consecutive_failures=4, exited_at=NOW
    )
    waiting = plan_runtime(desired, observed, now=NOW + timedelta(seconds=3), backoff=policy)
    assert waiting.kind is ActionKind.WAIT
    assert waiting.reason == "BackOff"
    assert waiting.requeue_after == timedelta(seconds=1)
    due = plan_runtime(desired, observed, now=NOW + timedelta(seconds=4), backoff=policy)
    assert due.kind is ActionKind.RESTART


def test_kubernetes_restarts_its_own_containers():
    desired = _desired()
    observed = ObservedRuntime(state=RuntimeState.EXITED, config_hash=desired.config_hash, backend_restarts_itself=True)
    assert plan_runtime(desired, observed, now=NOW).kind is ActionKind.WAIT


@pytest.mark.parametrize(
    ("state", "drained", "expected"),
    [
        (RuntimeState.READY, False, ActionKind.DRAIN),
        (RuntimeState.READY, True, ActionKind.DELETE),
        (RuntimeState.STARTING, False, ActionKind.WAIT),
        (RuntimeState.EXITED, False, ActionKind.DELETE),
        (RuntimeState.ABSENT, False, ActionKind.WAIT),
    ],
)
def test_deletion_drains_before_it_deletes(state, drained, expected):
    action = plan_deletion(OnDelete(cancel_orders=True, flatten=True), ObservedRuntime(state=state), drained=drained)
    assert action.kind is expected
    if expected is ActionKind.DRAIN:
        assert action.cancel_orders and action.flatten


def test_deleting_a_dead_runtime_warns_that_orders_may_remain():
    action = plan_deletion(OnDelete(), ObservedRuntime(state=RuntimeState.EXITED), drained=False)
    assert action.reason == "DeletedWithoutDrain"
    assert "open orders" in action.message


def test_no_drain_when_nothing_to_cancel():
    action = plan_deletion(
        OnDelete(cancel_orders=False, flatten=False), ObservedRuntime(state=RuntimeState.READY), drained=False
    )
    assert action.kind is ActionKind.DELETE


def test_waiting_to_drain_a_starting_runtime_is_bounded():
    starting = ObservedRuntime(state=RuntimeState.STARTING)
    early = plan_deletion(OnDelete(), starting, drained=False, waited=timedelta(seconds=30))
    assert early.kind is ActionKind.WAIT and early.reason == "WaitingToDrain"
    late = plan_deletion(OnDelete(), starting, drained=False, waited=timedelta(minutes=3))
    assert late.kind is ActionKind.DELETE and late.reason == "DeletedWithoutDrain"
    assert "did not become ready in time" in late.message


def test_what_the_backend_saw_reaches_the_message():
    desired = _desired()
    observed = ObservedRuntime(
        state=RuntimeState.EXITED,
        config_hash=desired.config_hash,
        backend_restarts_itself=True,
        detail="ImagePullBackOff: image not found",
    )
    action = plan_runtime(desired, observed, now=NOW)
    assert action.reason == "RuntimeNotRunning"
    assert action.message == "ImagePullBackOff: image not found"
