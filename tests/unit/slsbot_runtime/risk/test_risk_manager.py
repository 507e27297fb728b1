"""The entry gates of the risk manager: kill switch, drawdown, daily loss, long-only, bad input; exits always pass."""

from __future__ import annotations

import pytest

from slsbot.api import RiskPolicySpec
from slsbot_runtime.domain.errors import DataError
from slsbot_runtime.domain.types import PortfolioSnapshot, Position, Side
from slsbot_runtime.risk.base import RiskAction, RiskRule, TradeProposal
from slsbot_runtime.risk.manager import DAY_MS, RiskManager

HOUR = 3_600_000
PRICE = 100.0
NO_BREAKER = {"circuitBreaker": {"levels": []}}


def policy(**fields: object) -> RiskPolicySpec:
    return RiskPolicySpec.model_validate({**NO_BREAKER, **fields})


def entry(side: Side = Side.BUY, price: float = PRICE, confidence: float = 0.3) -> TradeProposal:
    return TradeProposal("BTC/USDT", side, price, confidence, True)


def exit_(quantity: float | None = None) -> TradeProposal:
    return TradeProposal("BTC/USDT", Side.SELL, PRICE, 1.0, False, requested_quantity=quantity)


def at(ts: int, equity: float, btc: float = 0.0) -> PortfolioSnapshot:
    positions = {"BTC/USDT": Position("BTC/USDT", btc, PRICE)} if btc else {}
    return PortfolioSnapshot(ts=ts, cash=equity, equity=equity, positions=positions, prices={"BTC/USDT": PRICE})


def rules(decision) -> list[str]:
    return [event.rule for event in decision.events]


def test_kill_switch_forbids_entries_and_asks_to_flatten_but_lets_exits_out() -> None:
    risk = RiskManager(RiskPolicySpec(kill_switch=True), None, True)
    state = risk.on_candle(0, 10_000.0, {"BTC/USDT": PRICE})
    assert state.must_flatten and risk.must_flatten
    assert not state.entries_allowed
    rejected = risk.evaluate(entry(), at(0, 10_000.0, btc=20.0))
    assert (rejected.action, rejected.quantity, rules(rejected)) == (RiskAction.REJECTED, 0.0, [RiskRule.KILL_SWITCH])
    whole = risk.evaluate(exit_(), at(0, 10_000.0, btc=20.0))
    assert (whole.action, whole.quantity, whole.events) == (RiskAction.APPROVED, 20.0, ())
    part = risk.evaluate(exit_(5.0), at(0, 10_000.0, btc=20.0))
    assert (part.action, part.quantity) == (RiskAction.APPROVED, 5.0)


def test_max_drawdown_from_the_all_time_peak_rejects_entries() -> None:
    risk = RiskManager(policy(maxDrawdownPercent=20, dailyLossLimitPercent=100), None, True)
    risk.on_candle(0, 10_000.0)
    risk.on_candle(HOUR, 12_000.0)
    risk.on_candle(2 * HOUR, 9_700.0)  # 19.17% below 12,000
    assert risk.evaluate(entry(), at(2 * HOUR, 9_700.0)).action is RiskAction.APPROVED
    # the snapshot's equity counts too, before the next candle arrives
    decision = risk.evaluate(entry(), at(2 * HOUR, 9_000.0))
    assert decision.action is RiskAction.REJECTED
    assert rules(decision) == [RiskRule.MAX_DRAWDOWN]
    assert "25.00%" in decision.events[0].message and "12000.00" in decision.events[0].message


def test_max_drawdown_lasts_until_recovery_or_an_operator_resets_the_peak() -> None:
    risk = RiskManager(policy(maxDrawdownPercent=20, dailyLossLimitPercent=100), None, True)
    risk.on_candle(0, 10_000.0)
    state = risk.on_candle(DAY_MS * 5, 7_500.0)
    assert not state.entries_allowed
    assert risk.evaluate(entry(), at(DAY_MS * 5, 7_500.0)).action is RiskAction.REJECTED
    risk.reset_peak(7_500.0)
    assert risk.state().entries_allowed
    assert risk.evaluate(entry(), at(DAY_MS * 5, 7_500.0)).action is RiskAction.APPROVED
    with pytest.raises(ValueError, match="reset_peak equity"):
        risk.reset_peak(float("nan"))


def test_daily_loss_limit_latches_until_the_next_utc_midnight() -> None:
    risk = RiskManager(policy(dailyLossLimitPercent=5), None, True)
    day_start = 3 * DAY_MS
    risk.on_candle(day_start, 10_000.0)
    risk.on_candle(day_start + HOUR, 9_600.0)  # 4%: still fine
    assert risk.evaluate(entry(), at(day_start + HOUR, 9_600.0)).action is RiskAction.APPROVED
    state = risk.on_candle(day_start + 2 * HOUR, 9_400.0)  # 6%
    assert state.daily_loss_percent == pytest.approx(6.0)
    assert not state.entries_allowed
    risk.on_candle(day_start + 3 * HOUR, 9_800.0)  # recovered to 2%, but the limit was hit today
    decision = risk.evaluate(entry(), at(day_start + 3 * HOUR, 9_800.0))
    assert rules(decision) == [RiskRule.DAILY_LOSS]
    assert "5.00% daily loss limit" in decision.events[0].message and "2.00% down" in decision.events[0].message
    state = risk.on_candle(day_start + DAY_MS - HOUR, 9_800.0)  # 23:00 the same day
    assert not state.entries_allowed
    state = risk.on_candle(day_start + DAY_MS, 9_800.0)  # 00:00 UTC next day
    assert state.entries_allowed
    assert state.day_start_equity == 9_800.0
    assert risk.evaluate(entry(), at(day_start + DAY_MS, 9_800.0)).action is RiskAction.APPROVED


def test_daily_loss_is_measured_from_the_equity_at_midnight_not_after_the_first_candle() -> None:
    risk = RiskManager(policy(dailyLossLimitPercent=5), None, True)
    risk.on_candle(DAY_MS - HOUR, 10_000.0)  # 23:00, day 0: day 1 opens at 10,000
    state = risk.on_candle(DAY_MS, 9_400.0)  # the 00:00 candle itself loses 6%
    assert state.day_start_equity == 10_000.0
    assert state.daily_loss_percent == pytest.approx(6.0)
    assert not state.entries_allowed
    decision = risk.evaluate(entry(), at(DAY_MS, 9_400.0))
    assert rules(decision) == [RiskRule.DAILY_LOSS]
    assert "day start 10000.00" in decision.events[0].message


def test_on_daily_candles_each_candle_is_measured_from_the_previous_close() -> None:
    risk = RiskManager(policy(dailyLossLimitPercent=5), None, True)
    risk.set_opening_equity(10_000.0)
    assert risk.on_candle(0, 10_100.0).entries_allowed
    state = risk.on_candle(DAY_MS, 9_595.0)  # 5% below the 10,100 the day opened at
    assert (state.day_start_equity, state.daily_loss_percent) == (10_100.0, pytest.approx(5.0))
    assert not state.entries_allowed
    assert risk.evaluate(entry(), at(DAY_MS, 9_595.0)).action is RiskAction.REJECTED
    state = risk.on_candle(2 * DAY_MS, 9_500.0)  # 0.99% the next day: the latch is released
    assert state.day_start_equity == 9_595.0 and state.entries_allowed


def test_the_first_day_opens_at_the_equity_before_the_first_candle() -> None:
    risk = RiskManager(policy(dailyLossLimitPercent=5), None, True)
    risk.set_opening_equity(10_000.0)  # the starting cash
    state = risk.on_candle(0, 9_400.0)
    assert state.day_start_equity == 10_000.0 and not state.entries_allowed
    unknown = RiskManager(policy(dailyLossLimitPercent=5), None, True)  # nothing known before the first candle
    assert unknown.on_candle(0, 9_400.0).day_start_equity == 9_400.0
    with pytest.raises(ValueError, match="opening equity"):
        unknown.set_opening_equity(10_000.0)  # too late: a candle was taken in
    with pytest.raises(ValueError, match="opening equity"):
        RiskManager(RiskPolicySpec(), None, True).set_opening_equity(float("inf"))


def test_a_snapshot_taken_on_a_later_day_counts_from_the_last_candles_equity() -> None:
    risk = RiskManager(policy(dailyLossLimitPercent=5), None, True)
    risk.on_candle(DAY_MS - HOUR, 10_000.0)
    assert risk.evaluate(entry(), at(DAY_MS + HOUR, 9_600.0)).action is RiskAction.APPROVED  # 4%
    decision = risk.evaluate(entry(), at(DAY_MS + HOUR, 9_400.0))  # 6% below where the day opened
    assert rules(decision) == [RiskRule.DAILY_LOSS]
    assert "day start 10000.00" in decision.events[0].message and "6.00% down" in decision.events[0].message


def test_long_only_rejects_short_entries_but_not_sells_that_exit() -> None:
    risk = RiskManager(RiskPolicySpec(), None, long_only=True)
    risk.on_candle(0, 10_000.0)
    short = risk.evaluate(entry(Side.SELL), at(0, 10_000.0))
    assert (short.action, rules(short)) == (RiskAction.REJECTED, [RiskRule.LONG_ONLY])
    assert risk.evaluate(exit_(3.0), at(0, 10_000.0, btc=3.0)).action is RiskAction.APPROVED
    shorts_allowed = RiskManager(RiskPolicySpec(), None, long_only=False)
    shorts_allowed.on_candle(0, 10_000.0)
    assert shorts_allowed.evaluate(entry(Side.SELL), at(0, 10_000.0)).quantity == pytest.approx(7.5)


def test_every_blocking_rule_is_reported_not_only_the_first() -> None:
    risk = RiskManager(policy(killSwitch=True, dailyLossLimitPercent=5), None, True)
    risk.on_candle(0, 10_000.0)
    risk.on_candle(HOUR, 9_000.0)
    decision = risk.evaluate(entry(Side.SELL), at(HOUR, 9_000.0))
    assert rules(decision) == [RiskRule.KILL_SWITCH, RiskRule.DAILY_LOSS, RiskRule.LONG_ONLY]


@pytest.mark.parametrize(
    ("proposal", "field"),
    [
        (TradeProposal("BTC/USDT", Side.BUY, float("nan"), 0.5, True), "price"),
        (TradeProposal("BTC/USDT", Side.BUY, -1.0, 0.5, True), "price"),
        (TradeProposal("BTC/USDT", Side.BUY, PRICE, 1.5, True), "confidence"),
        (TradeProposal("BTC/USDT", Side.BUY, PRICE, 0.5, True, win_rate=1.2, payoff_ratio=1.0), "win_rate"),
        (TradeProposal("BTC/USDT", Side.BUY, PRICE, 0.5, True, win_rate=0.5, payoff_ratio=0.0), "payoff_ratio"),
        (TradeProposal("BTC/USDT", Side.BUY, PRICE, 0.5, True, requested_quantity=-2.0), "requested_quantity"),
        (TradeProposal("BTC/USDT", Side.SELL, PRICE, 0.5, False, requested_quantity=0.0), "requested_quantity"),
    ],
)
def test_a_malformed_proposal_is_rejected_naming_the_field(proposal: TradeProposal, field: str) -> None:
    risk = RiskManager(RiskPolicySpec(), None, True)
    risk.on_candle(0, 10_000.0)
    decision = risk.evaluate(proposal, at(0, 10_000.0))
    assert (decision.action, rules(decision)) == (RiskAction.REJECTED, [RiskRule.INVALID_PROPOSAL])
    assert decision.events[0].message.startswith(f"{field}:")


def test_an_entry_against_a_bust_account_is_rejected() -> None:
    risk = RiskManager(RiskPolicySpec(), None, True)
    decision = risk.evaluate(entry(), at(0, 0.0))
    assert decision.events[0].message.startswith("portfolio.equity:")


@pytest.mark.parametrize(
    ("ts", "equity", "closes", "field"),
    [
        (HOUR - 1, 10_000.0, {}, "ts"),
        (2 * HOUR, float("inf"), {}, "equity"),
        (2 * HOUR, 10_000.0, {"BTC/USDT": 0.0}, "closes['BTC/USDT']"),
        (2 * HOUR, 10_000.0, {"BTC/USDT": float("nan")}, "closes['BTC/USDT']"),
    ],
)
def test_bad_candle_input_raises_naming_the_field_and_changes_nothing(
    ts: int, equity: float, closes: dict[str, float], field: str
) -> None:
    risk = RiskManager(RiskPolicySpec(), None, True)
    risk.on_candle(HOUR, 10_000.0, {"BTC/USDT": PRICE})
    before = risk.snapshot()
    with pytest.raises(DataError) as raised:
        risk.on_candle(ts, equity, closes)
    assert str(raised.value).startswith(f"on_candle {field}:")
    assert risk.snapshot() == before


def test_journal_is_bounded_and_counters_count_every_rule() -> None:
    risk = RiskManager(RiskPolicySpec(), None, True, journal_size=3)
    risk.on_candle(0, 10_000.0)
    for _ in range(2):
        risk.evaluate(entry(Side.SELL), at(0, 10_000.0))  # long_only
    risk.evaluate(entry(confidence=1.0), at(0, 10_000.0))  # per_trade_max
    risk.evaluate(entry(), at(0, 10_000.0))
    risk.evaluate(exit_(1.0), at(0, 10_000.0, btc=1.0))
    journal = risk.journal()
    assert len(journal) == 3
    assert [(item.action, item.is_entry) for item in journal] == [
        (RiskAction.REDUCED, True),
        (RiskAction.APPROVED, True),
        (RiskAction.APPROVED, False),
    ]
    assert [item.quantity for item in risk.journal(limit=2)] == [7.5, 1.0]
    assert risk.rule_counts() == {"long_only": 2, "per_trade_max": 1}
    assert risk.action_counts() == {"rejected": 2, "reduced": 1, "approved": 2}


def test_journal_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="journal size"):
        RiskManager(RiskPolicySpec(), None, True, journal_size=0)
