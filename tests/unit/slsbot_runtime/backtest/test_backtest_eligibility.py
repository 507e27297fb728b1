"""Which configs fast mode refuses outright, and the per-candle risk limits it checks on the equity path."""

from __future__ import annotations

import numpy as np
import pytest

from slsbot.api.riskpolicy import RiskPolicySpec
from slsbot_runtime.backtest.eligibility import (
    FastModeUnavailable,
    daily_loss_percents,
    drawdown_percents,
    equity_path_blockers,
    static_blockers,
)
from slsbot_runtime.domain.equity import drawdown_percent
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.risk.manager import RiskManager

H = 3_600_000
DAY = 24 * H


def test_the_sma_example_has_no_static_blocker(sma_config):
    assert static_blockers(sma_config()) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sizing": {"method": "risk"}}, "sizing.method"),
        ({"risk.volatilityHalt.enabled": True}, "risk.volatilityHalt.enabled"),
        ({"risk.killSwitch": True}, "risk.killSwitch"),
        ({"ml.models": [{"name": "odd", "kind": "isolationForest", "role": "anomaly"}]}, "ml.models[odd]"),
    ],
)
def test_each_static_blocker_names_its_field(sma_config, changes, field):
    reasons = static_blockers(sma_config(**changes))
    assert len(reasons) == 1
    assert reasons[0].startswith(field + ":")


def test_models_do_not_keep_a_config_from_fast_mode(sma_config):
    """Models retrain in fast mode at the step mode's points (the parity test runs both)."""
    assert static_blockers(sma_config(**{"ml.models": [{"name": "rf", "kind": "randomForest"}]})) == []


def test_a_pinned_model_is_refused_in_any_backtest(sma_config):
    from slsbot_runtime.backtest.inputs import BacktestWindow, backtest_config

    config = sma_config(**{"ml.models": [{"name": "rf", "kind": "randomForest", "pinnedVersion": 3}]})
    with pytest.raises(ConfigError, match=r"ml.models\[rf\].pinnedVersion: a backtest retrains its models"):
        backtest_config(config, data_dir=None, window=BacktestWindow())


def test_the_refusal_is_a_config_error_listing_every_reason():
    error = FastModeUnavailable(["a: one", "b: two"])
    assert isinstance(error, ConfigError)
    assert error.reasons == ("a: one", "b: two")
    assert error.summary == "a: one; b: two"
    assert "a: one; b: two" in str(error) and "--mode step" in str(error)


def test_drawdowns_equal_the_breakers_own_arithmetic():
    equity = np.array([100.0, 120.0, 90.0, 130.0, 117.0, 0.5])
    expected = []
    peak = 0.0
    for value in equity:
        peak = max(peak, value)
        expected.append(drawdown_percent(peak, value))
    assert drawdown_percents(equity).tolist() == expected
    assert drawdown_percents(equity)[2] == pytest.approx(25.0)


def test_daily_loss_is_measured_from_each_utc_days_opening_equity():
    ts = np.array([0, H, 2 * H, DAY, DAY + H, DAY + 2 * H])
    equity = np.array([96.0, 95.0, 101.0, 95.0, 96.0, 103.0])
    # day 0 opens at the starting 100; day 1 at 101, the equity after day 0's last candle
    expected = [4.0, 5.0, 0.0, 100 * 6 / 101, 100 * 5 / 101, 0.0]
    assert daily_loss_percents(ts, equity, opening_equity=100.0).tolist() == pytest.approx(expected)


def test_daily_losses_equal_the_risk_managers_own_arithmetic():
    rng = np.random.default_rng(3)
    ts = np.sort(rng.choice(np.arange(0, 10 * DAY, H), size=120, replace=False))  # days with gaps, some empty
    equity = 1_000.0 * np.cumprod(1 + rng.normal(0, 0.02, size=len(ts)))
    risk = RiskManager(_policy(), None, True)
    risk.set_opening_equity(1_000.0)
    expected = [risk.on_candle(int(t), float(e)).daily_loss_percent for t, e in zip(ts, equity, strict=True)]
    assert daily_loss_percents(ts, equity, opening_equity=1_000.0).tolist() == expected
    assert max(expected) > 5.0


def test_a_loss_in_the_midnight_candle_itself_is_a_blocker():
    ts = np.array([DAY - H, DAY, DAY + H])
    (reason,) = equity_path_blockers(
        _policy(dailyLossLimitPercent=5), ts, np.array([100.0, 94.0, 95.0]), opening_equity=100.0
    )
    assert reason.startswith("risk.dailyLossLimitPercent:") and "1970-01-02T00:00Z" in reason


def _policy(**limits) -> RiskPolicySpec:
    base = {"circuitBreaker": {"levels": []}, "maxDrawdownPercent": 100, "dailyLossLimitPercent": 100}
    return RiskPolicySpec.model_validate({**base, **limits})


def test_a_path_clear_of_every_limit_passes():
    ts = np.arange(4) * H
    assert equity_path_blockers(_policy(), ts, np.array([100.0, 99.0, 101.0, 100.0]), opening_equity=100.0) == []


def test_the_first_breaker_level_reached_is_named_with_its_time():
    ts = np.arange(4) * H
    policy = _policy(circuitBreaker={"levels": [{"action": "reduceSize", "drawdownPercent": 5}]})
    (reason,) = equity_path_blockers(policy, ts, np.array([100.0, 96.0, 95.0, 99.0]), opening_equity=100.0)
    assert reason.startswith("risk.circuitBreaker.levels:")
    assert "1970-01-01T02:00Z" in reason and "reduceSize" in reason
    assert equity_path_blockers(policy, ts, np.array([100.0, 96.0, 95.01, 99.0]), opening_equity=100.0) == []


def test_max_drawdown_and_daily_loss_limits_are_named():
    ts = np.arange(3) * H
    reasons = equity_path_blockers(
        _policy(maxDrawdownPercent=10, dailyLossLimitPercent=8), ts, np.array([100.0, 89.0, 90.0]), opening_equity=100.0
    )
    assert [r.split(":")[0] for r in reasons] == ["risk.maxDrawdownPercent", "risk.dailyLossLimitPercent"]
