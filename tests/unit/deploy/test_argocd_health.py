"""Argo CD's health checks run as Argo CD runs them, over statuses the operator writes.

Each check is run from deploy/argocd/argocd-cm-patch.yaml, the argocd-cm keys Argo CD reads: ``_common.lua`` and the
kind's own ``.lua`` as deploy/argocd/generate.py joins them (test_argocd_manifests.py fails when the patch is stale).

Argo CD runs a health script in gopher-lua, a Lua 5.1, with only the base and table libraries (no string, math, io
or os functions unless resource.customizations.useOpenLibs is set) and the live object as the global ``obj``.
``argocd_health`` does the same with lupa's Lua 5.1. Every status here comes from the operator's own reconcile code
(``services.reconcile``, ``services.rollout``, ``services.tuning``) over in-memory ports, stored as the operator's
status patch leaves it (no nulls), never written by hand; each script's every branch is reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

from slsbot.api import Experiment, RiskPolicy, Strategy, TradingAccount
from slsbot.api.base import ObjectStatus
from slsbot.api.resources import Resource
from slsbot.domain.admission import SecretSeen
from slsbot.domain.plan import ActionKind, ObservedRuntime, RuntimeState
from slsbot.domain.runtime_performance import PerformancePeriod, RuntimePerformance
from slsbot.domain.runtime_spec import build_runtime_config
from slsbot.domain.tuning_plan import FinalizeState, ObservedFinalize, ObservedTuning, ObservedWorkers, StudySummary
from slsbot.services.reconcile import (
    Catalog,
    ExperimentPorts,
    ReconcileResult,
    finalize_strategy,
    reconcile_account,
    reconcile_experiment,
    reconcile_policy,
    reconcile_strategy,
)

PATCH = Path(__file__).resolve().parents[3] / "deploy" / "argocd" / "argocd-cm-patch.yaml"
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing"}
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def argo_cd_lua(obj: dict[str, Any]) -> lua51.LuaRuntime:
    """A Lua 5.1 with what Argo CD opens for a health script (base and table) and ``obj`` as a global."""
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    lua.execute('getmetatable("").__index = nil')  # no string library: no ("text"):sub(...) either
    names = ("string", "math", "io", "os", "debug", "coroutine", "package", "require", "load", "loadstring")
    for name in (*names, "dofile", "loadfile"):
        lua.globals()[name] = None
    lua.globals().obj = lua.table_from(obj, recursive=True)
    return lua


@cache
def argocd_cm() -> dict[str, str]:
    """The health checks as Argo CD gets them: the data of the argocd-cm patch."""
    return yaml.safe_load(PATCH.read_text())["data"]


def argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) of ``obj`` by the health script of its kind, run as Argo CD runs it."""
    group = obj["apiVersion"].split("/")[0]
    script = argocd_cm()[f"resource.customizations.health.{group}_{obj['kind']}"]
    result = dict(argo_cd_lua(obj).execute(script))
    assert result["status"] in STATUSES, result
    assert isinstance(result.get("message"), str) and result["message"], result
    return result["status"], result["message"]


def live(resource: Resource[Any, Any], status: ObjectStatus | None, **metadata: Any) -> dict[str, Any]:
    """The object as the API server holds it after the operator's status patch (a merge patch: no nulls)."""
    body = resource.model_copy(update={"status": None}).to_wire()
    body["metadata"].update(metadata)
    if status is not None:
        body["status"] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body


def test_the_sandbox_refuses_what_argo_cd_does_not_open():
    lua = argo_cd_lua({"apiVersion": "slsbot.io/v1alpha1", "kind": "Strategy", "metadata": {"name": "x"}})
    assert lua.execute("return obj.metadata.name .. #obj.kind .. table.concat({'a', 'b'})") == "x8ab"
    for code in ("return obj.kind:sub(1, 3)", "return string.format('%s', obj.kind)", "return math.floor(1.5)"):
        with pytest.raises(lua51.LuaError):
            lua.execute(code)


# --- Strategy ---------------------------------------------------------------------------------------------------


@dataclass
class MemoryRuntimes:
    """The RuntimeBackend port in memory: a runtime is ready as soon as it is created, reporting ``figures``."""

    figures: dict[str, Any] = field(default_factory=lambda: {"equity": 10_000.0, "trade_count": 3})
    runtimes: dict[str, ObservedRuntime] = field(default_factory=dict)

    def render_config(self, resolved):
        return build_runtime_config(resolved, state_path="/tmp/state.db", port=8000)

    def observe(self, namespace: str, name: str) -> ObservedRuntime:
        return self.runtimes.get(name, ObservedRuntime())

    def execute(self, namespace: str, name: str, action) -> None:
        if action.kind in (ActionKind.CREATE, ActionKind.UPDATE, ActionKind.RESTART, ActionKind.SET_PAUSED):
            self.runtimes[name] = ObservedRuntime(
                state=RuntimeState.READY,
                config_hash=action.desired.config_hash,
                paused=action.desired.paused,
                runtime_status=dict(self.figures),
            )
        elif action.kind is ActionKind.DRAIN:
            drained = {"phase": "drained", "open_orders": 0, "open_positions": 0}
            self.runtimes[name] = ObservedRuntime(state=RuntimeState.READY, runtime_status=drained)
        elif action.kind is ActionKind.DELETE:
            self.runtimes.pop(name, None)

    def exit(self, name: str) -> None:
        before = self.runtimes[name]
        self.runtimes[name] = ObservedRuntime(
            state=RuntimeState.EXITED,
            config_hash=before.config_hash,
            restarts=1,
            consecutive_failures=1,
            exited_at=NOW,
            detail="the runtime exited with code 1",
        )


POLICIES = {"standard": RiskPolicy.model_validate({"metadata": {"name": "standard"}, "spec": {}})}
ACCOUNTS = {
    "paper": TradingAccount.model_validate(
        {"metadata": {"name": "paper"}, "spec": {"exchange": "binance", "riskPolicyRef": {"name": "standard"}}}
    )
}


def strategy(status=None, *, generation: int = 1, account: str = "paper", **spec: Any) -> Strategy:
    return Strategy.model_validate(
        {
            "metadata": {"name": "btc", "namespace": "slsbot", "generation": generation},
            "spec": {
                "accountRef": {"name": account},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
                **spec,
            },
            "status": status.to_wire() if status is not None else None,
        }
    )


def look(obj: Strategy, backend: MemoryRuntimes, **kw: Any) -> ReconcileResult:
    return reconcile_strategy(obj, accounts=ACCOUNTS, policies=POLICIES, backend=backend, now=NOW, **kw)


def running(backend: MemoryRuntimes, **spec: Any) -> Strategy:
    """A Strategy after two passes: its runtime created, then seen ready."""
    status = look(strategy(**spec), backend).status
    status = look(strategy(status, **spec), backend).status
    return strategy(status, **spec)


def test_a_strategy_the_operator_has_not_reported_on_is_progressing():
    assert argocd_health(live(strategy(), None)) == (
        "Progressing",
        "Waiting for the operator to report on the Strategy",
    )


def test_a_strategy_whose_runtime_is_being_created_is_progressing():
    first = look(strategy(), MemoryRuntimes())
    assert first.status.phase == "Progressing"
    health, message = argocd_health(live(strategy(), first.status))
    assert health == "Progressing" and message == first.status.conditions[-1].message


def test_a_strategy_whose_runtime_runs_the_current_spec_is_healthy():
    obj = running(MemoryRuntimes())
    assert obj.status.phase == "Running"
    assert argocd_health(live(obj, obj.status)) == ("Healthy", "the runtime runs the current spec")


def test_a_ready_strategy_that_takes_no_trades_now_is_healthy_and_says_why():
    backend = MemoryRuntimes()
    backend.figures |= {"idle_reason": "WarmingUp", "idle_message": "warming up: 12 of 50 candles read"}
    obj = running(backend)
    health, message = argocd_health(live(obj, obj.status))
    assert health == "Healthy"
    assert message == "the runtime runs the current spec; not trading now: warming up: 12 of 50 candles read"


def test_a_paused_strategy_is_suspended():
    obj = running(MemoryRuntimes(), paused=True)
    assert obj.status.phase == "Paused"
    assert argocd_health(live(obj, obj.status)) == ("Suspended", "paused: no new positions are opened")


def test_an_edited_strategy_the_operator_has_not_acted_on_is_progressing_even_if_it_was_healthy():
    obj = running(MemoryRuntimes())
    health, message = argocd_health(live(obj, obj.status, generation=2))
    assert (health, message) == ("Progressing", "Waiting for the operator to act on generation 2")


def test_a_strategy_waiting_for_its_account_is_progressing_naming_the_field():
    result = look(strategy(account="later"), MemoryRuntimes())
    assert result.status.phase == "Pending"
    health, message = argocd_health(live(strategy(account="later"), result.status))
    assert health == "Progressing"
    assert message == "spec.accountRef.name: TradingAccount 'later' does not exist"


def test_a_refused_strategy_spec_is_degraded_with_the_operators_message():
    catalog = Catalog(known_components={"ema_cross"})
    result = look(strategy(), MemoryRuntimes(), catalog=catalog)
    assert result.status.phase == "Failed"
    health, message = argocd_health(live(strategy(), result.status))
    assert health == "Degraded" and "spec.ensemble.members" in message and "sma_cross" in message


def test_a_strategy_whose_runtime_exited_is_degraded_while_it_is_restarted():
    backend = MemoryRuntimes()
    obj = running(backend)
    backend.exit("btc")
    result = look(obj, backend)
    assert result.status.phase == "Degraded" and result.action.kind is ActionKind.RESTART
    health, message = argocd_health(live(obj, result.status))
    assert health == "Degraded" and message == result.action.message


def test_a_strategy_the_healing_ladder_holds_in_safe_mode_is_degraded_with_the_ladders_message():
    backend = MemoryRuntimes()
    obj = running(backend)
    mismatch = {"checked_at": "2026-03-01T00:00:00Z", "reconcile": {"ok": False, "problems": 1}}
    figures = {**backend.runtimes["btc"].runtime_status, "trading_mode": "normal", "health": mismatch}
    backend.runtimes["btc"] = replace(backend.runtimes["btc"], runtime_status=figures)
    result = look(obj, backend)
    assert result.status.phase == "Degraded" and result.status.healing.rung == "SafeMode"
    healing = next(c for c in result.status.conditions if c.type == "Healing")
    assert argocd_health(live(obj, result.status)) == ("Degraded", healing.message)


def test_a_refused_edit_of_a_running_strategy_is_degraded_though_the_runtime_trades_on():
    backend = MemoryRuntimes()
    obj = running(backend)
    edited = strategy(obj.status, generation=2)
    result = look(edited, backend, catalog=Catalog(known_components={"ema_cross"}))
    ready = next(c for c in result.status.conditions if c.type == "Ready")
    assert ready.status == "True" and ready.reason == "RunningLastGoodConfig"
    health, message = argocd_health(live(edited, result.status))
    assert health == "Degraded" and "sma_cross" in message and "slsbot rolls out no new config" in message


def test_a_strategy_being_deleted_is_progressing_while_its_runtime_drains():
    backend = MemoryRuntimes()
    obj = running(backend)
    result = finalize_strategy(obj, backend=backend, drained=False, now=NOW, deletion_started=NOW)
    assert result.status.phase == "Terminating" and not result.done
    health, message = argocd_health(live(obj, result.status, deletionTimestamp="2026-03-01T00:00:00Z"))
    assert (health, message) == (
        "Progressing",
        "Being deleted: the runtime drains (spec.onDelete) before it is removed",
    )


# --- TradingAccount and RiskPolicy ------------------------------------------------------------------------------


class NoSuchSecret:
    """The CredentialSecrets port of a namespace without the account's Secret."""

    def operators_own(self, name: str) -> bool:
        return False

    def seen(self, namespace: str, name: str) -> SecretSeen:
        return SecretSeen(exists=False)


def account(**spec: Any) -> TradingAccount:
    return TradingAccount.model_validate(
        {"metadata": {"name": "live", "namespace": "slsbot", "generation": 3}, "spec": {"exchange": "binance", **spec}}
    )


def test_an_account_the_operator_has_not_validated_is_progressing():
    assert argocd_health(live(account(), None))[0] == "Progressing"
    unseen = account().kind_info.status_model()  # a status without a Ready condition yet, for this generation
    unseen.observed_generation = 3
    assert argocd_health(live(account(), unseen)) == (
        "Progressing",
        "Waiting for the operator to validate the TradingAccount",
    )


def test_a_valid_account_is_healthy_and_an_edit_not_yet_validated_is_progressing():
    status = reconcile_account(account(), now=NOW).status
    assert argocd_health(live(account(), status)) == ("Healthy", "the spec is valid")
    assert argocd_health(live(account(), status, generation=4))[0] == "Progressing"


def test_an_account_on_an_unknown_exchange_is_degraded_naming_the_field():
    status = reconcile_account(
        account(exchange="nowhere"), now=NOW, catalog=Catalog(known_exchanges={"binance"})
    ).status
    health, message = argocd_health(live(account(exchange="nowhere"), status))
    assert health == "Degraded" and message.startswith("spec.exchange: 'nowhere' is not a ccxt exchange id")


def test_an_account_waiting_for_its_credentials_secret_is_progressing_and_says_how_to_make_it():
    obj = account(mode="live", credentials={"secretRef": {"name": "binance-keys"}})
    status = reconcile_account(obj, now=NOW, catalog=Catalog(credential_secrets=NoSuchSecret())).status
    assert status.conditions[0].reason == "WaitingForDependency"
    health, message = argocd_health(live(obj, status))
    assert health == "Progressing" and "Secret 'binance-keys' does not exist" in message


def policy(**spec: Any) -> RiskPolicy:
    return RiskPolicy.model_validate({"metadata": {"name": "standard", "namespace": "slsbot"}, "spec": spec})


def test_a_valid_policy_is_healthy_and_its_kill_switch_suspended():
    status = reconcile_policy(policy(), now=NOW).status
    assert argocd_health(live(policy(), status)) == ("Healthy", "the spec is valid")
    killed = reconcile_policy(policy(killSwitch=True), now=NOW).status
    health, message = argocd_health(live(policy(killSwitch=True), killed))
    assert health == "Suspended" and message.startswith("kill switch on:") and "spec.killSwitch: false" in message


def test_a_contradictory_policy_is_degraded_naming_the_field_and_one_not_yet_looked_at_progressing():
    bad = policy(perTrade={"minPercent": 5, "maxPercent": 2})
    status = reconcile_policy(bad, now=NOW).status
    health, message = argocd_health(live(bad, status))
    assert health == "Degraded" and message.startswith("spec.perTrade.minPercent: 5.0 is above perTrade.maxPercent")
    assert argocd_health(live(bad, None))[0] == "Progressing"
    assert argocd_health(live(bad, status, generation=2))[0] == "Progressing"
    unseen = bad.kind_info.status_model()
    unseen.observed_generation = 1
    assert argocd_health(live(bad, unseen)) == ("Progressing", "Waiting for the operator to validate the RiskPolicy")


# --- Experiment: an A/B rollout -------------------------------------------------------------------------------------

T0 = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000


def variant(name: str, fast: int) -> Strategy:
    ready = {"type": "Ready", "status": "True", "reason": "RuntimeReady", "lastTransitionTime": "2026-03-01T00:00:00Z"}
    return Strategy.model_validate(
        {
            "metadata": {"name": name, "namespace": "slsbot", "generation": 1},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": fast}}]},
            },
            "status": {"phase": "Running", "observedGeneration": 1, "conditions": [ready]},
        }
    )


@dataclass
class Market:
    """The RolloutRuntimes and OwnedObjects ports in memory: two runtimes on one market clock, one period a candle
    hour, one closed trade a candle; the baseline's spec as a promotion rewrites it."""

    strategies: dict[str, Strategy] = field(
        default_factory=lambda: {"btc": variant("btc", 10), "cand": variant("cand", 20)}
    )
    allocation: dict[str, float] = field(default_factory=lambda: {"btc": 100.0, "cand": 0.0})
    clock: int | None = T0
    drawdown: float = 0.0
    unreachable: bool = False

    def performance(self, namespace: str, name: str, *, since: int) -> RuntimePerformance:
        if self.unreachable:
            from slsbot.domain.errors import RuntimeUnreachable

            raise RuntimeUnreachable(f"{name}: connection refused")
        periods = tuple(
            PerformancePeriod(ts, 10_000.0, self.allocation[name] * 100, 0.0)
            for ts in range(T0 + HOUR, (self.clock or T0) + 1, HOUR)
            if ts > since
        )
        return RuntimePerformance(
            allocation_percent=self.allocation[name],
            last_candle_ts=self.clock,
            periods=periods,
            closed_trades=len(periods),
            drawdown_percent=self.drawdown if name == "cand" else 0.0,
            breaker_level=0,
        )

    def set_allocation(self, namespace: str, name: str, percent: float | None) -> None:
        self.allocation[name] = 100.0 if percent is None else percent

    def apply_owned(self, resource, *, owner) -> None:
        raise AssertionError("an A/B rollout creates nothing")

    def replace_spec(self, resource) -> None:
        before = self.strategies[resource.name]
        # The Strategy's runtime rolled the new spec out at once: the operator reports it Ready at generation 2.
        ready = [c.model_copy(update={"observed_generation": 2}) for c in before.status.conditions]
        status = before.status.model_copy(update={"observed_generation": 2, "conditions": ready})
        self.strategies[resource.name] = before.model_copy(
            update={
                "spec": resource.spec,
                "metadata": before.metadata.model_copy(update={"generation": 2}),
                "status": status,
            }
        )

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.strategies.pop(name, None)


def ab(status=None, **controls: Any) -> Experiment:
    return Experiment.model_validate(
        {
            "metadata": {"name": "btc-ab", "namespace": "slsbot", "generation": 1},
            "spec": {
                "type": "ab",
                "strategyRef": {"name": "btc"},
                "variants": [
                    {"name": "baseline", "strategyRef": {"name": "btc"}},
                    {"name": "candidate", "strategyRef": {"name": "cand"}},
                ],
                "schedule": {"steps": [10, 50, 100], "stepInterval": "2h", "minTrades": 1},
                **controls,
            },
            "status": status.to_wire() if status is not None else None,
        }
    )


def look_ab(experiment: Experiment, market: Market) -> Experiment:
    result = reconcile_experiment(
        experiment,
        strategies=dict(market.strategies),
        accounts=ACCOUNTS,
        policies=POLICIES,
        now=NOW,
        ports=ExperimentPorts(rollout=market, owned=market),
    )
    return experiment.model_copy(update={"status": result.status})


def test_an_ab_rollout_waiting_for_its_first_candles_or_a_runtime_is_progressing():
    pending = look_ab(ab(), Market(clock=None))
    assert pending.status.phase == "Pending"
    health, message = argocd_health(live(pending, pending.status))
    assert health == "Progressing" and "waiting for both variants' runtimes to report a candle" in message
    unreachable = look_ab(ab(), Market(unreachable=True))
    health, message = argocd_health(live(unreachable, unreachable.status))
    assert health == "Progressing" and "waiting for the runtime of btc: btc: connection refused" in message


def test_an_ab_rollout_at_a_step_is_progressing_and_names_the_step():
    market = Market()
    experiment = look_ab(ab(), market)
    assert experiment.status.phase == "Progressing" and experiment.status.rollout.current_step_index == 0
    health, message = argocd_health(live(experiment, experiment.status))
    assert health == "Progressing" and message.startswith("step 1 of 3 (10 %): candidate cand trades 10 %")


def test_a_paused_ab_rollout_is_suspended_at_its_step():
    market = Market()
    experiment = look_ab(ab(), market)
    market.clock += HOUR
    paused = look_ab(ab(experiment.status, paused=True), market)
    assert paused.status.phase == "Paused"
    health, message = argocd_health(live(paused, paused.status))
    assert health == "Suspended" and message.startswith("paused at step 1 of 3 (10 %): no step moves")


def test_an_ab_rollout_promoted_is_healthy():
    market = Market()
    experiment = look_ab(ab(), market)
    for _ in range(3):  # Promoting, then Promoted once the baseline runs the candidate's logic
        experiment = look_ab(ab(experiment.status, promote=True), market)
    assert experiment.status.phase == "Promoted"
    health, message = argocd_health(live(experiment, experiment.status))
    assert health == "Healthy" and message.startswith("the A/B rollout is Promoted")


def test_an_ab_rollout_promoting_is_progressing():
    market = Market()
    experiment = look_ab(ab(), market)
    promoting = look_ab(ab(experiment.status, promote=True), market)
    assert promoting.status.phase == "Promoting"
    assert argocd_health(live(promoting, promoting.status))[0] == "Progressing"


@pytest.mark.parametrize("how", ["abort", "drawdown"])
def test_an_ab_rollout_aborted_or_rolled_back_is_degraded_with_why(how):
    market = Market()
    experiment = look_ab(ab(), market)
    market.clock += HOUR
    if how == "abort":
        experiment = look_ab(ab(experiment.status, abort=True), market)
        assert experiment.status.phase == "Aborted"
    else:
        market.drawdown = 50.0  # beyond the candidate's maxDrawdownPercent (20 by the policy's default)
        experiment = look_ab(ab(experiment.status), market)
        assert experiment.status.phase == "RolledBack"
    health, message = argocd_health(live(experiment, experiment.status))
    assert health == "Degraded" and "the candidate has no capital, the baseline its whole share" in message


def test_an_experiment_refused_or_without_its_controller_is_degraded_and_one_waiting_for_a_strategy_progressing():
    waiting = reconcile_experiment(ab(), strategies={}, now=NOW).status
    health, message = argocd_health(live(ab(), waiting))
    assert health == "Progressing" and "spec.strategyRef.name: Strategy 'btc' does not exist" in message
    market = Market()
    no_controller = reconcile_experiment(ab(), strategies=market.strategies, now=NOW).status
    health, message = argocd_health(live(ab(), no_controller))
    assert health == "Degraded" and "does not run experiments yet" in message
    assert argocd_health(live(ab(), None))[0] == "Progressing"
    assert argocd_health(live(ab(), no_controller, generation=2))[0] == "Progressing"
    bare = ab().kind_info.status_model()
    bare.observed_generation = 1
    assert argocd_health(live(ab(), bare)) == ("Progressing", "Waiting for the operator to start the Experiment")


# --- Experiment: a tuning run ---------------------------------------------------------------------------------------


@dataclass
class Workers:
    """The TuningRunner port in memory: a study whose trials finish, or whose workers fail, when the test says."""

    trials: int = 0
    worker_failures: int = 0
    finalized: bool = False

    def storage_problem(self) -> str | None:
        return None

    def default_data_dir(self) -> str | None:
        return "/data/default"

    def plan_problems(self, plan: dict[str, Any]) -> list[str]:
        return []

    def start_workers(self, run, count: int) -> None: ...

    def stop_workers(self, run) -> None: ...

    def start_finalize(self, run) -> None:
        self.finalized = True

    def observe(self, run) -> ObservedTuning:
        final = ObservedFinalize()
        if self.finalized:
            result = {"proposal": {"params": {"sma.fast": 14}}, "dsr": 0.99, "pbo": 0.1, "trialsCounted": 6}
            final = ObservedFinalize(FinalizeState.SUCCEEDED, result=result, report="/api/v1/experiments/t/report")
        workers = ObservedWorkers(running=0 if self.trials >= 6 else 2, failed=self.worker_failures, last_error="OOM")
        return ObservedTuning(StudySummary(complete=self.trials), workers, final)


class RefusingOwned:
    """OwnedObjects that cannot create the candidate (someone else's object has its name)."""

    def apply_owned(self, resource, *, owner) -> None:
        from slsbot.domain.errors import ConflictError

        raise ConflictError(f"{resource.kind} {resource.name} exists and is not owned by {owner.name}")

    def replace_spec(self, resource) -> None: ...

    def delete(self, kind: str, namespace: str, name: str) -> None: ...


def tuning(status=None, **spec: Any) -> Experiment:
    return Experiment.model_validate(
        {
            "metadata": {"name": "btc-tuning", "namespace": "slsbot", "uid": "uid-1", "generation": 1},
            "spec": {
                "type": "tuning",
                "strategyRef": {"name": "btc"},
                "searchSpace": [{"name": "sma.fast", "type": "int", "low": 5, "high": 20}],
                "budget": {"maxTrials": 6, "parallelism": 2},
                **spec,
            },
            "status": status.to_wire() if status is not None else None,
        }
    )


def look_tuning(experiment: Experiment, workers: Workers, minutes: int, owned=None, **spec: Any) -> Experiment:
    result = reconcile_experiment(
        experiment,
        strategies={"btc": variant("btc", 10)},
        accounts=ACCOUNTS,
        policies=POLICIES,
        now=NOW + timedelta(minutes=minutes),
        ports=ExperimentPorts(tuning=workers, owned=owned),
    )
    return tuning(result.status, **spec)


def test_a_tuning_run_is_progressing_until_it_completes_then_healthy():
    workers = Workers()
    experiment = look_tuning(tuning(), workers, 0)
    assert experiment.status.phase == "Tuning"
    health, message = argocd_health(live(experiment, experiment.status))
    assert health == "Progressing" and message.startswith("run 1: ")
    workers.trials = 6
    experiment = look_tuning(experiment, workers, 2)
    assert experiment.status.phase == "Finalizing"
    assert argocd_health(live(experiment, experiment.status)) == (
        "Progressing",
        "run 1: computing the walk-forward result",
    )
    experiment = look_tuning(experiment, workers, 3)
    assert experiment.status.phase == "Completed"
    promoted = next(c for c in experiment.status.conditions if c.type == "Promoted")
    assert promoted.status == "False" and promoted.reason == "Manual"  # promotion: manual is no failure
    health, message = argocd_health(live(experiment, experiment.status))
    assert health == "Healthy" and message.startswith("run 1 completed: proposal sma.fast=14 accepted")


def test_a_failed_tuning_run_or_promotion_is_degraded_with_why():
    workers = Workers(worker_failures=5)
    failed = look_tuning(tuning(), workers, 0)
    failed = look_tuning(failed, workers, 1)
    assert failed.status.phase == "Failed"
    health, message = argocd_health(live(failed, failed.status))
    assert health == "Degraded" and "tuning workers failed 5 times: OOM" in message
    workers = Workers()
    experiment = look_tuning(tuning(promotion="ab"), workers, 0, RefusingOwned(), promotion="ab")
    workers.trials = 6
    experiment = look_tuning(experiment, workers, 2, RefusingOwned(), promotion="ab")
    experiment = look_tuning(experiment, workers, 3, RefusingOwned(), promotion="ab")
    assert experiment.status.phase == "Completed"
    health, message = argocd_health(live(experiment, experiment.status))
    assert health == "Degraded" and "exists and is not owned by btc-tuning" in message
