"""The tuning plan: a JSON round trip, and every bad plan refused with the field named and the fix said."""

from __future__ import annotations

import json

import pytest

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.tuning.plan import TuningPlan, load_plan, parse_plan


def test_a_plan_survives_a_json_round_trip(small_plan):
    plan = small_plan(
        objectives=[{"metric": "sharpe"}, {"metric": "maxDrawdown", "direction": "minimize"}],
        pruning=False,
        deadline="2030-01-01T00:00:00Z",
        acceptance={"minDeflatedSharpe": 0.9, "maxPbo": 0.4},
    )
    again = TuningPlan.model_validate_json(plan.to_json())
    assert again == plan
    wire = json.loads(plan.to_json())
    assert wire["searchSpace"][0]["name"] == "sma.fast" and wire["acceptance"] == {
        "minDeflatedSharpe": 0.9,
        "maxPbo": 0.4,
    }
    assert plan.directions == ["maximize", "minimize"]


def test_load_plan_reads_the_file_and_names_an_unreadable_one(tmp_path, plan_data):
    file = tmp_path / "plan.json"
    file.write_text(json.dumps(plan_data(maxTrials=3)))
    assert load_plan(file).max_trials == 3
    with pytest.raises(ConfigError, match=r"^--plan: cannot read .*missing\.json"):
        load_plan(tmp_path / "missing.json")
    file.write_text("{not json")
    with pytest.raises(ConfigError, match=r"^--plan: .* is not JSON"):
        load_plan(file)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"searchSpace": [{"name": "macd.fast", "type": "int", "low": 2, "high": 9}]},
            r"searchSpace\[0\]\.name: macd\.fast names no member of base\.ensemble \('macd'\); "
            r"its members are sma, rsi",
        ),
        (
            {"searchSpace": [{"name": "sma.window", "type": "int", "low": 2, "high": 9}]},
            r"searchSpace\[0\]\.name: sma\.window: member sma \(sma_cross\) has no parameter 'window'; "
            r"it accepts fast, slow, mode",
        ),
        (
            {"sampler": "grid", "searchSpace": [{"name": "rsi.oversold", "type": "float", "low": 20, "high": 35}]},
            r"searchSpace\[0\]\.step: the grid sampler needs a finite space, and the float parameter rsi\.oversold has "
            r"no step",
        ),
        (
            {"objectives": [{"metric": "sharpe"}, {"metric": "maxDrawdown", "direction": "minimize"}]},
            r"^pruning: Optuna prunes single-objective studies only .* set pruning to false",
        ),
        (
            {
                "sampler": "cmaes",
                "pruning": False,
                "objectives": [{"metric": "sharpe"}, {"metric": "maxDrawdown", "direction": "minimize"}],
            },
            r"^sampler: cmaes optimises one objective",
        ),
        (
            {"objectives": [{"metric": "sharpe"}, {"metric": "sharpe"}], "pruning": False},
            r"^objectives: two objectives",
        ),
        (
            {"searchSpace": [{"name": "sma.fast", "type": "int", "low": 2, "high": 9, "step": 1, "log": True}]},
            r"searchSpace\[0\]\.step: a log-scale parameter cannot have a step",
        ),
        (
            {"searchSpace": [{"name": "sma.fast", "type": "int", "low": 2.5, "high": 9}]},
            r"searchSpace\[0\]\.low: an int parameter needs whole numbers",
        ),
        (
            {"searchSpace": [{"name": "rsi.oversold", "type": "float", "low": 20, "high": 35, "step": 4}]},
            r"searchSpace\[0\]\.high: high - low \(15\) is not a multiple of step \(4\)",
        ),
        (
            {"searchSpace": [{"name": "sma.fast", "type": "int"}]},
            r"^searchSpace\[0\]: searchSpace\[sma\.fast\]: int parameters need low and high",
        ),
        ({"maxTrials": 0}, r"^maxTrials: Input should be greater than or equal to 1"),
        ({"objectives": [{"metric": "alpha"}]}, r"^objectives\[0\]\.metric: Input should be 'sharpe', 'sortino'"),
        ({"sampler": "bayes"}, r"^sampler: Input should be 'tpe', 'cmaes', 'random' or 'grid'"),
        ({"walkForward": {"trainDays": 0}}, r"^walkForward\.trainDays: Input should be greater than or equal to 1"),
        ({"maxTrails": 5}, r"^maxTrails: unknown field"),
    ],
)
def test_a_bad_plan_is_refused_naming_the_field(plan_data, change, message):
    with pytest.raises(ConfigError, match=message):
        parse_plan(plan_data(**change))


def test_an_unknown_component_is_named_as_the_registry_names_it(plan_data):
    data = plan_data()
    data["base"]["ensemble"]["members"][0]["strategy"] = "sma_crosss"
    with pytest.raises(ConfigError, match=r"ensemble\.members\[sma\]\.strategy: unknown strategy 'sma_crosss'"):
        parse_plan(data)


def test_a_trial_config_is_the_base_with_the_members_parameters_replaced(small_plan):
    plan = small_plan()
    config = plan.trial_config({"sma.fast": 7, "sma.slow": 45, "rsi.period": 9})
    members = {m.name: m for m in config.ensemble.members}
    assert members["sma"].params == {"fast": 7, "slow": 45, "mode": "level"}
    assert members["rsi"].params == {"period": 9}
    assert plan.base.ensemble.members[0].params == {"fast": 10, "slow": 30, "mode": "level"}  # the base unchanged
    assert config.model_copy(update={"ensemble": plan.base.ensemble}) == plan.base  # nothing else changed


def test_a_combination_the_component_refuses_is_a_config_error_naming_the_parameter(small_plan):
    with pytest.raises(ConfigError, match=r"ensemble\.members\[sma\]\.params\.slow: must be greater than fast"):
        small_plan().trial_config({"sma.fast": 30, "sma.slow": 25, "rsi.period": 9})


def test_the_grid_is_every_value_and_bounds_the_trials(small_plan):
    plan = small_plan(
        sampler="grid",
        maxTrials=500,
        searchSpace=[
            {"name": "sma.fast", "type": "int", "low": 4, "high": 10, "step": 3},
            {"name": "rsi.oversold", "type": "float", "low": 20, "high": 30, "step": 2.5},
            {"name": "sma.mode", "type": "categorical", "choices": ["level", "cross"]},
        ],
    )
    assert plan.grid() == {
        "sma.fast": [4, 7, 10],
        "rsi.oversold": [20.0, 22.5, 25.0, 27.5, 30.0],
        "sma.mode": ["level", "cross"],
    }
    assert plan.target_trials == 30  # the grid, not maxTrials
    assert (
        small_plan(sampler="grid", maxTrials=5, searchSpace=plan.model_dump(by_alias=True)["searchSpace"]).target_trials
        == 5
    )
