"""A trial: fold by fold on the training windows, each fold's value reported for the pruner, the mean as the
trial's value; pruning stops hopeless trials between folds; a combination the component refuses is pruned with
the reason; what finalize needs is in the trial's user attributes."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from slsbot.api.experiment import Objective
from slsbot_runtime.evaluation.walk_forward import Curve
from slsbot_runtime.tuning.data import load_tuning_data
from slsbot_runtime.tuning.objective import TrialObjective, daily_returns, objective_values
from slsbot_runtime.tuning.plan import parse_plan
from slsbot_runtime.tuning.study import build_pruner, build_sampler

H = 3_600_000
DAY = 24 * H


def _run(plan):
    """``plan.maxTrials`` trials in memory."""
    study = optuna.create_study(direction=plan.directions[0], sampler=build_sampler(plan, 5), pruner=build_pruner(plan))
    study.optimize(TrialObjective(load_tuning_data(plan)), n_trials=plan.max_trials)
    return study


def test_undefined_metrics_count_as_no_edge():
    objectives = [Objective(metric=m) for m in ("sharpe", "profitFactor", "maxDrawdown", "totalReturn")]
    metrics = {"sharpe": None, "profit_factor": None, "max_drawdown_pct": 3.5, "total_return_pct": float("nan")}
    assert objective_values(metrics, objectives) == [0.0, 1.0, 3.5, 0.0]


def test_daily_returns_compound_to_the_window_and_split_at_utc_midnight():
    start = 1_735_689_600_000  # 2025-01-01 00:00
    ts = np.array([start - H, *[start + k * H for k in range(48)]], dtype=np.int64)
    equity = np.concatenate(([100.0], 100.0 * 1.001 ** np.arange(1, 49)))
    days, returns = daily_returns(Curve(ts, equity), start, start + 2 * DAY)
    assert list(days) == [start + 23 * H, start + 47 * H]
    np.testing.assert_allclose(returns, [1.001**24 - 1, 1.001**24 - 1])
    late, part = daily_returns(Curve(ts, equity), start + 30 * H, start + 2 * DAY)  # a span starting mid-day
    assert list(late) == [start + 47 * H]
    np.testing.assert_allclose(part, [1.001**18 - 1])


def test_a_trial_runs_every_training_window_and_records_what_finalize_needs(small_plan):
    plan = small_plan(pruning=False, maxTrials=3)
    study = _run(plan)
    data = load_tuning_data(plan)
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        folds = trial.user_attrs["fold_values"]
        assert len(folds) == len(data.folds) == 3
        assert trial.intermediate_values == {k: folds[k][0] for k in range(3)}
        assert trial.value == pytest.approx(np.mean([v[0] for v in folds]))
        timing = trial.user_attrs["timing"]
        assert 0 < timing["backtest_seconds"] <= timing["trial_seconds"]
        assert timing["modes"] == {"fast": 3}  # fast mode reproduces this config
        returns = trial.user_attrs["returns"]
        assert len(returns["ts"]) == len(returns["values"]) > 20


def test_pruning_stops_hopeless_trials_between_folds(small_plan):
    plan = small_plan(sampler="random", maxTrials=16)
    study = _run(plan)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "16 random trials, none below the median on a fold"
    for trial in pruned:
        folds = trial.user_attrs["fold_values"]
        assert trial.intermediate_values == {k: values[0] for k, values in enumerate(folds)}
        assert "invalid" not in trial.user_attrs
        assert "returns" not in trial.user_attrs
    assert not any(
        t.state == TrialState.PRUNED for t in _run(small_plan(sampler="random", pruning=False, maxTrials=16)).trials
    )


def test_a_combination_the_component_refuses_is_pruned_with_the_reason(plan_data):
    plan = parse_plan(
        plan_data(
            sampler="random",
            pruning=False,
            maxTrials=12,
            searchSpace=[
                {"name": "sma.fast", "type": "int", "low": 20, "high": 40},
                {"name": "sma.slow", "type": "int", "low": 25, "high": 45},
            ],
        )
    )
    study = _run(plan)
    invalid = [t for t in study.trials if "invalid" in t.user_attrs]
    assert invalid and all(t.state == TrialState.PRUNED for t in invalid)
    assert all(t.params["sma.fast"] >= t.params["sma.slow"] for t in invalid)
    assert "ensemble.members[sma].params.slow: must be greater than fast" in invalid[0].user_attrs["invalid"]
    assert all(t.state == TrialState.COMPLETE for t in study.trials if t.params["sma.fast"] < t.params["sma.slow"])
