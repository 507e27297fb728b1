"""RiskPolicy: defaults, bounds, and a Strategy's field-by-field overrides."""

from __future__ import annotations

import pydantic
import pytest

from slsbot.api import RiskLimits, RiskPolicySpec


def test_defaults_are_a_conservative_policy_with_three_breaker_levels():
    spec = RiskPolicySpec()
    assert spec.kelly_fraction == 0.25 and spec.max_leverage == 1 and not spec.kill_switch
    assert [level.action for level in spec.circuit_breaker.levels] == ["reduceSize", "stopEntries", "flattenAndHalt"]
    assert [level.drawdown_percent for level in spec.circuit_breaker.levels] == [5, 10, 15]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"maxDrawdownPercent": -5}, "maxDrawdownPercent"),
        ({"maxDrawdownPercent": 0}, "maxDrawdownPercent"),
        ({"kellyFraction": 0.5}, "kellyFraction"),
        ({"maxLeverage": 0.5}, "maxLeverage"),
        ({"scope": "galaxy"}, "scope"),
        ({"circuitBreaker": {"levels": [{"action": "panic", "drawdownPercent": 5}]}}, "circuitBreaker.levels.0.action"),
        ({"circuitBreaker": {"levels": [{"action": "stopEntries"}]}}, "circuitBreaker.levels.0.drawdownPercent"),
        ({"volatilityHalt": {"cooldown": "soon"}}, "volatilityHalt.cooldown"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(change, field):
    with pytest.raises(pydantic.ValidationError) as caught:
        RiskPolicySpec.model_validate(change)
    assert field in str(caught.value)


def test_overrides_replace_only_the_fields_they_set():
    policy = RiskPolicySpec.model_validate({"maxDrawdownPercent": 20, "dailyLossLimitPercent": 5})
    merged = policy.with_overrides(RiskLimits.model_validate({"maxDrawdownPercent": 10}))
    assert merged.max_drawdown_percent == 10
    assert merged.daily_loss_limit_percent == 5
    assert policy.max_drawdown_percent == 20
    assert policy.with_overrides(None) is policy


def test_an_override_outside_the_policy_bounds_is_rejected():
    with pytest.raises(pydantic.ValidationError, match="kellyFraction"):
        RiskLimits.model_validate({"kellyFraction": 0.3})
