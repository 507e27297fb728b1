"""The account risk pass over an in-memory backend (the port, not the pass, is stood in for): which runtimes are under
a policy, idempotent pushes (on change or before expiry), unreachable runtimes, kill-switch-only pushes for
``scope: strategy`` and their lifting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slsbot.api import RiskPolicy, Strategy, TradingAccount
from slsbot.domain.errors import RuntimeUnreachable
from slsbot.services.account_risk import AccountRiskSettings, HeadroomPushes, account_risk_pass

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = AccountRiskSettings(ttl=timedelta(seconds=10))


class Runtimes:
    def __init__(self, statuses: dict[str, dict[str, Any]]) -> None:
        self.statuses = statuses
        self.pushed: list[tuple[str, dict[str, Any]]] = []
        self.down: set[str] = set()

    def runtime_status(self, namespace: str, name: str) -> dict[str, Any]:
        if name in self.down:
            raise RuntimeUnreachable(f"GET http://127.0.0.1:1/status failed ({name})")
        return self.statuses[name]

    def push_headroom(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if name in self.down:
            raise RuntimeUnreachable(f"POST http://127.0.0.1:1/headroom failed ({name})")
        self.pushed.append((name, body))
        return {**body, "expired": False}


def status(btc: float, equity: float = 10_000.0) -> dict[str, Any]:
    return {
        "equity": equity,
        "exposure": {"BTC/USDT": btc} if btc else {},
        "total_exposure": btc,
        "pnl_today": 0.0,
        "equity_day_start": equity,
        "drawdown_pct": 0.0,
        "allocation": {"percent": 50.0, "source": "spec", "specPercent": 50.0},
        "heartbeat": "2026-01-01T00:00:00Z",
    }


def objects(scope: str = "account", kill: bool = False):
    policy = RiskPolicy.model_validate(
        {"metadata": {"name": "acct", "namespace": "t"}, "spec": {"scope": scope, "killSwitch": kill}}
    )
    account = TradingAccount.model_validate(
        {
            "metadata": {"name": "paper", "namespace": "t"},
            "spec": {"exchange": "binance", "riskPolicyRef": {"name": "acct"}},
        }
    )
    other = TradingAccount.model_validate(
        {"metadata": {"name": "solo", "namespace": "t"}, "spec": {"exchange": "binance"}}
    )

    def strategy(name: str, account: str) -> Strategy:
        return Strategy.model_validate(
            {
                "metadata": {"name": name, "namespace": "t"},
                "spec": {
                    "accountRef": {"name": account},
                    "symbols": ["BTC/USDT"],
                    "allocationPercent": 50,
                    "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
                },
            }
        )

    strategies = [strategy("a", "paper"), strategy("b", "paper"), strategy("c", "solo")]
    return [policy], {"t": {"paper": account, "solo": other}}, strategies


def run(runtimes: Runtimes, pushes: HeadroomPushes, now: datetime, size_cuts: Any = None, **kw: Any):
    policies, accounts, strategies = objects(**kw)
    return account_risk_pass(
        policies=policies,
        accounts=accounts,
        strategies=strategies,
        backend=runtimes,  # type: ignore[arg-type]
        now=now,
        pushes=pushes,
        settings=SETTINGS,
        size_cuts=size_cuts,
    )


def test_pushes_to_the_runtimes_of_the_account_only_and_again_only_on_change_or_before_expiry() -> None:
    runtimes = Runtimes({"a": status(1_000.0), "b": status(500.0), "c": status(0.0)})
    pushes = HeadroomPushes()
    report = run(runtimes, pushes, T0)
    assert sorted(report.pushed) == ["t/a", "t/b"] and report.errors == []
    # capital 10,000 (50 % of 10,000 each); BTC 5,000 - 1,500 = 3,500 left, half each
    rooms = {name: body["symbol_exposure"]["BTC/USDT"] for name, body in runtimes.pushed}
    assert rooms == {"a": 1_750.0, "b": 1_750.0}
    assert report.groups["t/acct"][0].total_exposure == 1_500.0

    runtimes.pushed.clear()
    assert run(runtimes, pushes, T0 + timedelta(seconds=1)).pushed == []  # nothing changed
    runtimes.statuses["a"] = status(1_010.0)  # a move below 1 %: not pushed again
    assert run(runtimes, pushes, T0 + timedelta(seconds=2)).pushed == []
    runtimes.statuses["a"] = status(3_000.0)
    assert sorted(run(runtimes, pushes, T0 + timedelta(seconds=3)).pushed) == ["t/a", "t/b"]
    runtimes.pushed.clear()
    assert sorted(run(runtimes, pushes, T0 + timedelta(seconds=9)).pushed) == ["t/a", "t/b"]  # renewed before expiry
    assert runtimes.pushed[0][1]["expires_at"] == "2026-01-01T00:00:19Z"


def test_an_unreachable_runtime_is_reported_and_its_last_figures_still_count() -> None:
    runtimes = Runtimes({"a": status(1_000.0), "b": status(4_000.0), "c": status(0.0)})
    pushes = HeadroomPushes()
    run(runtimes, pushes, T0)
    runtimes.down.add("b")
    runtimes.pushed.clear()
    report = run(runtimes, pushes, T0 + timedelta(seconds=8))
    assert report.pushed == ["t/a"] and any(e.startswith("t/b: figures") for e in report.errors)
    assert runtimes.pushed[0][1]["symbol_exposure"]["BTC/USDT"] == 0.0  # 5,000 held by a and b's last known


def test_scope_strategy_pushes_only_a_kill_switch_and_then_its_lifting() -> None:
    runtimes = Runtimes({"a": status(1_000.0), "b": status(0.0), "c": status(0.0)})
    pushes = HeadroomPushes()
    assert run(runtimes, pushes, T0, scope="strategy").pushed == []
    report = run(runtimes, pushes, T0 + timedelta(seconds=1), scope="strategy", kill=True)
    assert sorted(report.pushed) == ["t/a", "t/b"]
    assert all(body["kill_switch"] and body["scope"] == "strategy" for _, body in runtimes.pushed)
    runtimes.pushed.clear()
    report = run(runtimes, pushes, T0 + timedelta(seconds=2), scope="strategy")
    assert sorted(report.pushed) == ["t/a", "t/b"] and not any(b["kill_switch"] for _, b in runtimes.pushed)
    runtimes.pushed.clear()
    assert run(runtimes, pushes, T0 + timedelta(seconds=30), scope="strategy").pushed == []  # lifted: nothing more


@pytest.mark.parametrize("scope", ["strategy", "account"])
def test_a_severity_2_incident_cuts_the_accounts_entries_to_the_policys_multiplier_then_lifts_it(scope: str) -> None:
    runtimes = Runtimes({"a": status(1_000.0), "b": status(0.0), "c": status(0.0)})
    pushes = HeadroomPushes()
    run(runtimes, pushes, T0, scope=scope)
    runtimes.pushed.clear()
    report = run(runtimes, pushes, T0 + timedelta(seconds=1), size_cuts={("t", "paper")}, scope=scope)
    assert sorted(report.pushed) == ["t/a", "t/b"]  # c's account has no incident
    assert {body["size_multiplier"] for _, body in runtimes.pushed} == {0.5}  # incidents.sizeMultiplier's default
    runtimes.pushed.clear()
    report = run(runtimes, pushes, T0 + timedelta(seconds=2), scope=scope)  # the incident is gone: lifted
    assert sorted(report.pushed) == ["t/a", "t/b"] and {b["size_multiplier"] for _, b in runtimes.pushed} == {1.0}


def test_a_pass_over_one_policy_keeps_what_the_others_pushed() -> None:
    runtimes = Runtimes({"a": status(1_000.0), "b": status(500.0), "c": status(0.0)})
    pushes = HeadroomPushes()
    run(runtimes, pushes, T0)
    other = RiskPolicy.model_validate({"metadata": {"name": "other", "namespace": "t"}, "spec": {"scope": "account"}})
    account_risk_pass(
        policies=[other], accounts={"t": {}}, strategies=[], backend=runtimes, now=T0, pushes=pushes, settings=SETTINGS
    )
    assert sorted(pushes.pushed) == [("t", "a"), ("t", "b")]  # the operator runs one policy per timer
    runtimes.pushed.clear()
    assert run(runtimes, pushes, T0 + timedelta(seconds=1)).pushed == []  # still idempotent
