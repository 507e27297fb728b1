"""The candidates: the ensemble, each rule-based member alone and each voting model alone (a stacking model with
its inputs, which do not vote); a model that only feeds a stacking model is no candidate."""

from __future__ import annotations

from slsbot_runtime.app import build_deciders
from slsbot_runtime.evaluation.candidates import evaluation_candidates
from slsbot_runtime.ml.wiring import build_model_bank

FEATURES = ["logret_1", "logret_6", "rsi_14", "realized_vol_24"]


def _models(*, forest_votes: bool = True) -> list[dict]:
    common = {"lookback": 400, "retrainEvery": "24h", "horizon": 2, "embargo": 2}
    return [
        {"name": "logit", "kind": "logisticRegression", "features": FEATURES, **common},
        {"name": "forest", "kind": "randomForest", "features": FEATURES, "vote": forest_votes, **common},
        {"name": "stack", "kind": "stacking", "inputs": ["logit", "forest"], **common},
        {"name": "odd", "kind": "isolationForest", "role": "anomaly"},
    ]


def test_rule_members_then_voting_models_each_alone(small_config):
    config = small_config(**{"ml.models": _models()})
    candidates = evaluation_candidates(config)
    assert [c.label for c in candidates] == [
        "ensemble",
        "ensemble.members[sma]",
        "ensemble.members[rsi]",
        "ensemble.members[donchian]",
        "ml.models[logit]",
        "ml.models[forest]",
        "ml.models[stack]",
    ]
    by_name = {c.name: c.config for c in candidates}
    assert by_name["ensemble"] is config
    # a rule member alone: that member, no signal model, the anomaly model kept (it is risk, not a voter)
    sma = by_name["sma"]
    assert [m.name for m in sma.ensemble.members] == ["sma"]
    assert [m.name for m in sma.ml.models] == ["odd"] and not candidates[1].has_models
    # a model alone: no rule member; a stacking model keeps its inputs, out of the vote
    logit = by_name["logit"]
    assert logit.ensemble.members == [] and [m.name for m in logit.ml.models] == ["logit", "odd"]
    stack = by_name["stack"]
    assert [(m.name, m.vote) for m in stack.ml.signal_models] == [("logit", False), ("forest", False), ("stack", True)]
    for candidate in candidates:  # everything else is the ensemble's
        assert candidate.config.risk == config.risk and candidate.config.sizing == config.sizing
        assert candidate.config.ensemble.voting == config.ensemble.voting


def test_each_candidates_deciders_vote_with_its_members_only(small_config):
    config = small_config(**{"ml.models": _models()[:3]})
    expected = {
        "ensemble": ["sma", "rsi", "donchian", "logit", "forest", "stack"],
        "sma": ["sma"],
        "logit": ["logit"],
        "stack": ["stack"],
    }
    for candidate in evaluation_candidates(config):
        if candidate.name not in expected:
            continue
        models = build_model_bank(candidate.config, fast=True)
        decider = build_deciders(candidate.config, models=models)["BTC/USDT"]
        assert [m.name for m in decider.ensemble.members] == expected[candidate.name]


def test_a_model_that_only_feeds_the_stacking_model_is_no_candidate(small_config):
    config = small_config(**{"ml.models": _models(forest_votes=False)})
    labels = [c.label for c in evaluation_candidates(config)]
    assert "ml.models[forest]" not in labels and "ml.models[stack]" in labels


def test_a_rule_member_and_a_model_make_two_candidates_besides_the_ensemble(small_config):
    one = [{"name": "sma", "strategy": "sma_cross"}]
    config = small_config(members=one, **{"ml.models": _models()[:1]})
    assert [c.label for c in evaluation_candidates(config)] == ["ensemble", "ensemble.members[sma]", "ml.models[logit]"]
