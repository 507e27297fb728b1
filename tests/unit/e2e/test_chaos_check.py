"""The chaos run's conclusions (e2e/chaos_check.py) and its schedule, over plain data."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for e2e (not an installed package)

from e2e.chaos import Report, print_report, schedule  # noqa: E402
from e2e.chaos_check import BotBook, ExchangeBook, check_bot, parse_histograms  # noqa: E402


def exchange(**changes) -> ExchangeBook:
    base = {
        "symbol": "BTC/USDT",
        "orders": [("sls-a", "filled", 0.01), ("sls-b", "new", 0.0)],
        "fills": [("500", "sls-a")],
        "balance": 0.00999,
    }
    return ExchangeBook(**{**base, **changes})


def bot(**changes) -> BotBook:
    base = {
        "name": "chaos-btc",
        "orders": {"sls-a": ("filled", 0.01), "sls-b": ("open", 0.0)},
        "fills": [("500", "sls-a")],
        "positions": {"BTC/USDT": 0.00999},
    }
    return BotBook(**{**base, **changes})


def test_a_bot_that_agrees_with_the_exchange_has_no_problem():
    result = check_bot(bot(), exchange())
    assert (result.sent, result.lost, result.duplicated, result.problems) == (2, 0, 0, [])


def test_an_id_accepted_twice_is_a_duplicate():
    orders = [("sls-a", "filled", 0.01), ("sls-a", "filled", 0.01), ("sls-b", "new", 0.0)]
    result = check_bot(bot(), exchange(orders=orders))
    assert result.duplicated == 1 and "accepted sls-a 2 times" in result.problems[0]


def test_an_order_the_bot_does_not_know_or_thinks_sent_is_lost():
    assert check_bot(bot(orders={"sls-a": ("filled", 0.01)}), exchange()).lost == 1
    assert check_bot(bot(), exchange(orders=[("sls-a", "filled", 0.01)])).lost == 1


def test_a_pending_intent_is_not_lost_and_a_refused_one_is_nothing():
    orders = {"sls-a": ("filled", 0.01), "sls-b": ("open", 0.0), "sls-c": ("pending", 0.0), "sls-d": ("rejected", 0)}
    result = check_bot(bot(orders=orders), exchange())
    assert (result.lost, result.pending, result.problems) == (0, 1, [])


def test_a_fill_booked_twice_or_missing_and_a_wrong_position_are_problems():
    assert check_bot(bot(fills=[("500", "sls-a"), ("500", "sls-a")]), exchange()).duplicated == 1
    missing = check_bot(bot(fills=[]), exchange())
    assert missing.problems == ["fills not booked: ['500']"]
    off = check_bot(bot(positions={"BTC/USDT": 0.01}), exchange())
    assert off.problems == ["position 0.01 BTC/USDT, balance 0.00999"]


def test_a_status_that_differs_from_the_exchange_is_a_problem():
    result = check_bot(bot(orders={"sls-a": ("partially_filled", 0.005), "sls-b": ("open", 0.0)}), exchange())
    assert result.problems == ["sls-a: the bot says partially_filled 0.005, the exchange filled 0.01"]


def test_mttr_is_the_mean_of_each_class_from_the_histograms():
    text = """# HELP slsbot_heal_detection_seconds Fault to detection.
# TYPE slsbot_heal_detection_seconds histogram
slsbot_heal_detection_seconds_bucket{failure_class="Crashed",le="1.0"} 1.0
slsbot_heal_detection_seconds_bucket{failure_class="Crashed",le="+Inf"} 2.0
slsbot_heal_detection_seconds_count{failure_class="Crashed"} 2.0
slsbot_heal_detection_seconds_sum{failure_class="Crashed"} 3.0
# HELP slsbot_other_total Something else.
# TYPE slsbot_other_total counter
slsbot_other_total 4.0
"""
    assert parse_histograms(text) == {"detection": {"Crashed": (1.5, 2.0)}}
    assert parse_histograms("") == {}


def test_one_seed_gives_one_schedule():
    assert schedule(7, 2, 3) == schedule(7, 2, 3)
    assert schedule(7, 2, 3) != schedule(8, 2, 3)
    assert all(e.bot is None or 0 <= e.bot < 3 for e in schedule(7, 2, 3))


def test_the_report_prints_each_line_once(capsys):
    report = Report(seed=7, minutes=1, bots=2, schedule=[], kill_to_trading_s=[4.5, 6.0], kills_skipped=1)
    report.orders = {"sent": 3, "lost": 0, "duplicated": 0, "pending": 0}
    print_report(report)
    out = capsys.readouterr().out
    assert out.count("killed runtime back and trading") == 1
    assert "n=2, median 6.00s, max 6.00s" in out and "kills skipped (the runtime was already down): 1" in out
    assert "lost 0, duplicated 0" in out and out.rstrip().endswith("OK, nothing lost, duplicated or corrupted")


def test_the_report_lists_incidents_as_the_admin_api_returns_them(capsys):
    incident = {
        "id": "stale-data-1",
        "namespace": "chaos",
        "spec": {"severity": 2, "rule": "HealingStaleData", "message": "no new BTC/USDT candle"},
        "status": {"state": "open", "count": 2},
    }
    print_report(Report(seed=1, minutes=1, bots=1, schedule=[], incidents=[incident]))
    assert "severity 2 HealingStaleData (open, seen 2x): no new BTC/USDT candle" in capsys.readouterr().out
