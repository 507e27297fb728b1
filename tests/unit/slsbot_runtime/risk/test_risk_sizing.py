"""Entry sizing: fractional Kelly capped at a quarter, per-trade bounds, exposure and leverage caps."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from slsbot.api import RiskPolicySpec
from slsbot.api.strategy import Sizing, SizingMethod
from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import PortfolioSnapshot, Position, Side
from slsbot_runtime.risk.base import RiskAction, RiskRule, TradeProposal
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.risk.sizing import full_kelly

EQUITY = 10_000.0
PRICE = 100.0


def entry(confidence: float = 0.3, side: Side = Side.BUY, **extra: float) -> TradeProposal:
    return TradeProposal("BTC/USDT", side, PRICE, confidence, True, **extra)


def book(*positions: tuple[str, float, float]) -> PortfolioSnapshot:
    """A portfolio of EQUITY holding (symbol, signed quantity, price) positions."""
    return PortfolioSnapshot(
        ts=0,
        cash=EQUITY,
        equity=EQUITY,
        positions={symbol: Position(symbol, quantity, price) for symbol, quantity, price in positions},
        prices={symbol: price for symbol, _, price in positions},
    )


def manager(policy: RiskPolicySpec | None = None, sizing: Sizing | None = None, long_only: bool = True):
    risk = RiskManager(policy or RiskPolicySpec(), sizing, long_only)
    risk.on_candle(0, EQUITY, {"BTC/USDT": PRICE})
    return risk


def test_confidence_scaled_default_is_a_quarter_of_confidence_in_percent_of_equity() -> None:
    decision = manager().evaluate(entry(confidence=0.3), book())
    # full Kelly = confidence = 0.30, a quarter of it = 7.5% of 10,000 = 750 -> 7.5 units at 100
    assert decision.action is RiskAction.APPROVED
    assert decision.quantity == pytest.approx(7.5)
    assert decision.events == ()


def test_kelly_from_win_rate_and_payoff_ratio() -> None:
    assert full_kelly(0.6, 2.0) == pytest.approx(0.4)
    decision = manager().evaluate(entry(win_rate=0.6, payoff_ratio=2.0), book())
    assert decision.quantity == pytest.approx(10.0)  # 0.25 x 40% = 10% of equity


def test_kelly_fraction_below_the_cap_is_used_as_given() -> None:
    decision = manager(RiskPolicySpec(kelly_fraction=0.1)).evaluate(entry(win_rate=0.6, payoff_ratio=2.0), book())
    assert decision.quantity == pytest.approx(4.0)  # 0.1 x 40% = 4%


def test_kelly_fraction_is_capped_at_a_quarter_even_when_the_policy_bypasses_validation() -> None:
    with pytest.raises(ValidationError, match=r"kelly_fraction|kellyFraction"):
        RiskPolicySpec(kelly_fraction=0.5)
    generous = RiskPolicySpec(per_trade={"maxPercent": 100}, max_symbol_exposure_percent=100)
    full_kelly_policy = generous.model_copy(update={"kelly_fraction": 1.0})
    decision = manager(full_kelly_policy).evaluate(entry(win_rate=0.6, payoff_ratio=2.0), book())
    assert decision.action is RiskAction.APPROVED
    assert decision.quantity == pytest.approx(10.0)  # 0.25 x 40%, not the 40% full Kelly asks


def test_size_above_the_per_trade_maximum_is_cut_to_it() -> None:
    decision = manager().evaluate(entry(confidence=1.0), book())
    assert decision.action is RiskAction.REDUCED
    assert decision.quantity == pytest.approx(15.0)  # 25% asked, 15% allowed
    [event] = decision.events
    assert event.rule == RiskRule.PER_TRADE_MAX
    assert "25.00%" in event.message and "15.00%" in event.message


def test_size_below_the_per_trade_minimum_is_raised_to_it() -> None:
    decision = manager().evaluate(entry(confidence=0.02), book())
    assert decision.action is RiskAction.APPROVED
    assert decision.quantity == pytest.approx(1.0)  # 0.5% asked, 1% minimum
    [event] = decision.events
    assert event.rule == RiskRule.PER_TRADE_MIN
    assert "0.50%" in event.message and "1.00%" in event.message


def test_per_trade_bounds_come_from_the_policy() -> None:
    policy = RiskPolicySpec(per_trade={"minPercent": 5, "maxPercent": 8})
    assert manager(policy).evaluate(entry(confidence=0.1), book()).quantity == pytest.approx(5.0)
    assert manager(policy).evaluate(entry(confidence=0.9), book()).quantity == pytest.approx(8.0)


def test_no_edge_is_rejected() -> None:
    decision = manager().evaluate(entry(win_rate=0.3, payoff_ratio=1.0), book())
    assert decision.action is RiskAction.REJECTED
    assert decision.quantity == 0
    assert [event.rule for event in decision.events] == [RiskRule.NO_EDGE]
    assert "-40.00%" in decision.events[0].message  # full Kelly 0.3 - 0.7 = -0.4


def test_symbol_exposure_cap_cuts_the_entry_to_the_headroom() -> None:
    decision = manager().evaluate(entry(confidence=0.3), book(("BTC/USDT", 45.0, PRICE)))
    # held 45% + 7.5% asked = 52.5% > 50%: only 5% of equity (5 units) fits
    assert decision.action is RiskAction.REDUCED
    assert decision.quantity == pytest.approx(5.0)
    [event] = decision.events
    assert event.rule == RiskRule.SYMBOL_EXPOSURE
    assert "52.50%" in event.message and "50.00%" in event.message


def test_symbol_exposure_headroom_below_the_minimum_rejects() -> None:
    decision = manager().evaluate(entry(confidence=0.3), book(("BTC/USDT", 49.5, PRICE)))
    assert decision.action is RiskAction.REJECTED
    assert decision.quantity == 0
    assert [event.rule for event in decision.events] == [RiskRule.SYMBOL_EXPOSURE]
    assert "below the per-trade minimum 1.00%" in decision.events[0].message


def test_total_exposure_cap_counts_every_position_at_its_price() -> None:
    policy = RiskPolicySpec(max_total_exposure_percent=80)
    portfolio = book(("ETH/USDT", 5.0, 1500.0))  # 7,500 = 75% of equity
    decision = manager(policy).evaluate(entry(confidence=0.3), portfolio)
    assert decision.action is RiskAction.REDUCED
    assert decision.quantity == pytest.approx(5.0)  # 80% - 75% = 5% of equity
    assert [event.rule for event in decision.events] == [RiskRule.TOTAL_EXPOSURE]
    assert "82.50%" in decision.events[0].message


def test_leverage_cap_binds_when_exposure_caps_are_wider() -> None:
    policy = RiskPolicySpec(max_total_exposure_percent=300, max_symbol_exposure_percent=300, max_leverage=2)
    portfolio = book(("ETH/USDT", 13.0, 1500.0))  # 19,500 = 1.95x
    decision = manager(policy).evaluate(entry(confidence=0.3), portfolio)
    assert decision.action is RiskAction.REDUCED
    assert decision.quantity == pytest.approx(5.0)  # up to 2.0x: 500 more
    assert [event.rule for event in decision.events] == [RiskRule.LEVERAGE]
    assert "2.00x maximum" in decision.events[0].message


def test_a_short_entry_counts_its_absolute_exposure() -> None:
    portfolio = book(("BTC/USDT", -45.0, PRICE))
    decision = manager(long_only=False).evaluate(entry(confidence=0.3, side=Side.SELL), portfolio)
    assert decision.action is RiskAction.REDUCED
    assert decision.quantity == pytest.approx(5.0)


def test_fixed_quantity_passes_unchanged_under_a_generous_policy() -> None:
    generous = RiskPolicySpec.model_validate(
        {
            "perTrade": {"minPercent": 0.01, "maxPercent": 100},
            "maxSymbolExposurePercent": 1000,
            "maxTotalExposurePercent": 1000,
            "maxLeverage": 10,
            "dailyLossLimitPercent": 100,
            "maxDrawdownPercent": 100,
            "circuitBreaker": {"levels": []},
            "volatilityHalt": {"enabled": False},
        }
    )
    sizing = Sizing(method=SizingMethod.FIXED_QUANTITY, quantity=0.1)
    risk = RiskManager(generous, sizing, long_only=True)
    risk.on_candle(0, EQUITY, {"BTC/USDT": 60_000.0})
    proposal = TradeProposal("BTC/USDT", Side.BUY, 60_000.0, 0.05, True)
    decision = risk.evaluate(proposal, book())
    assert decision.action is RiskAction.APPROVED
    assert decision.quantity == 0.1  # 60% of equity, a tiny confidence: neither matters
    assert decision.events == ()


def test_fixed_quantity_is_still_held_to_the_per_trade_maximum() -> None:
    sizing = Sizing(method=SizingMethod.FIXED_QUANTITY, quantity=0.1)
    risk = RiskManager(RiskPolicySpec(), sizing, long_only=True)
    risk.on_candle(0, EQUITY, {"BTC/USDT": 60_000.0})
    decision = risk.evaluate(TradeProposal("BTC/USDT", Side.BUY, 60_000.0, 0.5, True), book())
    assert decision.action is RiskAction.REDUCED
    assert decision.quantity == pytest.approx(0.025)  # 15% of 10,000 at 60,000
    assert [event.rule for event in decision.events] == [RiskRule.PER_TRADE_MAX]
    assert "60.00%" in decision.events[0].message


def test_fixed_quantity_prefers_the_quantity_the_proposal_requests() -> None:
    sizing = Sizing(method=SizingMethod.FIXED_QUANTITY, quantity=0.1)
    risk = RiskManager(RiskPolicySpec(), sizing, long_only=True)
    risk.on_candle(0, EQUITY, {"BTC/USDT": 60_000.0})
    proposal = TradeProposal("BTC/USDT", Side.BUY, 60_000.0, 0.5, True, requested_quantity=0.02)
    decision = risk.evaluate(proposal, book())
    assert (decision.action, decision.quantity) == (RiskAction.APPROVED, 0.02)


BTC_RULES = MarketRules("BTC/USDT", 0.001, 0.01, 0.001, 5.0, "test filters")


def test_an_entry_is_rounded_down_to_the_markets_step() -> None:
    decision = manager().evaluate(entry(confidence=0.3001, rules=BTC_RULES), book())
    # a quarter of 30.01% of 10,000 at 100 is 7.5025 units: 7.502 on the 0.001 step
    assert decision.action is RiskAction.APPROVED
    assert decision.quantity == 7.502


def test_an_entry_below_the_markets_minimum_is_a_recorded_rejection_naming_the_rule() -> None:
    policy = RiskPolicySpec(per_trade={"minPercent": 0.01, "maxPercent": 5.0})
    tiny = TradeProposal("BTC/USDT", Side.BUY, PRICE, 0.3, True, requested_quantity=0.0204, rules=BTC_RULES)
    decision = manager(policy, Sizing(method=SizingMethod.FIXED_QUANTITY, quantity=0.0204)).evaluate(tiny, book())
    assert decision.action is RiskAction.REJECTED and decision.quantity == 0.0
    [event] = decision.events
    assert event.rule == RiskRule.MARKET_MINIMUM == "market_minimum"
    assert event.message == (
        "entry sized 0.0204 BTC/USDT: quantity: 0.02 BTC at 100 is 2 USDT, below BTC/USDT's minimum notional "
        "5 USDT (test filters); the smallest order is 0.05 BTC"
    )


def test_an_exit_is_rounded_to_the_step_and_a_dust_exit_is_refused_with_the_reason() -> None:
    risk = manager()
    exit_all = TradeProposal("BTC/USDT", Side.SELL, PRICE, 1.0, False, rules=BTC_RULES)
    approved = risk.evaluate(exit_all, book(("BTC/USDT", 7.5029, PRICE)))
    assert (approved.action, approved.quantity) == (RiskAction.APPROVED, 7.502)
    dust = risk.evaluate(exit_all, book(("BTC/USDT", 0.0409, PRICE)))
    assert dust.action is RiskAction.REJECTED and dust.quantity == 0.0
    assert dust.events[0].rule == RiskRule.MARKET_MINIMUM
    assert dust.events[0].message.startswith("exit of 0.0409 BTC/USDT cannot be sent, the position stays: quantity:")


# --- allocationPercent: the share of the equity the strategy sizes against -----------------------------------------


def allocated(percent: float, policy: RiskPolicySpec | None = None, sizing: Sizing | None = None) -> RiskManager:
    risk = RiskManager(policy or RiskPolicySpec(), sizing, True, allocation_percent=percent)
    risk.on_candle(0, EQUITY, {"BTC/USDT": PRICE})
    return risk


def test_an_allocation_sizes_the_entry_on_its_share_of_the_equity() -> None:
    decision = allocated(40).evaluate(entry(confidence=0.3), book())
    # a quarter of 30% = 7.5% of the allocated 4,000 = 300 -> 3 units at 100 (7.5 with the whole equity)
    assert decision.action is RiskAction.APPROVED
    assert decision.quantity == pytest.approx(3.0)


def test_an_allocation_caps_exposure_at_its_share_and_says_so() -> None:
    decision = allocated(50).evaluate(entry(confidence=0.3), book(("BTC/USDT", 22.5, PRICE)))
    # held 2,250 = 45% of the allocated 5,000; 7.5% (3.75 units) more would be 52.5% > 50%: 250 (2.5 units) fits
    assert decision.action is RiskAction.REDUCED
    assert decision.quantity == pytest.approx(2.5)
    [event] = decision.events
    assert event.rule == RiskRule.SYMBOL_EXPOSURE
    assert "52.50% of allocated capital" in event.message


def test_a_position_already_above_a_lowered_allocation_is_kept_but_not_added_to() -> None:
    risk = allocated(100)
    held = book(("BTC/USDT", 40.0, PRICE))  # 40% of the equity: 7.5% more stays within the 50% symbol cap
    assert risk.evaluate(entry(confidence=0.3), held).action is RiskAction.APPROVED
    risk.set_allocation(50)  # now 4,000 held is 80% of the allocated 5,000
    decision = risk.evaluate(entry(confidence=0.3), held)
    assert (decision.action, decision.quantity) == (RiskAction.REJECTED, 0.0)
    assert decision.events[0].rule == RiskRule.SYMBOL_EXPOSURE
    exit_decision = risk.evaluate(TradeProposal("BTC/USDT", Side.SELL, PRICE, 0.0, False, requested_quantity=40), held)
    assert (exit_decision.action, exit_decision.quantity) == (RiskAction.APPROVED, 40)


def test_a_fixed_quantity_is_held_to_the_per_trade_maximum_of_the_allocated_capital() -> None:
    sizing = Sizing(method=SizingMethod.FIXED_QUANTITY, quantity=0.1)
    risk = RiskManager(RiskPolicySpec(), sizing, long_only=True, allocation_percent=20)
    risk.on_candle(0, EQUITY, {"BTC/USDT": 60_000.0})
    decision = risk.evaluate(TradeProposal("BTC/USDT", Side.BUY, 60_000.0, 0.5, True), book())
    assert decision.quantity == pytest.approx(0.005)  # 15% of the allocated 2,000 at 60,000


def test_an_allocation_of_zero_refuses_every_entry_and_says_why_and_exits_still_pass() -> None:
    risk = allocated(0)
    assert risk.closes_positions
    decision = risk.evaluate(entry(confidence=0.9), book())
    assert (decision.action, decision.quantity) == (RiskAction.REJECTED, 0.0)
    assert decision.events[0].rule == RiskRule.ALLOCATION == "allocation"
    assert "0%" in decision.events[0].message
    exit_decision = risk.evaluate(TradeProposal("BTC/USDT", Side.SELL, PRICE, 0.0, False, requested_quantity=2), book())
    assert exit_decision.action is RiskAction.APPROVED


def test_the_whole_allocation_sizes_exactly_as_without_one() -> None:
    with_default, with_100 = manager(), allocated(100)
    for confidence in (0.05, 0.3, 0.9):
        assert with_default.evaluate(entry(confidence=confidence), book()) == with_100.evaluate(
            entry(confidence=confidence), book()
        )
    assert not with_100.closes_positions


@pytest.mark.parametrize("bad", [-0.1, 100.1, float("nan"), True, "50"])
def test_an_allocation_outside_0_to_100_is_refused_and_changes_nothing(bad) -> None:
    risk = allocated(30)
    with pytest.raises(ValueError, match="allocation_percent"):
        risk.set_allocation(bad)
    assert risk.allocation_percent == 30
