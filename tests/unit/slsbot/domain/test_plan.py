"""plan_runtime / plan_deletion: one step toward the desired runtime, decided with no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slsbot.api import Strategy, TradingAccount
from slsbot.api.health import TradingMode
from slsbot.api.strategy import OnDelete
from slsbot.domain.plan import (
    DRAIN_WAIT_LIMIT,
    Action,
    ActionKind,
    BackoffPolicy,
    LivenessPolicy,
    ObservedRuntime,
    RuntimeState,
    drain_remains,
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
        (RuntimeState.READY, True, ActionKind.WAIT),  # asked to drain, not yet reported drained
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
    assert "did not become ready within 120s" in late.message


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


# --- waiting for the drain to complete ------------------------------------------------------------------------------


def _reports(phase: str = "drained", *, state: RuntimeState = RuntimeState.READY, **figures) -> ObservedRuntime:
    return ObservedRuntime(state=state, runtime_status={"phase": phase, **figures})


FLATTEN = OnDelete(cancel_orders=True, flatten=True)
CANCEL = OnDelete(cancel_orders=True, flatten=False)


def test_a_drained_runtime_with_nothing_open_is_deleted():
    action = plan_deletion(FLATTEN, _reports(open_orders=0, open_positions=0), drained=True, waited=timedelta(0))
    assert action.kind is ActionKind.DELETE and action.reason == "Deleting"


def test_after_the_drain_request_the_runtime_is_kept_until_it_reports_drained():
    still_running = _reports("finished", open_orders=0, open_positions=0)
    action = plan_deletion(FLATTEN, still_running, drained=True, waited=timedelta(seconds=5))
    assert action.kind is ActionKind.WAIT and action.reason == "WaitingForDrain"
    assert timedelta(seconds=1) <= action.requeue_after <= timedelta(seconds=2)
    assert "'finished'" in action.message


def test_open_orders_keep_the_runtime_even_when_it_says_drained():
    action = plan_deletion(CANCEL, _reports(open_orders=2, open_positions=1), drained=True, waited=timedelta(0))
    assert action.kind is ActionKind.WAIT and "2 open orders remain" in action.message


def test_positions_matter_only_when_a_flatten_was_asked():
    holding = _reports(open_orders=0, open_positions=1)
    assert plan_deletion(CANCEL, holding, drained=True, waited=timedelta(0)).kind is ActionKind.DELETE
    waiting = plan_deletion(FLATTEN, holding, drained=True, waited=timedelta(0))
    assert waiting.kind is ActionKind.WAIT and "1 open position remain" in waiting.message


def test_unknown_figures_are_not_taken_as_zero():
    assert drain_remains(_reports(), flatten=False) == "an unknown number of open orders remain"
    assert "unknown number of open positions" in drain_remains(_reports(open_orders=0), flatten=True)
    assert drain_remains(_reports(open_orders=True, open_positions=0), flatten=True) is not None  # a bool is no count
    assert drain_remains(_reports(open_orders=0, open_positions=0), flatten=True) is None


def test_a_runtime_that_stops_answering_after_the_drain_request_is_waited_for():
    gone_quiet = ObservedRuntime(state=RuntimeState.EXITED)
    action = plan_deletion(CANCEL, gone_quiet, drained=True, waited=timedelta(seconds=10))
    assert action.kind is ActionKind.WAIT and "does not report its status (it is exited)" in action.message


def test_a_drain_that_never_completes_is_deleted_with_a_warning_saying_what_was_left():
    stuck = _reports(open_orders=3, open_positions=1)
    action = plan_deletion(FLATTEN, stuck, drained=True, waited=DRAIN_WAIT_LIMIT)
    assert action.kind is ActionKind.DELETE and action.reason == "DeletedWithoutDrain"
    assert "did not complete within 120s" in action.message
    assert "3 open orders and 1 open position remain" in action.message
    assert "open orders and positions" in action.message
    short = plan_deletion(CANCEL, stuck, drained=True, waited=timedelta(seconds=11), wait_limit=timedelta(seconds=10))
    assert short.reason == "DeletedWithoutDrain" and "within 10s" in short.message


def test_an_unknown_wait_is_not_bounded():
    stuck = _reports("running", open_orders=0)
    assert plan_deletion(CANCEL, stuck, drained=True, waited=None).kind is ActionKind.WAIT


def test_a_ready_runtime_on_a_drained_state_file_is_left_alone_and_says_why():
    desired = _desired()
    observed = ObservedRuntime(
        state=RuntimeState.READY, config_hash=desired.config_hash, paused=True, runtime_status={"phase": "drained"}
    )
    action = plan_runtime(desired, observed, now=NOW)
    assert action.kind is ActionKind.WAIT and action.reason == "RuntimeDrained"  # no SetPaused on a drained one
    assert "new state file" in action.message


# --- a runtime that runs but does not answer -------------------------------------------------------------------------


def test_a_runtime_that_does_not_answer_is_not_deleted_without_a_drain_while_the_wait_lasts():
    silent = ObservedRuntime(state=RuntimeState.UNRESPONSIVE, detail="GET /status timed out after 3s")
    action = plan_deletion(CANCEL, silent, drained=False, waited=timedelta(seconds=7))
    assert action.kind is ActionKind.WAIT and action.reason == "WaitingToDrain"
    assert "GET /status timed out after 3s" in action.message
    assert action.requeue_after is not None and action.requeue_after <= timedelta(seconds=2)


def test_once_a_silent_runtime_answers_the_drain_is_asked_for():
    answers = ObservedRuntime(state=RuntimeState.READY, runtime_status={"phase": "running"})
    action = plan_deletion(CANCEL, answers, drained=False, waited=timedelta(seconds=40))
    assert action.kind is ActionKind.DRAIN and action.cancel_orders


def test_a_runtime_silent_past_the_wait_is_deleted_saying_it_was_running_but_did_not_answer():
    silent = ObservedRuntime(state=RuntimeState.UNRESPONSIVE, detail="GET /status timed out after 3s")
    action = plan_deletion(CANCEL, silent, drained=False, waited=DRAIN_WAIT_LIMIT)
    assert action.kind is ActionKind.DELETE and action.reason == "DeletedWithoutDrain"
    assert "was running but did not answer its control endpoint for 120s" in action.message
    assert "GET /status timed out after 3s" in action.message and "not running" not in action.message


def _silent(state: RuntimeState, seconds: float, *, kubernetes: bool = False) -> tuple:
    desired = _desired()
    observed = ObservedRuntime(
        state=state,
        config_hash=desired.config_hash,
        detail="no answer from /healthz (ReadTimeout)",
        unresponsive_for=None if kubernetes else timedelta(seconds=seconds),
        backend_restarts_itself=kubernetes,
    )
    return desired, observed


def test_a_hung_local_runtime_is_waited_for_then_restarted_as_a_liveness_probe_would():
    liveness = LivenessPolicy(timeout=timedelta(seconds=30))
    desired, observed = _silent(RuntimeState.UNRESPONSIVE, 10)
    wait = plan_runtime(desired, observed, now=NOW, liveness=liveness)
    assert wait.kind is ActionKind.WAIT and wait.reason == "RuntimeUnresponsive" and wait.is_warning
    assert wait.requeue_after <= timedelta(seconds=5)
    desired, observed = _silent(RuntimeState.UNRESPONSIVE, 30)
    restart = plan_runtime(desired, observed, now=NOW, liveness=liveness)
    assert restart.kind is ActionKind.RESTART and restart.reason == "LivenessFailed" and restart.is_warning
    assert "has not answered its health check for 30s" in restart.message and "ReadTimeout" in restart.message
    assert restart.desired is desired


def test_the_unresponsive_message_is_stable_so_its_event_is_counted_not_repeated():
    desired, first = _silent(RuntimeState.UNRESPONSIVE, 3)
    _, later = _silent(RuntimeState.UNRESPONSIVE, 9)
    assert plan_runtime(desired, first, now=NOW).message == plan_runtime(desired, later, now=NOW).message


def test_on_kubernetes_a_silent_runtime_is_reported_and_left_to_the_kubelet():
    desired, observed = _silent(RuntimeState.UNRESPONSIVE, 0, kubernetes=True)
    action = plan_runtime(desired, observed, now=NOW)
    assert action.kind is ActionKind.WAIT and action.reason == "RuntimeUnresponsive"
    assert "liveness probe" in action.message


def test_a_runtime_that_never_answers_after_it_started_is_restarted_after_the_startup_timeout():
    liveness = LivenessPolicy(startup_timeout=timedelta(seconds=60))
    desired, early = _silent(RuntimeState.STARTING, 20)
    assert plan_runtime(desired, early, now=NOW, liveness=liveness).reason == "Starting"
    desired, late = _silent(RuntimeState.STARTING, 61)
    action = plan_runtime(desired, late, now=NOW, liveness=liveness)
    assert action.kind is ActionKind.RESTART and action.reason == "StartupTimedOut"


def test_why_a_runtime_exited_reaches_the_back_off_and_restart_messages():
    desired = _desired()
    crashed = ObservedRuntime(
        state=RuntimeState.EXITED,
        config_hash=desired.config_hash,
        consecutive_failures=3,
        exited_at=NOW,
        detail="exit code 1: DataError: marketData.dataDir: no candles for AVAX/USDT 1h",
    )
    backoff = plan_runtime(desired, crashed, now=NOW)
    assert backoff.reason == "BackOff" and backoff.is_warning
    assert "exited 3 times in a row: exit code 1: DataError: marketData.dataDir" in backoff.message
    restart = plan_runtime(desired, crashed, now=NOW + timedelta(minutes=10))
    assert restart.kind is ActionKind.RESTART and restart.is_warning
    assert "no candles for AVAX/USDT 1h" in restart.message


def test_restricting_a_runtimes_trading_is_a_warning_and_lifting_it_is_not():
    assert Action(ActionKind.SET_TRADING_MODE, "StaleData_Halt", "", trading_mode=TradingMode.HALTED).is_warning
    assert Action(ActionKind.SET_TRADING_MODE, "StaleData_SafeMode", "", trading_mode=TradingMode.SAFE).is_warning
    assert not Action(ActionKind.SET_TRADING_MODE, "Recovered", "", trading_mode=TradingMode.NORMAL).is_warning
