"""Every RiskPolicy preset in policies/ is accepted by the model and by the reconciler's own checks."""

from __future__ import annotations

import pytest
import yaml

from slsbot.api import RiskPolicy, RiskPolicySpec, parse_resource
from slsbot.domain.resolve import check_policy


def _presets(repo_root):
    return sorted((repo_root / "policies").glob("*.yaml"))


def test_there_are_presets(repo_root):
    assert len(_presets(repo_root)) >= 3


@pytest.mark.parametrize("name", ["conservative", "moderate", "paper-exploration"])
def test_preset_is_valid(repo_root, name):
    document = yaml.safe_load((repo_root / "policies" / f"{name}.yaml").read_text())
    policy = parse_resource(document)
    assert isinstance(policy, RiskPolicy)
    assert check_policy(policy.spec) == []
    assert policy.name == name


def test_the_presets_spell_out_the_anomaly_rule(repo_root):
    by_name = {path.stem: parse_resource(yaml.safe_load(path.read_text())).spec.anomaly for path in _presets(repo_root)}
    assert by_name["moderate"] == RiskPolicySpec().anomaly  # the defaults, written out
    conservative = by_name["conservative"]
    assert (conservative.threshold, conservative.count, str(conservative.action)) == (0.7, 2, "flattenAndHalt")
    assert all(anomaly.enabled for anomaly in by_name.values())


@pytest.mark.parametrize("threshold", [0.5, 0.2, 1.0])
def test_an_anomaly_threshold_that_would_veto_ordinary_candles_or_nothing_is_refused(threshold):
    with pytest.raises(ValueError, match=r"anomaly\.threshold"):
        RiskPolicySpec.model_validate({"anomaly": {"threshold": threshold}})
