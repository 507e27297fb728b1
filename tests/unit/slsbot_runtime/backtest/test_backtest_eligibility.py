"""Which configs fast mode refuses outright: only what it cannot reproduce exactly, named by its field."""

from __future__ import annotations

import pytest

from slsbot_runtime.backtest.eligibility import FastModeUnavailable, static_blockers
from slsbot_runtime.domain.errors import ConfigError


def test_the_sma_example_has_no_static_blocker(sma_config):
    assert static_blockers(sma_config()) == []


def test_an_anomaly_model_is_refused_naming_the_model_and_the_fix(sma_config):
    reasons = static_blockers(
        sma_config(**{"ml.models": [{"name": "odd", "kind": "isolationForest", "role": "anomaly"}]})
    )
    assert len(reasons) == 1
    assert reasons[0].startswith("ml.models[odd]:") and "run --mode step" in reasons[0]


@pytest.mark.parametrize(
    "changes",
    [
        {"sizing": {"method": "risk"}},
        {"risk.volatilityHalt.enabled": True},
        {"risk.killSwitch": True},
        {"risk.circuitBreaker.levels": [{"action": "flattenAndHalt", "drawdownPercent": 1}]},
        {"risk.dailyLossLimitPercent": 0.5, "risk.maxDrawdownPercent": 1},
        {"ml.models": [{"name": "rf", "kind": "randomForest"}]},  # signal models retrain at the step mode's points
    ],
)
def test_risk_sizing_the_volatility_halt_the_kill_switch_the_limits_and_signal_models_run_in_fast_mode(
    sma_config, changes
):
    assert static_blockers(sma_config(**changes)) == []


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
