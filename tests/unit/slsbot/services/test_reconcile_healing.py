"""reconcile_strategy with the healing ladder, over an in-memory backend whose runtime honours POST /trading-mode:
the service is under test (one action per pass, status.healing, the Healing condition, events per rung change,
the measurements), not the backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from slsbot.api import ConditionStatus, RiskPolicy, Strategy, StrategyStatus, TradingAccount
from slsbot.domain.conditions import get_condition
from slsbot.domain.errors import RuntimeUnreachable
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.plan import Action, ActionKind, ObservedRuntime, RuntimeState
from slsbot.domain.runtime_spec import build_runtime_config
from slsbot.services.reconcile import reconcile_strategy

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class HealingRuntimeBackend:
    """One runtime that is ready, reports a health block, and takes the trading mode it is sent."""

    reconcile_ok: bool = True
    mode: str = "normal"
    refuse_pushes: int = 0
    config_hash: str | None = None
    executed: list[Action] = field(default_factory=list)

    def render_config(self, resolved):
        return build_runtime_config(resolved, state_path="/tmp/x.db", port=8000)

    def observe(self, namespace, name):
        health = {
            "checked_at": _iso(T0),
            "reconcile": {"ok": self.reconcile_ok, "problems": 0 if self.reconcile_ok else 1},
            "orders": {"consecutive_rejects": 0, "consecutive_failures": 0},
        }
        return ObservedRuntime(
            state=RuntimeState.READY,
            config_hash=self.config_hash,
            paused=False,
            runtime_status={"trading_mode": self.mode, "health": health, "equity": 10_000.0},
        )

    def execute(self, namespace, name, action):
        if action.kind is ActionKind.SET_TRADING_MODE and self.refuse_pushes:
            self.refuse_pushes -= 1
            raise RuntimeUnreachable("POST http://127.0.0.1:1/trading-mode failed: ConnectError")
        self.executed.append(action)
        if action.kind is ActionKind.SET_TRADING_MODE:
            self.mode = str(action.trading_mode)
        elif action.kind is ActionKind.UPDATE:
            self.config_hash = action.desired.config_hash


@dataclass
class RecordedMetrics:
    seen: list[tuple] = field(default_factory=list)

    def detected(self, cause, seconds):
        self.seen.append(("detected", cause, seconds))

    def recovered(self, cause, seconds):
        self.seen.append(("recovered", cause, seconds))

    def rung_entered(self, cause, rung):
        self.seen.append(("rung", cause, rung))


POLICIES = {
    "fast": RiskPolicy.model_validate(
        {"metadata": {"name": "fast"}, "spec": {"healing": {"recoverAfter": "30s", "rungTimeout": "1m"}}}
    )
}
ACCOUNTS = {
    "paper": TradingAccount.model_validate(
        {"metadata": {"name": "paper"}, "spec": {"exchange": "binance", "riskPolicyRef": {"name": "fast"}}}
    )
}


def _strategy(status: StrategyStatus | None = None) -> Strategy:
    return Strategy.model_validate(
        {
            "metadata": {"name": "btc", "namespace": "trading", "generation": 1},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            },
            "status": status.to_wire() if status else None,
        }
    )


def _pass(backend, status, now, metrics=None, signals=()):
    return reconcile_strategy(
        _strategy(status),
        accounts=ACCOUNTS,
        policies=POLICIES,
        backend=backend,
        now=now,
        healing_metrics=metrics,
        signals=signals,
    )


def _running(backend) -> StrategyStatus:
    result = _pass(backend, None, T0)
    assert [a.kind for a in backend.executed] == [ActionKind.UPDATE]  # it runs: the spec is rolled out
    return result.status


def test_a_state_mismatch_puts_the_runtime_in_safe_mode_once_then_back_to_normal_after_recover_after():
    backend, metrics = HealingRuntimeBackend(), RecordedMetrics()
    status = _running(backend)
    backend.reconcile_ok = False

    mismatch = _pass(backend, status, T0 + timedelta(seconds=1), metrics)
    assert [(a.kind, a.trading_mode) for a in backend.executed[1:]] == [(ActionKind.SET_TRADING_MODE, "safe")]
    assert backend.mode == "safe"
    assert mismatch.status.healing.rung == "SafeMode" and mismatch.status.healing.failure_class == "StateMismatch"
    healing = get_condition(mismatch.status.conditions, "Healing")
    assert healing.status == ConditionStatus.TRUE and healing.reason == "StateMismatch_SafeMode"
    assert mismatch.status.phase == "Degraded"
    trading = get_condition(mismatch.status.conditions, "Trading")
    assert trading.status == ConditionStatus.FALSE and trading.reason == "SafeMode"
    assert [(e.type, e.reason) for e in mismatch.events] == [("Warning", "StateMismatch_SafeMode")]
    assert ("detected", "StateMismatch", 1.0) in metrics.seen
    assert ("rung", "StateMismatch", "SafeMode") in metrics.seen

    # The next passes: nothing pushed again, no event again.
    again = _pass(backend, mismatch.status, T0 + timedelta(seconds=2), metrics)
    assert len(backend.executed) == 2 and again.events == []

    backend.reconcile_ok = True
    healthy = _pass(backend, again.status, T0 + timedelta(seconds=11), metrics)
    assert healthy.status.healing.healthy_since == T0 + timedelta(seconds=11)
    assert ("recovered", "StateMismatch", 10.0) in metrics.seen
    assert backend.mode == "safe"  # not before recoverAfter

    back = _pass(backend, healthy.status, T0 + timedelta(seconds=41), metrics)
    assert backend.mode == "normal" and back.status.healing is None
    healing = get_condition(back.status.conditions, "Healing")
    assert healing.status == ConditionStatus.FALSE and healing.reason == "Recovered"
    assert [e.reason for e in back.events] == ["Recovered"]
    settled = _pass(backend, back.status, T0 + timedelta(seconds=42), metrics)
    assert settled.status.phase == "Running" and settled.events == [] and len(backend.executed) == 3


def test_a_push_the_runtime_does_not_take_leaves_the_status_as_it_was_and_is_tried_again():
    backend = HealingRuntimeBackend()
    status = _running(backend)
    backend.reconcile_ok, backend.refuse_pushes = False, 1
    refused = _pass(backend, status, T0 + timedelta(seconds=1))
    assert refused.status.healing is None and backend.mode == "normal"
    assert [e.reason for e in refused.events] == ["RuntimeUnreachable"]
    assert refused.requeue_after == timedelta(seconds=5)
    retried = _pass(backend, refused.status, T0 + timedelta(seconds=6))
    assert backend.mode == "safe" and retried.status.healing.rung == "SafeMode"


def test_a_rollout_goes_before_the_ladder_which_decides_again_on_the_next_pass():
    backend = HealingRuntimeBackend()
    status = _running(backend)
    backend.reconcile_ok, backend.config_hash = False, "an-older-config"
    rolled = _pass(backend, status, T0 + timedelta(seconds=1))
    assert [a.kind for a in backend.executed[1:]] == [ActionKind.UPDATE]
    assert rolled.status.healing is None and rolled.events[0].reason == "ConfigChanged"
    healed = _pass(backend, rolled.status, T0 + timedelta(seconds=2))
    assert backend.executed[-1].kind is ActionKind.SET_TRADING_MODE and healed.status.healing.rung == "SafeMode"


def test_the_incident_rung_hands_its_signal_to_the_caller():
    backend = HealingRuntimeBackend()
    status = _running(backend)
    backend.reconcile_ok = False
    now = T0 + timedelta(seconds=1)
    result = _pass(backend, status, now)
    for _ in range(2):  # SafeMode -> Halt -> Incident, a rungTimeout (1m) apart
        now += timedelta(minutes=1)
        result = _pass(backend, result.status, now)
    assert result.status.healing.rung == "Incident" and backend.mode == "halted"
    (signal,) = result.signals
    assert signal.rule == "HealingStateMismatch" and signal.severity == 1
    assert signal.cause == "StateMismatch:trading/btc"


def test_a_severity_1_signal_halts_and_flattens_within_one_pass():
    backend = HealingRuntimeBackend()
    status = _running(backend)
    signal = IncidentSignal(
        cause="LiquidationRisk:trading/btc",
        severity=1,
        rule="LiquidationRisk",
        namespace="trading",
        objects=("Strategy/btc",),
        message="margin used 71% > 50%",
        runbook="runbooks/liquidation-risk.md",
        detected_at=T0,
    )
    result = _pass(backend, status, T0 + timedelta(seconds=1), signals=[signal])
    pushed = backend.executed[-1]
    assert pushed.kind is ActionKind.SET_TRADING_MODE and pushed.trading_mode == "halted" and pushed.flatten is True
    assert result.status.healing.rung == "Halt"
