"""The daily report's figures against values worked out by hand on a small state: two Strategies of one account,
a day with trades opened before it and closed in it, fees, a drawdown, risk decisions and incidents."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from slsbot.api.incident import IncidentSpec, IncidentStatus
from slsbot.domain.daily_report import (
    RiskDecisionCount,
    RiskDecisionRecord,
    StrategyRecord,
    account_day,
    day_bounds,
    max_drawdown_pct,
    previous_day,
    strategy_day,
)
from slsbot.domain.incidents import Incident
from slsbot_runtime.domain.types import Fill, Side

DAY = date(2026, 3, 2)
START, END = day_bounds(DAY)
H = 3_600_000


def fill(n: int, ts: int, side: Side, quantity: float, price: float, fee: float) -> Fill:
    return Fill(f"f{n}", f"o{n}", "BTC/USDT", side, quantity, price, fee, "USDT", ts)


# btc: buys 1 BTC at 100 (fee 1) the day before; in the day sells 0.5 at 110 (fee 0.5): realised
# 0.5 * (110 - 101) - 0.5 = 4.0, a win; buys 0.5 at 120 (fee 0.5) and sells 1 at 90 (fee 1): the position of 1
# has cost basis (0.5 * 101 + 0.5 * 120 + 0.5) / 1 = 111, realised 1 * (90 - 111) - 1 = -22, a loss.
BTC = StrategyRecord(
    name="btc",
    starting_cash=1000.0,
    equity=[
        (START - 2 * H, 1000.0),
        (START - H, 1005.0),  # the day's start
        (START + H, 1010.0),
        (START + 2 * H, 1020.0),  # peak
        (START + 3 * H, 969.0),  # 5 % below 1020
        (START + 3 * H, 969.0),  # a second symbol at the same time
        (START + 4 * H, 982.0),  # the day's end
        (END, 2000.0),  # the next day: left out
    ],
    fills=[
        fill(1, START - 2 * H, Side.BUY, 1.0, 100.0, 1.0),
        fill(2, START + H, Side.SELL, 0.5, 110.0, 0.5),
        fill(3, START + 2 * H, Side.BUY, 0.5, 120.0, 0.5),
        fill(4, START + 3 * H, Side.SELL, 1.0, 90.0, 1.0),
        fill(5, END + H, Side.BUY, 1.0, 90.0, 1.0),  # the next day: left out
    ],
    decisions=[
        RiskDecisionRecord(START - H, "rejected", ("max_drawdown",)),  # the day before
        RiskDecisionRecord(START + H, "rejected", ("daily_loss", "max_drawdown")),
        RiskDecisionRecord(START + 2 * H, "rejected", ("daily_loss", "daily_loss")),
        RiskDecisionRecord(START + 3 * H, "reduced", ("per_trade_max",)),
    ],
)
# eth: no trade, one point in the day: +30 on 500.
ETH = StrategyRecord(name="eth", starting_cash=500.0, equity=[(START + 2 * H, 530.0)])


def incident(id_: str, objects: list[str], opened: datetime, resolved: datetime | None, ns: str = "trading"):
    return Incident(
        id=id_,
        namespace=ns,
        spec=IncidentSpec(cause=id_, severity=2, rule="Drawdown", objects=objects, runbook="runbooks/drawdown.md"),
        status=IncidentStatus(opened_at=opened, resolved_at=resolved, state="resolved" if resolved else "open"),
    )


def test_a_strategys_day_splits_its_pnl_into_realised_and_unrealised_net_of_fees() -> None:
    day = strategy_day(BTC, DAY)
    assert day.equity_start == 1005.0 and day.equity_end == 982.0
    assert day.pnl == pytest.approx(-23.0)
    assert day.realised_pnl == pytest.approx(4.0 - 22.0)
    assert day.unrealised_change == pytest.approx(-23.0 + 18.0)
    assert day.fees == pytest.approx(2.0)
    assert (day.wins, day.losses, day.win_rate_pct) == (1, 1, 50.0)
    assert day.max_drawdown_pct == pytest.approx(5.0)
    assert [ts for ts, _ in day.curve] == [START + H, START + 2 * H, START + 3 * H, START + 4 * H]
    assert day.risk_decisions == (
        RiskDecisionCount("reduced", "per_trade_max", 1),
        RiskDecisionCount("rejected", "daily_loss", 2),
        RiskDecisionCount("rejected", "max_drawdown", 1),
    )


def test_a_strategy_with_nothing_before_the_day_starts_from_its_starting_cash() -> None:
    day = strategy_day(ETH, DAY)
    assert (day.equity_start, day.equity_end, day.pnl) == (500.0, 530.0, 30.0)
    assert day.win_rate_pct is None and day.max_drawdown_pct == 0.0
    quiet = strategy_day(ETH, date(2026, 3, 1))
    assert (quiet.equity_start, quiet.equity_end, quiet.pnl, quiet.curve) == (500.0, 500.0, 0.0, ())


def test_the_account_adds_its_strategies_up_and_names_the_best_and_worst() -> None:
    incidents = [
        incident("opened-in-day", ["Strategy/btc", "TradingAccount/main"], datetime(2026, 3, 2, 5, tzinfo=UTC), None),
        incident(
            "opened-before-resolved-in-day",
            ["TradingAccount/main"],
            datetime(2026, 3, 1, 23, tzinfo=UTC),
            datetime(2026, 3, 2, 1, tzinfo=UTC),
        ),
        incident("other-account", ["TradingAccount/other"], datetime(2026, 3, 2, 5, tzinfo=UTC), None),
        incident("other-namespace", ["Strategy/btc"], datetime(2026, 3, 2, 5, tzinfo=UTC), None, ns="paper"),
        incident("next-day", ["Strategy/eth"], datetime(2026, 3, 3, 0, tzinfo=UTC), None),
    ]
    report = account_day(namespace="trading", account="main", day=DAY, strategies=[ETH, BTC], incidents=incidents)
    assert [s.name for s in report.strategies] == ["btc", "eth"]
    assert report.equity_start == 1505.0 and report.equity_end == 1512.0
    assert report.pnl == pytest.approx(7.0)
    assert report.pnl_pct == pytest.approx(700 / 1505)
    assert report.realised_pnl == pytest.approx(-18.0)
    assert report.win_rate_pct == 50.0
    assert report.best.name == "eth" and report.worst.name == "btc"
    # the account's curve: btc 1010 + eth 500, 1020 + 530, 969 + 530, 982 + 530; peak 1550, trough 1499
    assert report.curve == (
        (START + H, 1510.0),
        (START + 2 * H, 1550.0),
        (START + 3 * H, 1499.0),
        (START + 4 * H, 1512.0),
    )
    assert report.max_drawdown_pct == pytest.approx(51 / 1550 * 100)
    assert (report.refusals, report.cuts) == (3, 1)
    assert [i.id for i in report.incidents_opened] == ["opened-in-day"]
    assert [i.id for i in report.incidents_resolved] == ["opened-before-resolved-in-day"]


def test_an_account_without_strategies_has_no_best_nor_worst() -> None:
    report = account_day(namespace="trading", account="main", day=DAY, strategies=[])
    assert report.best is None and report.worst is None and report.pnl == 0 and report.pnl_pct is None


def test_drawdown_peak_starts_at_the_start_of_the_day() -> None:
    assert max_drawdown_pct(100.0, [90.0, 95.0, 80.0]) == pytest.approx(20.0)
    assert max_drawdown_pct(100.0, [110.0, 99.0]) == pytest.approx(10.0)
    assert max_drawdown_pct(0.0, []) == 0.0


def test_the_scheduled_report_covers_the_previous_utc_day() -> None:
    assert previous_day(datetime(2026, 3, 3, 0, 5, tzinfo=UTC)) == DAY
    assert day_bounds(DAY) == (1772409600000, 1772409600000 + 86_400_000)


def test_the_days_of_a_period_add_up_to_the_period() -> None:
    """A month of random trades booked by the runtime's own Ledger, marked every hour: the days' PnL, realised PnL and
    closed trades add up to the whole period's, as ``slsbot report --state`` would count them."""
    from slsbot_runtime.execution.ledger import Ledger

    rng = random.Random(11)
    ledger = Ledger(cash=10_000.0, quote_currency="USDT")
    first = day_bounds(date(2026, 1, 1))[0]
    price, fills, equity = 100.0, [], []
    for hour in range(31 * 24):
        ts = first + hour * H
        price *= 1 + rng.gauss(0, 0.01)
        if rng.random() < 0.2:
            held = ledger.quantity("BTC/USDT")
            side = Side.SELL if held > 0 and rng.random() < 0.6 else Side.BUY
            quantity = held if side is Side.SELL else round(rng.uniform(0.5, 3), 3)
            fill = Fill(f"f{hour}", f"o{hour}", "BTC/USDT", side, quantity, price, quantity * price * 0.001, "USDT", ts)
            ledger.apply(fill)
            fills.append(fill)
        ledger.mark("BTC/USDT", price)
        equity.append((ts, ledger.equity()))
    record = StrategyRecord(name="btc", starting_cash=10_000.0, equity=equity, fills=fills)
    days = [strategy_day(record, date(2026, 1, 1) + timedelta(days=n)) for n in range(31)]
    realised, wins, losses = ledger.realized()
    assert sum(d.pnl for d in days) == pytest.approx(equity[-1][1] - 10_000.0)
    assert sum(d.realised_pnl for d in days) == pytest.approx(realised)
    assert sum(d.closed_trades for d in days) == wins + losses > 20
    assert sum(d.fees for d in days) == pytest.approx(sum(f.fee for f in fills))
