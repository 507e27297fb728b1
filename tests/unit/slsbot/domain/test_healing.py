"""decide_healing: every rung of every failure class, and the way back, decided with no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slsbot.api import Strategy, TradingAccount
from slsbot.api.health import FailureClass, HealingPolicy, HealingRung, HealingStatus, TradingMode
from slsbot.domain.healing import classify, decide_healing
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.plan import ActionKind, ObservedRuntime, RuntimeState
from slsbot.domain.resolve import resolve_strategy
from slsbot.domain.runtime_spec import build_runtime_config, desired_runtime

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
POLICY = HealingPolicy()  # staleAfterCandles 2, exchangeDownAfter 30s, rejectLimit 3, 3 restarts, rungTimeout 2m
RUNG_TIMEOUT = timedelta(minutes=2)
RESTART_GRACE = RUNG_TIMEOUT / 3


def _desired():
    account = TradingAccount.model_validate({"metadata": {"name": "paper"}, "spec": {"exchange": "binance"}})
    strategy = Strategy.model_validate(
        {
            "metadata": {"name": "btc"},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10}}]},
            },
        }
    )
    resolved = resolve_strategy(strategy, {"paper": account}, {})
    assert not isinstance(resolved, list)
    return desired_runtime(resolved, build_runtime_config(resolved, state_path="s.db", port=9000))


DESIRED = _desired()


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _health(now: datetime, **parts) -> dict:
    health = {
        "checked_at": _iso(now),
        "data": {"BTC/USDT": {"age_seconds": 10.0, "interval_seconds": 60.0, "stale": False}},
        "exchange": {"connected": True, "consecutive_errors": 0, "failing_since": None},
        "orders": {"rejects": 0, "consecutive_rejects": 0, "failures": 0, "consecutive_failures": 0},
        "reconcile": {"ok": True, "problems": 0},
        "models": None,
        "memory_bytes": 100 * 1024 * 1024,
        "memory_limit_bytes": None,
    }
    health.update(parts)
    return health


def _ready(now: datetime, mode: str = "normal", reason: str | None = None, restarts: int = 0, **parts):
    status = {"trading_mode": mode, "trading_mode_reason": reason, "health": _health(now, **parts)}
    return ObservedRuntime(
        state=RuntimeState.READY,
        config_hash=DESIRED.config_hash,
        paused=False,
        runtime_status=status,
        restarts=restarts,
    )


def _stale(now: datetime, age: float = 150.0) -> dict:
    return {"data": {"BTC/USDT": {"age_seconds": age, "interval_seconds": 60.0, "stale": True}}}


def _decide(observed, previous, now, policy=POLICY, **kwargs):
    return decide_healing(observed, previous, policy, desired=DESIRED, namespace="ns", name="btc", now=now, **kwargs)


# --- classification ---------------------------------------------------------------------------------------------


def test_a_healthy_runtime_is_left_alone():
    decision = _decide(_ready(T0), None, T0)
    assert decision.status is None and decision.action is None and decision.events == ()
    assert decision.condition is None


def test_stale_data_is_detected_past_stale_after_candles_and_its_fault_time_is_the_due_time():
    assert classify(_ready(T0, **_stale(T0, age=119.0)), POLICY, previous=None, now=T0) is None  # < 2 intervals
    fault = classify(_ready(T0, **_stale(T0, age=150.0)), POLICY, previous=None, now=T0)
    assert fault is not None and fault.failure_class == FailureClass.STALE_DATA
    assert fault.fault_at == T0 - timedelta(seconds=150)
    decision = _decide(_ready(T0, **_stale(T0, age=150.0)), None, T0)
    assert decision.detection_seconds == pytest.approx(150.0)


def test_short_intervals_are_stale_only_past_stale_after_min():
    """A paced replay's candles come every 0.1 s: two intervals late is a pause, not a dead feed."""
    fast = {"data": {"BTC/USDT": {"age_seconds": 8.0, "interval_seconds": 0.1, "stale": True}}}
    assert classify(_ready(T0, **fast), POLICY, previous=None, now=T0) is None  # staleAfterMin 10s by default
    slower = {"data": {"BTC/USDT": {"age_seconds": 12.0, "interval_seconds": 0.1, "stale": True}}}
    fault = classify(_ready(T0, **slower), POLICY, previous=None, now=T0)
    assert fault is not None and fault.failure_class == FailureClass.STALE_DATA and "stale after 10s" in fault.message


def test_the_exchange_counts_as_unreachable_only_after_exchange_down_after():
    since = T0 - timedelta(seconds=20)
    down = {"connected": False, "consecutive_errors": 9, "failing_since": _iso(since), "last_error": "NetworkError"}
    assert classify(_ready(T0, exchange=down), POLICY, previous=None, now=T0) is None
    later = T0 + timedelta(seconds=10)
    fault = classify(_ready(later, exchange=down), POLICY, previous=None, now=later)
    assert fault is not None and fault.failure_class == FailureClass.EXCHANGE_UNREACHABLE
    assert fault.fault_at == since
    assert "NetworkError" in fault.message


def test_memory_above_the_policy_limit_or_ninety_percent_of_the_container_is_exhaustion():
    big = 600 * 1024 * 1024
    limited = HealingPolicy(memory_limit_mb=512)
    fault = classify(_ready(T0, memory_bytes=big), limited, previous=None, now=T0)
    assert fault is not None and fault.failure_class == FailureClass.RESOURCE_EXHAUSTION
    assert classify(_ready(T0, memory_bytes=big), POLICY, previous=None, now=T0) is None  # no limit known
    container = {"memory_bytes": big, "memory_limit_bytes": 650 * 1024 * 1024}
    fault = classify(_ready(T0, **container), POLICY, previous=None, now=T0)
    assert fault is not None and fault.failure_class == FailureClass.RESOURCE_EXHAUSTION


def test_degraded_models_are_a_fault_of_their_own():
    models = {"degraded": True, "drifted": ["lgbm"], "accuracy": 0.4, "baseline_accuracy": 0.6}
    fault = classify(_ready(T0, models=models), POLICY, previous=None, now=T0)
    assert fault is not None and fault.failure_class == FailureClass.MODEL_DEGRADED and "lgbm" in fault.message


def test_drifted_models_go_to_safe_mode_at_once_since_a_restart_cannot_cure_drift():
    """The runtime retrains a drifted model itself; a restart judges the drift again on the candles it replays (and
    kills a retrain under way), so drift stops entries without one; the drift passing brings the runtime back."""
    drifted = {"degraded": True, "drifted": ["logit"], "accuracy": None, "baseline_accuracy": None}
    decision = _decide(_ready(T0, models=drifted), None, T0)
    assert decision.status.failure_class == FailureClass.MODEL_DEGRADED
    assert decision.status.rung == HealingRung.SAFE_MODE and decision.status.restarts_at_fault == 0
    assert decision.action.kind is ActionKind.SET_TRADING_MODE and decision.action.trading_mode == TradingMode.SAFE
    assert decision.condition[1] == "ModelDegraded_SafeMode" and "drifted: logit" in decision.condition[2]
    still = _decide(_ready(T0 + RESTART_GRACE, "safe", models=drifted), decision.status, T0 + RESTART_GRACE)
    assert still.action is None and still.status.rung == HealingRung.SAFE_MODE  # never a restart
    over = {"degraded": False, "drifted": [], "accuracy": None, "baseline_accuracy": None}
    healthy = _decide(_ready(T0 + RESTART_GRACE, "safe", models=over), still.status, T0 + RESTART_GRACE)
    assert healthy.status.healthy_since == T0 + RESTART_GRACE
    back_at = T0 + RESTART_GRACE + timedelta(minutes=2)  # recoverAfter
    back = _decide(_ready(back_at, "safe", models=over), healthy.status, back_at)
    assert back.status is None and back.condition[1] == "Recovered"
    assert back.action.kind is ActionKind.SET_TRADING_MODE and back.action.trading_mode == TradingMode.NORMAL


def test_models_degraded_without_drift_are_restarted_first():
    """A failed retrain or load, or a stale model: a restart starts the training worker and the registry afresh."""
    failed = {"degraded": True, "drifted": [], "accuracy": None, "baseline_accuracy": None}
    decision = _decide(_ready(T0, models=failed), None, T0)
    assert decision.status.rung == HealingRung.RESTART and decision.action.kind is ActionKind.RESTART
    assert decision.condition[1] == "ModelDegraded_Restart"


def test_safety_comes_first_a_mismatch_wins_over_stale_data_and_rejects():
    observed = _ready(
        T0,
        reconcile={"ok": False, "problems": 2, "last_problem": "position differs"},
        orders={"consecutive_rejects": 5, "consecutive_failures": 0},
        **_stale(T0),
    )
    fault = classify(observed, POLICY, previous=None, now=T0)
    assert fault is not None and fault.failure_class == FailureClass.STATE_MISMATCH
    assert fault.first_rung is HealingRung.SAFE_MODE


# --- the ladder of a restartable class: Restart x3 -> SafeMode -> Halt -> Incident ------------------------------


def test_stale_data_climbs_restart_safe_mode_halt_incident_with_an_event_per_rung():
    now, previous = T0, None
    restarts = []
    decision = _decide(_ready(now, **_stale(now)), previous, now)
    assert decision.status.rung == HealingRung.RESTART
    assert decision.condition == (True, "StaleData_Restart", decision.condition[2])
    assert [e.reason for e in decision.events] == ["StaleData_Restart"]
    while decision.action is not None and decision.action.kind is ActionKind.RESTART:
        restarts.append(now)
        previous = decision.status
        # Within the grace after a restart nothing more happens, and no new event.
        quiet = _decide(_ready(now + timedelta(seconds=5), **_stale(now)), previous, now + timedelta(seconds=5))
        assert quiet.action is None and quiet.events == ()
        now += RESTART_GRACE
        decision = _decide(_ready(now, **_stale(now)), previous, now)
    assert len(restarts) == 3
    assert decision.status.rung == HealingRung.SAFE_MODE
    assert decision.status.trading_mode == TradingMode.SAFE
    assert decision.action.kind is ActionKind.SET_TRADING_MODE and decision.action.trading_mode == TradingMode.SAFE
    assert [e.reason for e in decision.events] == ["StaleData_SafeMode"]
    assert decision.rung_entered is HealingRung.SAFE_MODE

    previous = decision.status
    runtime_safe = _ready(now + timedelta(seconds=30), mode="safe", **_stale(now))
    held = _decide(runtime_safe, previous, now + timedelta(seconds=30))
    assert held.status.rung == HealingRung.SAFE_MODE and held.action is None and held.events == ()

    now += RUNG_TIMEOUT
    decision = _decide(_ready(now, mode="safe", **_stale(now)), previous, now)
    assert decision.status.rung == HealingRung.HALT
    assert decision.action.trading_mode == TradingMode.HALTED and decision.action.flatten is False
    assert decision.condition[1] == "StaleData_Halt"

    previous = decision.status
    now += RUNG_TIMEOUT
    decision = _decide(_ready(now, mode="halted", **_stale(now)), previous, now)
    assert decision.status.rung == HealingRung.INCIDENT
    assert decision.action is None  # halted already
    (signal,) = decision.signals
    assert signal.rule == "HealingStaleData" and signal.severity == 2
    assert signal.cause == "StaleData:ns/btc" and signal.runbook == "runbooks/stale-data.md"
    assert signal.objects == ("Strategy/btc",)
    later = _decide(_ready(now + RUNG_TIMEOUT, mode="halted", **_stale(now)), decision.status, now + RUNG_TIMEOUT)
    # one event on entering, but the signal on every pass at this rung: its incident's cause is still there (without
    # it the incident would clear and resolve itself while the runtime stands halted)
    assert later.status.rung == HealingRung.INCIDENT and later.events == ()
    assert [s.cause for s in later.signals] == [signal.cause]


def test_halt_flattens_only_where_the_policy_says():
    policy = HealingPolicy(flatten_on_halt=True)
    previous = HealingStatus(
        failure_class=FailureClass.EXCHANGE_UNREACHABLE,
        cause="ExchangeUnreachable",
        rung=HealingRung.SAFE_MODE,
        trading_mode=TradingMode.SAFE,
        detected_at=T0,
        rung_since=T0,
    )
    down = {"connected": False, "failing_since": _iso(T0 - timedelta(minutes=1))}
    now = T0 + RUNG_TIMEOUT
    decision = _decide(_ready(now, mode="safe", exchange=down), previous, now, policy=policy)
    assert decision.status.rung == HealingRung.HALT
    assert decision.action.trading_mode == TradingMode.HALTED and decision.action.flatten is True
    later = now + RUNG_TIMEOUT
    incident = _decide(_ready(later, mode="halted", exchange=down), decision.status, later, policy=policy)
    (signal,) = incident.signals
    assert signal.severity == 1 and signal.actions == ("CancelOrders", "Flatten", "Halt")


def test_restarts_wait_for_the_runtime_to_be_ready_again():
    decision = _decide(_ready(T0, **_stale(T0)), None, T0)
    assert decision.action.kind is ActionKind.RESTART
    later = T0 + RESTART_GRACE / 2
    starting = ObservedRuntime(state=RuntimeState.STARTING, consecutive_failures=1, restarts=1)
    waiting = _decide(starting, decision.status, later)
    # Killed and started again by the ladder: no verdict (not a crash), no second restart while it starts (within
    # the restart's grace; past it, see test_a_runtime_the_ladder_restarted_that_stays_not_ready...).
    assert waiting.action is None and waiting.status == decision.status


# --- safety first: StateMismatch, ExecutionErrors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "failure_class"),
    [
        ({"reconcile": {"ok": False, "problems": 1, "last_problem": "order 7 unknown"}}, "StateMismatch"),
        ({"orders": {"consecutive_rejects": 3, "consecutive_failures": 0}}, "ExecutionErrors"),
        ({"orders": {"consecutive_rejects": 0, "consecutive_failures": 4}}, "ExecutionErrors"),
    ],
)
def test_a_mismatch_or_repeated_rejects_stop_entries_at_once_without_a_restart(parts, failure_class):
    decision = _decide(_ready(T0, **parts), None, T0)
    assert decision.status.rung == HealingRung.SAFE_MODE
    assert decision.action.kind is ActionKind.SET_TRADING_MODE and decision.action.trading_mode == TradingMode.SAFE
    assert decision.condition[1] == f"{failure_class}_SafeMode"


def test_a_runtime_that_put_itself_in_safe_mode_is_kept_there_and_classified_by_its_reason():
    observed = _ready(T0, mode="safe", reason="reconcile mismatch: position BTC/USDT 0.1 vs 0.0")
    decision = _decide(observed, None, T0)
    assert decision.status.failure_class == FailureClass.STATE_MISMATCH
    assert decision.status.rung == HealingRung.SAFE_MODE
    assert decision.action is None  # it is in safe mode already: nothing to push
    rejects = _decide(_ready(T0, mode="safe", reason="3 orders in a row rejected or failed"), None, T0)
    assert rejects.status.failure_class == FailureClass.EXECUTION_ERRORS
    books = _decide(_ready(T0, mode="safe", reason="the books disagree with the exchange: BTC 0.1 vs 0"), None, T0)
    assert books.status.failure_class == FailureClass.STATE_MISMATCH


def test_a_runtime_holding_its_entries_for_a_key_rotation_is_not_a_fault():
    holding = _ready(T0, mode="safe", reason="credential rotation")
    decision = _decide(holding, None, T0)
    assert decision.status is None and decision.action is None  # healthy: nothing recorded, nothing pushed
    unexplained = _decide(_ready(T0, mode="safe", reason="something else"), None, T0)
    assert unexplained.status is not None and unexplained.status.failure_class == FailureClass.STATE_MISMATCH


# --- crashes: plan_runtime's crash-loop backoff is the restart rung ---------------------------------------------


def test_crashes_are_restarted_by_the_plan_and_climb_to_safe_mode_by_the_restarts_seen():
    exited = ObservedRuntime(
        state=RuntimeState.EXITED, consecutive_failures=1, restarts=0, exited_at=T0, detail="killed by SIGKILL"
    )
    now = T0 + timedelta(milliseconds=400)
    decision = _decide(exited, None, now)
    assert decision.status.failure_class == FailureClass.CRASHED and decision.status.rung == HealingRung.RESTART
    assert decision.action is None  # plan_runtime restarts it, with its backoff
    assert decision.detection_seconds == pytest.approx(0.4)
    previous = decision.status
    for restarts in (1, 2):
        again = ObservedRuntime(state=RuntimeState.EXITED, consecutive_failures=restarts + 1, restarts=restarts)
        decision = _decide(again, previous, now)
        assert decision.status.rung == HealingRung.RESTART and decision.status.attempts == restarts
        previous = decision.status
    third = ObservedRuntime(state=RuntimeState.EXITED, consecutive_failures=4, restarts=3)
    decision = _decide(third, previous, now)
    assert decision.status.rung == HealingRung.SAFE_MODE and decision.status.trading_mode == TradingMode.SAFE
    assert decision.action is None  # not running: pushed once it is ready
    back = _ready(now + timedelta(seconds=5), restarts=3)
    pushed = _decide(back, decision.status, now + timedelta(seconds=5))
    assert pushed.action.kind is ActionKind.SET_TRADING_MODE and pushed.action.trading_mode == TradingMode.SAFE


def test_an_unresponsive_runtime_is_a_crash_whose_fault_began_when_it_fell_silent():
    silent = ObservedRuntime(state=RuntimeState.UNRESPONSIVE, unresponsive_for=timedelta(seconds=3), detail="timeout")
    decision = _decide(silent, None, T0)
    assert decision.status.failure_class == FailureClass.CRASHED
    assert decision.status.fault_at == T0 - timedelta(seconds=3)


# --- severity signals ---------------------------------------------------------------------------------------------


def _signal(severity: int, rule: str) -> IncidentSignal:
    return IncidentSignal(
        cause=f"{rule}:ns/btc",
        severity=severity,
        rule=rule,
        namespace="ns",
        objects=("Strategy/btc",),
        message=f"{rule} above its threshold",
        runbook=f"runbooks/{rule.lower()}.md",
        detected_at=T0,
    )


def test_a_severity_1_signal_halts_at_once_flattening_per_flatten_on_critical():
    decision = _decide(_ready(T0), None, T0, signals=[_signal(1, "LiquidationRisk")], flatten_on_critical=True)
    assert decision.status.rung == HealingRung.HALT and decision.status.cause == "LiquidationRisk"
    assert decision.action.trading_mode == TradingMode.HALTED and decision.action.flatten is True
    assert decision.condition[1] == "LiquidationRisk_Halt"
    kept = _decide(_ready(T0), None, T0, signals=[_signal(1, "ConnectionLost")], flatten_on_critical=False)
    assert kept.status.failure_class == FailureClass.EXCHANGE_UNREACHABLE and kept.action.flatten is False


def test_a_severity_2_signal_pauses_the_contributor_in_safe_mode_and_severity_3_does_nothing():
    decision = _decide(_ready(T0), None, T0, signals=[_signal(2, "Drawdown")])
    assert decision.status.rung == HealingRung.SAFE_MODE and decision.action.trading_mode == TradingMode.SAFE
    assert _decide(_ready(T0), None, T0, signals=[_signal(3, "Slippage")]).status is None


def test_a_signal_raises_a_running_ladder_and_keeps_its_class():
    decision = _decide(_ready(T0, **_stale(T0)), None, T0)
    later = T0 + timedelta(seconds=5)
    raised = _decide(_ready(later, **_stale(later)), decision.status, later, signals=[_signal(1, "StateMismatch")])
    assert raised.status.rung == HealingRung.HALT and raised.status.cause == "StaleData"
    assert [e.reason for e in raised.events] == ["StaleData_Halt"]


# --- the way back -------------------------------------------------------------------------------------------------


def _safe_record() -> HealingStatus:
    return HealingStatus(
        failure_class=FailureClass.STALE_DATA,
        cause="StaleData",
        rung=HealingRung.SAFE_MODE,
        trading_mode=TradingMode.SAFE,
        detected_at=T0,
        rung_since=T0,
    )


def test_back_to_normal_after_recover_after_healthy_measuring_the_recovery():
    now = T0 + timedelta(seconds=20)
    first = _decide(_ready(now, mode="safe"), _safe_record(), now)
    assert first.status.healthy_since == now and first.recovery_seconds == pytest.approx(20.0)
    assert first.action is None and [e.reason for e in first.events] == ["Healthy"]
    assert first.condition[0] is True  # still on the ladder until recoverAfter has passed
    almost = now + timedelta(seconds=119)
    waiting = _decide(_ready(almost, mode="safe"), first.status, almost)
    assert waiting.status is not None and waiting.recovery_seconds is None and waiting.events == ()
    done = now + timedelta(minutes=2)
    back = _decide(_ready(done, mode="safe"), waiting.status, done)
    assert back.status is None
    assert back.action.kind is ActionKind.SET_TRADING_MODE and back.action.trading_mode == TradingMode.NORMAL
    assert back.condition[:2] == (False, "Recovered")
    assert [e.reason for e in back.events] == ["Recovered"]


def test_a_fault_while_recovering_restarts_the_clock():
    now = T0 + timedelta(seconds=20)
    first = _decide(_ready(now, mode="safe"), _safe_record(), now)
    relapse = now + timedelta(seconds=60)
    again = _decide(_ready(relapse, mode="safe", **_stale(relapse)), first.status, relapse)
    assert again.status.healthy_since is None and again.status.rung == HealingRung.SAFE_MODE


def test_the_way_back_never_lifts_a_halt_the_ladder_did_not_order():
    recovering = _safe_record().model_copy(update={"healthy_since": T0})
    done = T0 + timedelta(minutes=3)
    back = _decide(_ready(done, mode="halted", reason="kill switch"), recovering, done)
    assert back.status is None and back.action is None


def test_the_ladder_never_pushes_a_milder_mode_over_a_stricter_one():
    halted_by_someone = _ready(T0, mode="halted", reconcile={"ok": False, "problems": 1})
    decision = _decide(halted_by_someone, None, T0)
    assert decision.status.rung == HealingRung.SAFE_MODE and decision.action is None


def test_a_runtime_still_starting_gives_no_verdict():
    starting = ObservedRuntime(state=RuntimeState.STARTING)
    decision = _decide(starting, _safe_record(), T0 + timedelta(minutes=5))
    assert decision.status == _safe_record() and decision.action is None and decision.events == ()


def test_a_long_last_error_is_cut_so_the_status_stays_valid():
    exited = ObservedRuntime(state=RuntimeState.EXITED, consecutive_failures=1, exited_at=T0, detail="x" * 5000)
    decision = _decide(exited, None, T0)
    assert len(decision.status.message) <= 1000
    HealingStatus.model_validate(decision.status.model_dump())
    again = _decide(exited, decision.status, T0 + timedelta(seconds=1))
    HealingStatus.model_validate(again.status.model_dump())


def test_an_exchange_still_disconnected_below_the_threshold_is_not_healthy_yet():
    previous = HealingStatus(
        failure_class=FailureClass.EXCHANGE_UNREACHABLE,
        cause="ExchangeUnreachable",
        rung=HealingRung.RESTART,
        attempts=1,
        detected_at=T0,
        rung_since=T0,
        last_action_at=T0,
    )
    now = T0 + timedelta(seconds=10)
    restarted = _ready(now, exchange={"connected": False, "failing_since": _iso(now - timedelta(seconds=5))})
    decision = _decide(restarted, previous, now)
    assert decision.status == previous and decision.recovery_seconds is None  # no verdict: measured afresh
    connected = _decide(_ready(now), previous, now)
    assert connected.status.healthy_since == now and connected.recovery_seconds == pytest.approx(10.0)


def test_a_runtime_the_ladder_restarted_that_stays_not_ready_has_not_healed_and_the_ladder_goes_on():
    """An exchange it cannot reach keeps a restarted runtime connecting (not ready) for as long as the outage lasts:
    the ladder restarts it again, then climbs, once it has been not ready for ``rungTimeout / restartsPerRung``."""
    policy = HealingPolicy(exchange_down_after="1s", restarts_per_rung=2, rung_timeout="10s")
    grace = timedelta(seconds=5)
    down = {"connected": False, "consecutive_errors": 3, "failing_since": _iso(T0 - timedelta(seconds=2))}
    first = _decide(_ready(T0, exchange=down), None, T0, policy)
    assert first.action.kind is ActionKind.RESTART and first.status.rung == HealingRung.RESTART

    def connecting(for_: timedelta) -> ObservedRuntime:
        return ObservedRuntime(state=RuntimeState.STARTING, restarts=1, detail="connecting", not_ready_for=for_)

    waiting = _decide(connecting(grace - timedelta(seconds=1)), first.status, T0 + grace - timedelta(seconds=1), policy)
    assert waiting.action is None and waiting.status == first.status  # still within the restart's grace
    again = _decide(connecting(grace), first.status, T0 + grace, policy)
    assert again.action.kind is ActionKind.RESTART and again.status.attempts == 2 and again.events == ()
    assert again.condition[1] == "ExchangeUnreachable_Restart" and "not ready 5s after it started" in again.condition[2]
    safe = _decide(connecting(grace), again.status, T0 + 2 * grace, policy)
    assert safe.status.rung == HealingRung.SAFE_MODE and safe.status.trading_mode == TradingMode.SAFE
    assert [e.reason for e in safe.events] == ["ExchangeUnreachable_SafeMode"]
    assert safe.action is None  # no push to a runtime that is not ready: it gets safe mode once it is
    halt = _decide(connecting(3 * grace), safe.status, T0 + 4 * grace, policy)
    assert halt.status.rung == HealingRung.HALT
    back = _decide(_ready(T0 + timedelta(seconds=40)), halt.status, T0 + timedelta(seconds=40), policy)
    assert back.status.healthy_since is not None and back.action.trading_mode == TradingMode.HALTED


def test_a_runtime_started_again_for_another_reason_gets_its_grace_before_the_ladder_judges_it():
    """The ladder restarted it long ago; a new config started it again a moment ago (or the backend does not measure
    how long it has not been ready): still starting, no verdict."""
    policy = HealingPolicy(restarts_per_rung=1, rung_timeout="10s")
    safe = HealingStatus(
        failure_class=FailureClass.RESOURCE_EXHAUSTION,
        cause="ResourceExhaustion",
        rung=HealingRung.SAFE_MODE,
        trading_mode=TradingMode.SAFE,
        detected_at=T0,
        rung_since=T0,
        last_action_at=T0 - timedelta(seconds=10),
    )
    now = T0 + timedelta(seconds=30)
    for not_ready_for in (timedelta(seconds=2), None):
        starting = ObservedRuntime(state=RuntimeState.STARTING, not_ready_for=not_ready_for)
        decision = _decide(starting, safe, now, policy)
        assert decision.status == safe and decision.action is None and decision.events == ()
