"""reconcile_strategy / finalize_strategy over an in-memory backend: the service is under test, not the backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from slsbot.api import ConditionStatus, RiskPolicy, Strategy, StrategyStatus, TradingAccount
from slsbot.domain.conditions import get_condition
from slsbot.domain.errors import ConflictError
from slsbot.domain.plan import ActionKind, ObservedRuntime, RuntimeState
from slsbot.domain.runtime_spec import build_runtime_config
from slsbot.services.reconcile import (
    DEPENDENCY_SAFETY_REQUEUE,
    CachedConfigCheck,
    Catalog,
    finalize_strategy,
    reconcile_policy,
    reconcile_strategy,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class MemoryBackend:
    """Runs 'runtimes' as dict entries; becomes ready as soon as it is created."""

    runtimes: dict[str, ObservedRuntime] = field(default_factory=dict)
    executed: list[ActionKind] = field(default_factory=list)
    conflicts: int = 0

    def render_config(self, resolved):
        return build_runtime_config(resolved, state_path="/tmp/x.db", port=8000)

    def observe(self, namespace, name):
        return self.runtimes.get(name, ObservedRuntime())

    def execute(self, namespace, name, action):
        if self.conflicts:
            self.conflicts -= 1
            raise ConflictError("the object was modified")
        self.executed.append(action.kind)
        if action.kind in (ActionKind.CREATE, ActionKind.UPDATE, ActionKind.RESTART):
            self.runtimes[name] = ObservedRuntime(
                state=RuntimeState.READY,
                config_hash=action.desired.config_hash,
                paused=action.desired.paused,
                runtime_status={"equity": 10_000.0, "trade_count": 3, "open_positions": 1},
            )
        elif action.kind is ActionKind.DRAIN:  # as the runtime reports itself once its drain completed
            drained = {"phase": "drained", "open_orders": 0, "open_positions": 0}
            self.runtimes[name] = ObservedRuntime(state=RuntimeState.READY, runtime_status=drained)
        elif action.kind is ActionKind.DELETE:
            self.runtimes.pop(name, None)


ACCOUNTS = {"paper": TradingAccount.model_validate({"metadata": {"name": "paper"}, "spec": {"exchange": "binance"}})}


def _strategy(generation: int = 1, status: StrategyStatus | None = None, account: str = "paper") -> Strategy:
    return Strategy.model_validate(
        {
            "metadata": {"name": "btc", "generation": generation},
            "spec": {
                "accountRef": {"name": account},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            },
            "status": status.to_wire() if status else None,
        }
    )


def test_create_then_ready_on_the_next_pass():
    backend = MemoryBackend()
    first = reconcile_strategy(_strategy(), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW)
    assert backend.executed == [ActionKind.CREATE]
    assert first.status.phase == "Progressing"
    assert [e.reason for e in first.events] == ["Creating"]

    second = reconcile_strategy(
        _strategy(status=first.status), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW
    )
    assert backend.executed == [ActionKind.CREATE]  # nothing more to do
    assert second.status.phase == "Running"
    ready = get_condition(second.status.conditions, "Ready")
    assert ready is not None and ready.status == ConditionStatus.TRUE
    assert second.status.trade_count == 3
    assert second.status.observed_generation == 1


def test_reconcile_is_idempotent():
    backend = MemoryBackend()
    status = None
    for _ in range(5):
        status = reconcile_strategy(
            _strategy(status=status), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW
        ).status
    assert backend.executed == [ActionKind.CREATE]


def test_missing_account_reports_waiting_and_touches_nothing():
    backend = MemoryBackend()
    result = reconcile_strategy(_strategy(account="nope"), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW)
    assert backend.executed == []
    ready = get_condition(result.status.conditions, "Ready")
    assert ready.status == ConditionStatus.FALSE
    assert ready.reason == "WaitingForDependency"
    assert "spec.accountRef.name" in ready.message
    # No polling for the dependency: the account's appearance wakes the strategy (the operator's kopf indexes, the
    # supervisor's every pass); only a long safety requeue remains.
    assert result.requeue_after == DEPENDENCY_SAFETY_REQUEUE >= timedelta(minutes=5)


def test_conflict_is_a_requeue_not_a_crash():
    backend = MemoryBackend(conflicts=1)
    result = reconcile_strategy(_strategy(), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW)
    assert result.requeue_after is not None and result.requeue_after.total_seconds() == 0
    assert result.events[0].reason == "Conflict"
    retry = reconcile_strategy(_strategy(), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW)
    assert backend.executed == [ActionKind.CREATE]
    assert retry.status.phase == "Progressing"


def test_deletion_drains_then_deletes_then_is_done():
    backend = MemoryBackend()
    reconcile_strategy(_strategy(), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW)
    drain = finalize_strategy(_strategy(), backend=backend, drained=False)
    assert drain.action.kind is ActionKind.DRAIN and not drain.done
    delete = finalize_strategy(_strategy(), backend=backend, drained=True)
    assert delete.action.kind is ActionKind.DELETE and not delete.done
    done = finalize_strategy(_strategy(), backend=backend, drained=True)
    assert done.done
    assert backend.executed == [ActionKind.CREATE, ActionKind.DRAIN, ActionKind.DELETE]


def test_invalid_policy_status_names_the_field():
    policy = RiskPolicy.model_validate(
        {"metadata": {"name": "p", "generation": 4}, "spec": {"perTrade": {"minPercent": 9, "maxPercent": 3}}}
    )
    result = reconcile_policy(policy, now=NOW)
    ready = get_condition(result.status.conditions, "Ready")
    assert result.status.phase == "Invalid"
    assert ready.reason == "InvalidSpec"
    assert "spec.perTrade.minPercent" in ready.message
    assert result.status.observed_generation == 4


def test_deletion_waits_for_the_drain_then_warns_when_it_never_completes():
    backend = MemoryBackend()
    reconcile_strategy(_strategy(), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW)
    assert finalize_strategy(_strategy(), backend=backend, drained=False).action.kind is ActionKind.DRAIN
    backend.runtimes["btc"] = ObservedRuntime(
        state=RuntimeState.READY, runtime_status={"phase": "finished", "open_orders": 1}
    )  # still cancelling
    started = NOW
    waiting = finalize_strategy(
        _strategy(), backend=backend, drained=True, now=NOW + timedelta(seconds=20), deletion_started=started
    )
    assert waiting.action.reason == "WaitingForDrain" and not waiting.done
    assert waiting.events[0].type == "Normal" and waiting.requeue_after == timedelta(seconds=1)
    assert backend.executed == [ActionKind.CREATE, ActionKind.DRAIN]  # the runtime is kept meanwhile
    late = finalize_strategy(
        _strategy(), backend=backend, drained=True, now=NOW + timedelta(minutes=3), deletion_started=started
    )
    assert late.action.kind is ActionKind.DELETE and late.events[0].type == "Warning"
    assert late.events[0].reason == "DeletedWithoutDrain" and "did not complete" in late.events[0].message


def test_a_drained_runtime_is_reported_degraded_not_running():
    backend = MemoryBackend()
    first = reconcile_strategy(_strategy(), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW)
    runtime = backend.runtimes["btc"]
    backend.runtimes["btc"] = ObservedRuntime(
        state=RuntimeState.READY,
        config_hash=runtime.config_hash,
        paused=False,
        runtime_status={"phase": "drained", "open_orders": 0, "open_positions": 0},
    )
    result = reconcile_strategy(
        _strategy(status=first.status), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW
    )
    assert result.status.phase == "Degraded"
    ready = get_condition(result.status.conditions, "Ready")
    assert ready.status == ConditionStatus.FALSE and ready.reason == "RuntimeDrained"
    assert get_condition(result.status.conditions, "Degraded").status == ConditionStatus.TRUE
    assert backend.executed == [ActionKind.CREATE]


# --- the runtime's own config check, before anything is created ------------------------------------------------------


def _testnet_accounts() -> dict[str, TradingAccount]:
    return {
        "paper": TradingAccount.model_validate(
            {
                "metadata": {"name": "paper"},
                "spec": {"exchange": "binance", "mode": "testnet", "credentials": {"secretRef": {"name": "keys"}}},
            }
        )
    }


def test_a_config_the_runtime_would_refuse_is_invalid_spec_naming_the_field_and_nothing_runs():
    from slsbot_runtime.app import config_problems  # the runtime's own check, the one `slsbot runtime` makes

    backend = MemoryBackend()
    catalog = Catalog(check_config=CachedConfigCheck(config_problems))
    result = reconcile_strategy(
        _strategy(), accounts=_testnet_accounts(), policies={}, backend=backend, now=NOW, catalog=catalog
    )
    assert backend.executed == []
    assert result.status.phase == "Failed"
    ready = get_condition(result.status.conditions, "Ready")
    assert ready.reason == "InvalidSpec"
    assert ready.message.startswith("spec.marketData.source: a testnet account sends real orders to binance")
    assert result.events[0].type == "Warning" and "spec.marketData.source" in result.events[0].message


def test_config_problems_are_put_on_the_object_a_person_edits():
    problems = iter([["account.mode: paper only here"], ["risk.circuitBreaker.levels[1]: too deep"], ["weird"]])
    catalog = Catalog(check_config=lambda config: next(problems))
    policies = {"p": RiskPolicy.model_validate({"metadata": {"name": "p"}, "spec": {}})}
    accounts = {
        "paper": TradingAccount.model_validate(
            {"metadata": {"name": "paper"}, "spec": {"exchange": "binance", "riskPolicyRef": {"name": "p"}}}
        )
    }
    messages = []
    for _ in range(3):
        result = reconcile_strategy(
            _strategy(), accounts=accounts, policies=policies, backend=MemoryBackend(), now=NOW, catalog=catalog
        )
        messages.append(get_condition(result.status.conditions, "Ready").message)
    assert messages[0] == "spec.accountRef.name: TradingAccount 'paper' spec.mode: paper only here"
    assert messages[1] == "spec.accountRef.name: RiskPolicy 'p' spec.circuitBreaker.levels[1]: too deep"
    assert messages[2] == "spec: weird"


def test_the_config_check_runs_once_per_config():
    calls = []
    check = CachedConfigCheck(lambda config: calls.append(config) or [])
    backend = MemoryBackend()
    for _ in range(4):
        reconcile_strategy(
            _strategy(), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW, catalog=Catalog(check_config=check)
        )
    assert len(calls) == 1


# --- a runtime that runs on while its spec or a dependency is wrong --------------------------------------------------


def test_a_deleted_account_leaves_the_runtime_running_and_the_status_says_so():
    backend = MemoryBackend()
    first = reconcile_strategy(_strategy(), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW)
    second = reconcile_strategy(
        _strategy(status=first.status), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW
    )
    assert second.status.phase == "Running"
    gone = reconcile_strategy(_strategy(status=second.status), accounts={}, policies={}, backend=backend, now=NOW)
    assert backend.executed == [ActionKind.CREATE]  # nothing stopped, nothing rolled
    assert gone.status.phase == "Degraded"
    ready = get_condition(gone.status.conditions, "Ready")
    assert ready.status == ConditionStatus.TRUE and ready.reason == "RunningLastGoodConfig"
    assert "keeps trading on its last good config" in ready.message
    assert "TradingAccount 'paper' does not exist" in ready.message
    degraded = get_condition(gone.status.conditions, "Degraded")
    assert degraded.status == ConditionStatus.TRUE and degraded.reason == "WaitingForDependency"
    assert "no new config" in degraded.message and "still drains" in degraded.message
    assert gone.status.equity == 10_000.0 and gone.status.trade_count == 3  # figures still current
    assert gone.requeue_after == timedelta(seconds=10)


def test_an_invalid_edit_of_a_running_strategy_keeps_the_runtime_and_says_so():
    backend = MemoryBackend()
    first = reconcile_strategy(_strategy(), accounts=ACCOUNTS, policies={}, backend=backend, now=NOW)
    catalog = Catalog(known_components={"rsi_reversion"})  # sma_cross is now "unknown": the edit cannot apply
    bad = reconcile_strategy(
        _strategy(generation=2, status=first.status),
        accounts=ACCOUNTS,
        policies={},
        backend=backend,
        now=NOW,
        catalog=catalog,
    )
    assert backend.executed == [ActionKind.CREATE]
    assert bad.status.phase == "Degraded"
    assert get_condition(bad.status.conditions, "Degraded").reason == "InvalidSpec"
    assert bad.requeue_after is not None  # looked at again, so the figures stay current
