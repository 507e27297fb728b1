"""``run_evaluation`` end to end on two months of BTC and ETH: what it compares, what it selects, what it records,
and that a strategy failing the lookahead check is refused before anything is backtested."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.fakes.peeking_components import NextClosePeeker

from slsbot_runtime.evaluation.runner import EvaluationSettings, LookaheadFailed, run_evaluation
from slsbot_runtime.strategy import registry as strategy_registry

WINDOW = EvaluationSettings(
    folds=3,
    start=datetime(2025, 1, 1, tzinfo=UTC),
    end=datetime(2025, 3, 1, tzinfo=UTC),
    lookahead_cuts=4,
    lookahead_random_cuts=2,
    pbo_blocks=8,
)


def test_the_ensemble_each_member_and_buy_and_hold_are_measured_and_the_best_is_deflated(small_config):
    evaluation = run_evaluation(small_config(), settings=WINDOW)
    data = evaluation.to_json()
    assert set(data) == {
        "evaluation",
        "ensemble",
        "members",
        "buy_and_hold",
        "selection",
        "lookahead",
        "record",
        "fingerprint",
    }
    assert data["evaluation"]["held_out"] == {"from": "2025-01-01T00:00:00Z", "to": "2025-03-01T00:00:00Z"}
    assert [f["candles"] for f in data["evaluation"]["folds"]] == [472, 472, 472]
    assert list(data["members"]) == ["sma", "rsi", "donchian"]
    for result in (data["ensemble"], *data["members"].values(), data["buy_and_hold"]):
        assert len(result["folds"]) == 3 and result["overall"]["final_equity"] > 0
    selection = data["selection"]
    labels = ["ensemble", "ensemble.members[sma]", "ensemble.members[rsi]", "ensemble.members[donchian]"]
    assert selection["candidates"] == labels
    sharpes = {label: d["sharpe_per_period"] for label, d in selection["deflated_sharpe"].items()}
    assert selection["selected"] == max(sharpes, key=sharpes.get)
    assert {d["trials"] for d in selection["deflated_sharpe"].values()} == {4}
    assert {d["observations"] for d in selection["deflated_sharpe"].values()} == {3 * 472}
    assert selection["pbo"]["splits"] == 70 and 0.0 <= selection["pbo"]["pbo"] <= 1.0
    assert data["lookahead"]["passed"] and data["lookahead"]["seed"] == 0
    record = data["record"]
    assert record["parameters"]["folds"] == 3 and record["seeds"] == {"lookahead_cuts": 0, "models": {}}
    assert record["models"] == {} and set(record["code"]["libraries"]) == {
        "numpy",
        "scikit-learn",
        "skops",
        "predictor",
    }
    assert record["config"]["runtime_config"]["name"] == "small"
    assert [f["name"] for f in record["data"]["files"]] == ["BTC_USDT-1h.feather", "ETH_USDT-1h.feather"]


def test_the_warm_up_is_the_longest_of_the_config_and_its_models_lookbacks(small_config):
    config = small_config(**{"marketData.warmupCandles": 40})
    assert run_evaluation(config, settings=WINDOW).warmup == 40
    # a model's lookback is history a fold must have before it
    # one month and a small forest: only the warm-up is under test (from the start of the data with the default forest
    # it trained for minutes)
    with_model = small_config(
        **{
            "marketData.warmupCandles": 40,
            "ml.models": [{"name": "m", "kind": "randomForest", "lookback": 320, "params": {"n_estimators": 5}}],
        }
    )
    settings = EvaluationSettings(
        folds=1, lookahead_cuts=0, lookahead_random_cuts=0, start=datetime(2024, 12, 1, tzinfo=UTC), end=WINDOW.start
    )
    evaluation = run_evaluation(with_model, settings=settings)
    assert evaluation.warmup == 320
    assert evaluation.folds[0].start_ms - evaluation.folds[0].warmup_start_ms == 320 * 3_600_000


def test_models_are_candidates_retrained_in_every_fold_and_recorded_with_their_seeds(small_config):
    models = [
        {
            "name": "forest",
            "kind": "randomForest",
            "features": ["logret_1", "logret_6", "rsi_14", "realized_vol_24"],
            "lookback": 400,
            "retrainEvery": "168h",
            "horizon": 2,
            "embargo": 2,
            "params": {"n_estimators": 10, "random_state": 7},
        }
    ]
    members = [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30, "mode": "level"}}]
    evaluation = run_evaluation(small_config(members=members, **{"ml.models": models}), settings=WINDOW)
    data = evaluation.to_json()
    assert evaluation.warmup == 400
    assert list(data["members"]) == ["sma", "forest"]
    assert data["selection"]["candidates"] == ["ensemble", "ensemble.members[sma]", "ml.models[forest]"]
    assert data["lookahead"]["passed"] and set(data["lookahead"]["units"]) == set(data["selection"]["candidates"])
    forest = data["members"]["forest"]
    assert forest["overall"]["trades"] > 0  # the model alone trades: it was trained and voted in every fold
    assert all(fold["metrics"]["trades"] > 0 for fold in forest["folds"])
    assert forest["overall"] != data["members"]["sma"]["overall"]
    record = data["record"]
    assert record["seeds"] == {"lookahead_cuts": 0, "models": {"forest": 7}}
    trained = record["models"]["forest"]
    assert trained["params"]["n_estimators"] == 10 and trained["params"]["max_depth"] == 6  # a default, recorded
    assert (trained["lookback"], trained["retrain_every"], trained["horizon"], trained["embargo"]) == (
        400,
        "168h",
        2,
        2,
    )


def test_one_member_is_its_own_ensemble_and_nothing_is_selected(small_config):
    config = small_config(members=[{"name": "sma", "strategy": "sma_cross"}])
    data = run_evaluation(config, settings=WINDOW).to_json()
    assert data["members"] == {} and data["selection"]["candidates"] == ["ensemble"]
    assert data["selection"]["pbo"] is None and "one candidate" in data["selection"]["pbo_skipped"]


def test_a_strategy_that_looks_ahead_is_refused_before_any_backtest(small_config, monkeypatch):
    # the check builds deciders from the registry it reads when it runs; backtests use the runtime's library,
    # which does not know the peeking component: had a backtest run first, it would have failed differently
    monkeypatch.setattr(strategy_registry, "LIBRARY", strategy_registry.LIBRARY.extended(NextClosePeeker))
    members = [{"name": "sma", "strategy": "sma_cross"}, {"name": "peek", "strategy": "next_close_peeker"}]
    with pytest.raises(LookaheadFailed) as failure:
        run_evaluation(small_config(members=members), settings=WINDOW)
    units = {v.unit for v in failure.value.report.violations}
    assert units == {"ensemble", "ensemble.members[peek]"}
    assert "ensemble.members[peek]: BTC/USDT direction after the candle of" in str(failure.value)
    assert "no out-of-sample result to report" in str(failure.value)
