"""Every RiskPolicy preset in policies/ is accepted by the model and by the reconciler's own checks."""

from __future__ import annotations

import pytest
import yaml

from slsbot.api import RiskPolicy, parse_resource
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
