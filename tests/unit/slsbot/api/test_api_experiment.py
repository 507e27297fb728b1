"""Experiment: tuning needs a search space, ab needs two uniquely named variants, parameters need bounds."""

from __future__ import annotations

import pydantic
import pytest

from slsbot.api import ExperimentSpec
from slsbot.api.experiment import SearchParameter

FAST = {"name": "sma.fast", "type": "int", "low": 5, "high": 30}


def _variant(name: str, strategy: str) -> dict:
    return {"name": name, "strategyRef": {"name": strategy}}


def test_tuning_needs_a_search_space():
    with pytest.raises(pydantic.ValidationError, match=r"searchSpace: a tuning experiment needs at least one"):
        ExperimentSpec.model_validate({"type": "tuning", "strategyRef": {"name": "btc"}})
    spec = ExperimentSpec.model_validate({"type": "tuning", "strategyRef": {"name": "btc"}, "searchSpace": [FAST]})
    assert spec.search_space[0].name == "sma.fast"
    assert spec.budget.max_trials == 50 and spec.objective.metric == "sharpe"


@pytest.mark.parametrize(
    "variants",
    [[], [_variant("a", "btc")], [_variant("a", "btc"), _variant("b", "btc-2"), _variant("c", "btc-3")]],
)
def test_ab_needs_exactly_two_variants(variants):
    with pytest.raises(pydantic.ValidationError, match=r"variants: an ab experiment has exactly two variants"):
        ExperimentSpec.model_validate({"type": "ab", "strategyRef": {"name": "btc"}, "variants": variants})


def test_ab_baseline_is_the_variant_running_strategy_ref():
    spec = ExperimentSpec.model_validate(
        {"type": "ab", "strategyRef": {"name": "btc"}, "variants": [_variant("new", "btc-2"), _variant("old", "btc")]}
    )
    assert spec.baseline.name == "old" and spec.candidate.name == "new"
    with pytest.raises(pydantic.ValidationError, match=r"exactly one variant must run spec.strategyRef \('btc'\)"):
        ExperimentSpec.model_validate(
            {"type": "ab", "strategyRef": {"name": "btc"}, "variants": [_variant("a", "x"), _variant("b", "y")]}
        )


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([10, 50, 25, 100], r"schedule.steps\[2\]: 25 must be above the step before \(50\)"),
        ([10, 10, 100], r"schedule.steps\[1\]"),
        ([0, 50, 100], r"schedule.steps\[0\]"),
        ([10, 25, 50], r"schedule.steps: the last step is 50; it must be 100"),
        ([10, 150], r"schedule.steps\[1\]: 150 must be .* at most 100"),
    ],
)
def test_ab_steps_rise_to_100(steps, message):
    body = {
        "type": "ab",
        "strategyRef": {"name": "btc"},
        "variants": [_variant("a", "btc"), _variant("b", "btc-2")],
        "schedule": {"steps": steps},
    }
    with pytest.raises(pydantic.ValidationError, match=message):
        ExperimentSpec.model_validate(body)


def test_ab_variant_names_are_unique():
    variants = [_variant("a", "btc"), _variant("a", "btc-2")]
    with pytest.raises(pydantic.ValidationError, match=r"variants: names must be unique"):
        ExperimentSpec.model_validate({"type": "ab", "strategyRef": {"name": "btc"}, "variants": variants})
    variants[1]["name"] = "b"
    spec = ExperimentSpec.model_validate({"type": "ab", "strategyRef": {"name": "btc"}, "variants": variants})
    assert [v.name for v in spec.variants] == ["a", "b"]


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        ({"name": "sma.fast", "type": "int", "low": 5}, r"searchSpace\[sma\.fast\]: int parameters need low and high"),
        ({"name": "sma.fast", "type": "float", "low": 5, "high": 5}, r"searchSpace\[sma\.fast\]\.low: must be below"),
        ({"name": "sma.w", "type": "float", "low": 0, "high": 1, "log": True}, r"searchSpace\[sma\.w\]\.low: a log"),
        ({"name": "sma.kind", "type": "categorical"}, r"searchSpace\[sma\.kind\]\.choices: categorical"),
        ({"name": "fast", "type": "int", "low": 1, "high": 2}, r"name"),
    ],
)
def test_search_parameters_need_bounds_or_choices(parameter, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        SearchParameter.model_validate(parameter)


def test_categorical_choices_are_free_form():
    parameter = SearchParameter.model_validate({"name": "sma.kind", "type": "categorical", "choices": [1, "a", True]})
    assert parameter.choices == [1, "a", True]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "grid"}, "type"),
        ({"budget": {"maxDuration": "2 hours"}}, "budget.maxDuration"),
        ({"budget": {"maxTrials": 0}}, "budget.maxTrials"),
        ({"schedule": {"significance": 1}}, "schedule.significance"),
        ({"objective": {"metric": "luck"}}, "objective.metric"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(change, field):
    document = {"type": "tuning", "strategyRef": {"name": "btc"}, "searchSpace": [FAST], **change}
    with pytest.raises(pydantic.ValidationError) as caught:
        ExperimentSpec.model_validate(document)
    assert field in str(caught.value)
