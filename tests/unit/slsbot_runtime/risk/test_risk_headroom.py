"""The account/global headroom the control plane pushes: parsed with errors naming the field, enforced on entries by
the risk manager (halt, size multiplier, symbol and total room used up across entries, kill switch), and, once
expired, the runtime's own policy limits again, never none."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slsbot.api import RiskPolicySpec
from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import PortfolioSnapshot, Position, Side
from slsbot_runtime.risk.base import RiskAction, RiskRule, TradeProposal
from slsbot_runtime.risk.headroom import HeadroomLimits, awaiting_headroom, headroom_from_meta, parse_headroom
from slsbot_runtime.risk.manager import RiskManager

PRICE = 100.0
NOW = datetime(2026, 1, 1, tzinfo=UTC)
EQUITY = 10_000.0
# per trade up to 15 % of the equity (1,500), the runtime's own symbol cap 50 % (5,000)
POLICY = RiskPolicySpec.model_validate({"circuitBreaker": {"levels": []}, "perTrade": {"maxPercent": 15}})


def body(**changes: Any) -> dict[str, Any]:
    return {
        "scope": "account",
        "policy": "acct",
        "total_exposure": None,
        "symbol_exposure": {},
        "halt_entries": False,
        "size_multiplier": 1.0,
        "kill_switch": False,
        "reason": "account binance",
        "expires_at": (NOW + timedelta(seconds=30)).isoformat().replace("+00:00", "Z"),
        **changes,
    }


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


def manager(clock: Clock, **changes: Any) -> RiskManager:
    risk = RiskManager(POLICY, None, True)
    risk.on_candle(0, EQUITY, {"BTC/USDT": PRICE, "ETH/USDT": PRICE})
    risk.set_headroom(HeadroomLimits(parse_headroom(body(**changes)), clock))
    return risk


def entry(symbol: str = "BTC/USDT") -> TradeProposal:
    return TradeProposal(symbol, Side.BUY, PRICE, 1.0, True)  # full confidence: the per-trade maximum, 1,500


def flat() -> PortfolioSnapshot:
    return PortfolioSnapshot(0, EQUITY, EQUITY, {}, {"BTC/USDT": PRICE, "ETH/USDT": PRICE})


def rules(decision) -> list[str]:
    return [event.rule for event in decision.events]


def test_without_a_headroom_an_entry_is_the_per_trade_maximum() -> None:
    decision = RiskManager(POLICY, None, True).evaluate(entry(), flat())
    assert decision.action is RiskAction.REDUCED and decision.quantity == pytest.approx(15.0)


def test_symbol_room_cuts_an_entry_and_is_used_up_by_the_next() -> None:
    risk = manager(Clock(), symbol_exposure={"BTC/USDT": 2000.0})
    first = risk.evaluate(entry(), flat())
    assert first.quantity == pytest.approx(15.0)  # 1,500 of the 2,000 left
    second = risk.evaluate(entry(), flat())
    assert second.action is RiskAction.REDUCED and second.quantity == pytest.approx(5.0)  # the 500 left
    assert RiskRule.ACCOUNT_SYMBOL_EXPOSURE in rules(second)
    assert "500.00" in second.events[-1].message
    third = risk.evaluate(entry(), flat())
    assert third.action is RiskAction.REJECTED and RiskRule.ACCOUNT_SYMBOL_EXPOSURE in rules(third)
    # another symbol has no account symbol limit here
    assert risk.evaluate(entry("ETH/USDT"), flat()).quantity == pytest.approx(15.0)


def test_total_room_is_shared_by_every_symbol() -> None:
    risk = manager(Clock(), total_exposure=2500.0)
    assert risk.evaluate(entry("BTC/USDT"), flat()).quantity == pytest.approx(15.0)
    second = risk.evaluate(entry("ETH/USDT"), flat())
    assert second.quantity == pytest.approx(10.0) and RiskRule.ACCOUNT_TOTAL_EXPOSURE in rules(second)


def test_halt_entries_refuses_every_entry_but_exits_pass() -> None:
    risk = manager(Clock(), halt_entries=True, reason="account daily loss 6.0% beyond 5.0%")
    decision = risk.evaluate(entry(), flat())
    assert decision.action is RiskAction.REJECTED and rules(decision) == [RiskRule.ACCOUNT_HALT]
    assert "daily loss 6.0%" in decision.events[0].message
    held = PortfolioSnapshot(0, EQUITY, EQUITY, {}, {"BTC/USDT": PRICE})
    out = risk.evaluate(TradeProposal("BTC/USDT", Side.SELL, PRICE, 1.0, False, requested_quantity=3.0), held)
    assert (out.action, out.quantity) == (RiskAction.APPROVED, 3.0)


def test_size_multiplier_scales_entries() -> None:
    decision = manager(Clock(), size_multiplier=0.5).evaluate(entry(), flat())
    assert decision.quantity == pytest.approx(7.5) and RiskRule.ACCOUNT_SIZE in rules(decision)


def test_after_expiry_the_own_policy_limits_hold_not_none() -> None:
    clock = Clock()
    risk = manager(clock, symbol_exposure={"BTC/USDT": 0.0}, halt_entries=True)
    assert risk.evaluate(entry(), flat()).action is RiskAction.REJECTED
    clock.now += 31  # the control plane went away: no push since
    decision = risk.evaluate(entry(), flat())
    assert decision.quantity == pytest.approx(15.0)  # the policy's per-trade maximum still cuts it
    assert rules(decision) == [RiskRule.PER_TRADE_MAX]
    # and the runtime's own symbol cap (50 % = 5,000) still holds
    held = PortfolioSnapshot(0, EQUITY, EQUITY, {}, {"BTC/USDT": PRICE})
    held.positions["BTC/USDT"] = Position("BTC/USDT", 45.0, PRICE)
    capped = risk.evaluate(entry(), held)
    assert capped.quantity == pytest.approx(5.0) and RiskRule.SYMBOL_EXPOSURE in rules(capped)


def test_kill_switch_flattens_until_lifted_or_expired() -> None:
    clock = Clock()
    risk = manager(clock, kill_switch=True, reason="killSwitch set on acct")
    assert risk.must_flatten and RiskRule.KILL_SWITCH in rules(risk.evaluate(entry(), flat()))
    assert "acct" in (risk.halt_message() or "")
    assert risk.observe(3_600_000, EQUITY, {"BTC/USDT": PRICE})  # still must flatten
    risk.set_headroom(HeadroomLimits(parse_headroom(body()), clock))  # lifted by a push
    assert not risk.observe(7_200_000, EQUITY, {"BTC/USDT": PRICE})
    expiring = manager(clock, kill_switch=True)
    clock.now += 31  # the control plane went away: the runtime's own policy (no killSwitch) holds
    expiring.set_headroom(expiring.headroom)  # the runtime rechecks at the expiry
    assert not expiring.observe(0, EQUITY, {"BTC/USDT": PRICE})
    policy_kill = RiskManager(RiskPolicySpec(kill_switch=True), None, True)
    policy_kill.set_headroom(HeadroomLimits(parse_headroom(body()), clock))  # a push never lifts the policy's own
    assert policy_kill.must_flatten


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"scope": "cluster"}, "scope"),
        ({"size_multiplier": 0}, "size_multiplier"),
        ({"size_multiplier": 1.5}, "size_multiplier"),
        ({"total_exposure": -1}, "total_exposure"),
        ({"symbol_exposure": {"BTC/USDT": "lots"}}, "symbol_exposure['BTC/USDT']"),
        ({"symbol_exposure": {"BTC": 5}}, "symbol_exposure"),
        ({"halt_entries": "yes"}, "halt_entries"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": "2026-01-01T00:00:00"}, "expires_at"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_body_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{re.escape(field)}:"):
        parse_headroom(body(**changes))


def test_a_missing_field_is_named() -> None:
    data = body()
    del data["expires_at"]
    with pytest.raises(ValueError, match=r"^expires_at: missing"):
        parse_headroom(data)


def test_the_state_file_keeps_it_as_pushed() -> None:
    pushed = parse_headroom(body(symbol_exposure={"BTC/USDT": 10.0}, kill_switch=True))
    assert headroom_from_meta({"headroom": pushed.to_json()}) == pushed
    assert headroom_from_meta({}) is None
    with pytest.raises(StateError, match="state meta headroom: scope"):
        headroom_from_meta({"headroom": {**pushed.to_json(), "scope": "nope"}})
    assert pushed.status_json(NOW.timestamp() + 60)["expired"] is True


def test_a_new_push_keeps_only_the_entries_its_figures_do_not_hold() -> None:
    clock = Clock()
    first = HeadroomLimits(parse_headroom(body(total_exposure=10_000.0)), clock)
    first.use("BTC/USDT", 1_000.0)  # before the status the control plane read
    clock.now += 5
    figures_at = datetime.fromtimestamp(clock.now, UTC).isoformat()
    clock.now += 1
    first.use("ETH/USDT", 700.0)  # after it: not in the pushed figures
    second = HeadroomLimits.following(first, parse_headroom(body(total_exposure=2_000.0, figures_at=figures_at)), clock)
    assert (second.used_total, second.used_symbol) == (700.0, {"ETH/USDT": 700.0})
    assert HeadroomLimits.following(first, parse_headroom(body()), clock).used_total == 0.0  # no figures_at: none
    cut = second.cut("BTC/USDT", PRICE, 20.0, None)
    assert cut.quantity == pytest.approx(13.0)  # 2,000 - 700 left = 13 at 100


def test_under_an_account_policy_entries_wait_for_the_first_push_then_own_limits() -> None:
    clock = Clock()
    assert awaiting_headroom("strategy", clock.now) is None
    waiting = awaiting_headroom("account", clock.now, wait_s=30)
    assert waiting is not None
    risk = RiskManager(POLICY, None, True)
    risk.set_headroom(HeadroomLimits(waiting, clock))
    refused = risk.evaluate(entry(), flat())
    assert refused.action is RiskAction.REJECTED and "waiting for the first headroom" in refused.events[0].message
    clock.now += 31  # no control plane came
    assert risk.evaluate(entry(), flat()).quantity == pytest.approx(15.0)
