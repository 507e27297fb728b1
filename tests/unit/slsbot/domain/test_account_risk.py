"""The account-wide and global headroom decision: aggregation, fair shares, loss and drawdown halts, kill switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slsbot.api import RiskPolicy
from slsbot.domain.account_risk import Member, RuntimeFigures, account_headroom

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
TTL = timedelta(seconds=10)


def policy(**spec: Any) -> RiskPolicy:
    return RiskPolicy.model_validate({"metadata": {"name": "acct-risk", "namespace": "t"}, "spec": spec})


def figures(equity: float = 10_000.0, allocation: float = 50.0, pnl: float = 0.0, dd: float = 0.0, **exposure: float):
    symbols = {k.replace("_", "/"): v for k, v in exposure.items()}
    return RuntimeFigures(
        equity=equity,
        exposure=symbols,
        total_exposure=sum(symbols.values()),
        pnl_today=pnl,
        equity_day_start=equity - pnl,
        drawdown_percent=dd,
        allocation_percent=allocation,
        at="2026-01-01T11:59:59Z",
    )


def member(name: str, account: str = "binance", symbols: tuple[str, ...] = ("BTC/USDT",), fig=None) -> Member:
    return Member("t", name, account, symbols, fig)


def by_name(decision) -> dict[str, Any]:
    return {h.name: h for h in decision.headrooms}


def test_scope_strategy_pushes_nothing() -> None:
    assert account_headroom(policy(), [member("a", fig=figures())], now=NOW, ttl=TTL).headrooms == ()


def test_room_left_on_an_account_is_shared_by_allocated_capital() -> None:
    # capital 10,000 x 60 % + 10,000 x 40 % = 10,000; symbol limit 50 % = 5,000, total 100 % = 10,000
    a = member("a", fig=figures(allocation=60.0, BTC_USDT=2_000.0))
    b = member("b", symbols=("BTC/USDT", "ETH/USDT"), fig=figures(allocation=40.0, BTC_USDT=1_000.0, ETH_USDT=500.0))
    decision = account_headroom(policy(scope="account"), [a, b], now=NOW, ttl=TTL)
    rooms = by_name(decision)
    # BTC: 5,000 - 3,000 = 2,000 left, 60/40; ETH: 5,000 - 500 = 4,500, all b's; total 10,000 - 3,500 = 6,500
    assert rooms["a"].symbol_exposure == {"BTC/USDT": pytest.approx(1_200.0)}
    assert rooms["b"].symbol_exposure == {"BTC/USDT": pytest.approx(800.0), "ETH/USDT": pytest.approx(4_500.0)}
    assert rooms["a"].total_exposure == pytest.approx(3_900.0) and rooms["b"].total_exposure == pytest.approx(2_600.0)
    assert sum(r.symbol_exposure["BTC/USDT"] for r in rooms.values()) == pytest.approx(2_000.0)
    assert not rooms["a"].halt_entries and rooms["a"].expires_at == NOW + TTL
    body = rooms["a"].body()
    assert body["scope"] == "account" and body["policy"] == "acct-risk" and body["expires_at"] == "2026-01-01T12:00:10Z"
    assert body["figures_at"] == "2026-01-01T11:59:59Z"
    group = decision.groups[0]
    assert (group.key, group.total_exposure, group.exposure["BTC/USDT"]) == ("binance", 3_500.0, 3_000.0)


def test_over_the_limit_leaves_no_room_and_accounts_are_separate_under_scope_account() -> None:
    a = member("a", fig=figures(allocation=100.0, BTC_USDT=6_000.0))
    other = member("c", account="kraken", fig=figures(allocation=100.0))
    rooms = by_name(account_headroom(policy(scope="account"), [a, other], now=NOW, ttl=TTL))
    assert rooms["a"].symbol_exposure == {"BTC/USDT": 0.0}
    assert rooms["c"].symbol_exposure == {"BTC/USDT": pytest.approx(5_000.0)}


def test_scope_global_adds_up_every_account() -> None:
    a = member("a", fig=figures(allocation=100.0, BTC_USDT=4_000.0))
    other = member("c", account="kraken", fig=figures(allocation=100.0, BTC_USDT=4_000.0))
    decision = account_headroom(policy(scope="global"), [a, other], now=NOW, ttl=TTL)
    rooms = by_name(decision)
    # capital 20,000: BTC limit 10,000, 8,000 held: 2,000 left, 1,000 each
    assert rooms["a"].symbol_exposure["BTC/USDT"] == pytest.approx(1_000.0)
    assert rooms["c"].scope == "global" and decision.groups[0].key == "*"


def test_daily_loss_across_the_account_halts_entries_of_every_runtime() -> None:
    # each runtime lost 600 on its 5,000 share: 1,200 of the account's 10,000 opening capital, 12 %
    a = member("a", fig=figures(equity=9_400.0, pnl=-600.0))
    b = member("b", fig=figures(equity=9_400.0, pnl=-600.0))
    decision = account_headroom(policy(scope="account", dailyLossLimitPercent=5), [a, b], now=NOW, ttl=TTL)
    assert all(h.halt_entries for h in decision.headrooms)
    assert decision.groups[0].daily_loss_percent == pytest.approx(12.0)
    assert "daily loss 12.00% reached the 5.00% limit" in decision.headrooms[0].reason
    fine = account_headroom(policy(scope="account", dailyLossLimitPercent=15), [a, b], now=NOW, ttl=TTL)
    assert not any(h.halt_entries for h in fine.headrooms)


def test_drawdown_across_the_account_halts_entries() -> None:
    a = member("a", fig=figures(dd=25.0))
    b = member("b", fig=figures(dd=0.0))
    decision = account_headroom(policy(scope="account", maxDrawdownPercent=12), [a, b], now=NOW, ttl=TTL)
    # a: 5,000 capital 25 % below a peak of 6,666.67; the account 1,666.67 below 11,666.67: 14.29 %
    assert decision.groups[0].drawdown_percent == pytest.approx(100 * 1_666.6667 / 11_666.6667, rel=1e-4)
    assert all(h.halt_entries for h in decision.headrooms)


def test_kill_switch_and_size_multiplier_reach_every_runtime() -> None:
    a = member("a", fig=figures())
    b = member("b", account="kraken", fig=None)
    decision = account_headroom(
        policy(scope="account", killSwitch=True), [a, b], now=NOW, ttl=TTL, size_multipliers={"binance": 0.5}
    )
    rooms = by_name(decision)
    assert rooms["a"].kill_switch and rooms["b"].kill_switch
    assert rooms["a"].size_multiplier == 0.5 and rooms["b"].size_multiplier == 1.0
    assert "killSwitch is set on RiskPolicy acct-risk" in rooms["a"].reason


def test_an_unknown_member_leaves_its_group_no_room() -> None:
    a = member("a", fig=figures())
    b = member("b", fig=None)
    rooms = by_name(account_headroom(policy(scope="account"), [a, b], now=NOW, ttl=TTL))
    assert rooms["a"].symbol_exposure == {"BTC/USDT": 0.0} and rooms["a"].total_exposure == 0.0
    assert "t/b report no figures" in rooms["a"].reason


def test_figures_are_read_from_a_status_body() -> None:
    status = {
        "equity": 10_100.0,
        "exposure": {"BTC/USDT": 2_500.0},
        "total_exposure": 2_500.0,
        "pnl_today": 100.0,
        "equity_day_start": 10_000.0,
        "drawdown_pct": 1.5,
        "allocation": {"percent": 25.0, "source": "controller", "specPercent": 50.0},
        "heartbeat": "2026-01-01T11:59:59Z",
    }
    read = RuntimeFigures.from_status(status, 50.0)
    assert read is not None and read.allocation_percent == 25.0 and read.capital == pytest.approx(2_525.0)
    assert RuntimeFigures.from_status({"equity": 1.0}, 50.0) is None


def test_a_strategy_that_does_not_run_is_left_out() -> None:
    a = member("a", fig=figures())
    refused = Member("t", "b", "binance", ("BTC/USDT",), None, running=False)  # Failed, Pending, refused: holds nothing
    rooms = by_name(account_headroom(policy(scope="account"), [a, refused], now=NOW, ttl=TTL))
    assert rooms["a"].symbol_exposure == {"BTC/USDT": pytest.approx(2_500.0)}  # 50 % of a's 5,000, all a's
    assert rooms["b"].symbol_exposure == {"BTC/USDT": 0.0}
