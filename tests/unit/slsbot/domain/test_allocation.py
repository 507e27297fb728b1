"""check_allocation: the Strategies of one account claim 100% of its capital at most; the later-created are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from slsbot.api import Strategy
from slsbot.domain.allocation import (
    AllocationClaim,
    account_claims,
    allocated_percent,
    check_allocation,
    over_allocation,
)
from slsbot.domain.resolve import INVALID_SPEC

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _strategy(name: str, percent: float | None, *, account: str = "paper", created: datetime | None = T0) -> Strategy:
    spec = {
        "accountRef": {"name": account},
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
    }
    if percent is not None:
        spec["allocationPercent"] = percent
    metadata = {"name": name}
    if created is not None:
        metadata["creationTimestamp"] = created.isoformat().replace("+00:00", "Z")
    return Strategy.model_validate({"metadata": metadata, "spec": spec})


def _claims(*strategies: Strategy) -> list[AllocationClaim]:
    return [AllocationClaim.of(s) for s in strategies]


def test_the_default_is_the_whole_account_and_the_field_is_bounded():
    assert _strategy("a", None).spec.allocation_percent == 100
    for bad in (-1, 100.5):
        with pytest.raises(ValidationError, match="allocationPercent"):
            _strategy("a", bad)


def test_shares_that_fit_are_all_accepted_and_a_float_sum_of_100_fits():
    a, b, c = _strategy("a", 33.3), _strategy("b", 33.3, created=T0 + timedelta(1)), _strategy("c", 33.4)
    claims = _claims(a, b, c)
    assert [check_allocation(s, claims) for s in (a, b, c)] == [[], [], []]
    assert allocated_percent("paper", claims) == pytest.approx(100)


def test_the_later_created_strategy_is_refused_naming_the_field_the_account_the_others_and_the_fix():
    first = _strategy("zeta-first", 70, created=T0)
    later = _strategy("alpha-later", 50, created=T0 + timedelta(seconds=5))
    claims = _claims(first, later)
    assert check_allocation(first, claims) == []  # the running one keeps running, though its name sorts last
    [problem] = check_allocation(later, claims)
    assert problem.reason == INVALID_SPEC
    assert problem.field == "spec.allocationPercent"
    message = problem.message
    assert "TradingAccount 'paper'" in message and "120%" in message
    assert "zeta-first 70%" in message
    assert "lower allocationPercent to at most 30" in message


def test_the_same_creation_second_is_ordered_by_name_and_an_unknown_creation_counts_as_newest():
    b, a = _strategy("b", 60), _strategy("a", 60)
    assert check_allocation(a, _claims(a, b)) == []
    assert check_allocation(b, _claims(a, b))[0].field == "spec.allocationPercent"
    unknown = _strategy("aaa", 60, created=None)
    assert check_allocation(unknown, _claims(unknown, b))
    assert check_allocation(b, _claims(unknown, b)) == []


def test_other_accounts_do_not_count_and_the_strategys_own_edit_wins_over_a_stale_claim():
    mine = _strategy("a", 100)
    elsewhere = _strategy("other", 100, account="live", created=T0 - timedelta(days=1))
    stale = AllocationClaim("a", "paper", 10, T0)  # what an index held before the edit to 100
    earlier = _strategy("early", 20, created=T0 - timedelta(hours=1))
    assert check_allocation(mine, [stale, AllocationClaim.of(elsewhere)]) == []
    [problem] = check_allocation(mine, [stale, AllocationClaim.of(earlier)])
    assert "120%" in problem.message


def test_refused_shares_still_count_for_the_strategies_created_after_them():
    a = _strategy("a", 60, created=T0)
    b = _strategy("b", 60, created=T0 + timedelta(seconds=1))  # refused (120)
    c = _strategy("c", 40, created=T0 + timedelta(seconds=2))  # fits beside a alone, not beside a and b
    claims = _claims(a, b, c)
    [problem] = check_allocation(c, claims)
    assert "claim 120%" in problem.message and "lower theirs first" in problem.message


def test_account_claims_are_in_creation_order():
    a = _strategy("a", 10, created=T0 + timedelta(seconds=2))
    b = _strategy("b", 10, created=T0)
    c = _strategy("c", 10, account="elsewhere")
    assert [claim.name for claim in account_claims("paper", _claims(a, b, c))] == ["b", "a"]


def test_a_controller_may_move_shares_between_variants_but_not_past_the_whole_account():
    claims = _claims(_strategy("base", 60), _strategy("cand", 0), _strategy("eth", 40), _strategy("x", 90, account="o"))
    assert over_allocation("paper", claims, {"base": 45, "cand": 15}) is None
    reason = over_allocation("paper", claims, {"base": 60, "cand": 15})
    assert reason is not None and "115%" in reason and "cand 15%" in reason and "eth 40%" in reason
