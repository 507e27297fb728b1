"""Backtest configs for the tests: the committed examples, with changes applied field by field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from slsbot.api import RuntimeConfig
from slsbot_runtime.config_loading import parse_runtime_config


def _with_changes(data: dict[str, Any], changes: dict[str, Any]) -> RuntimeConfig:
    data = copy.deepcopy(data)
    for path, value in changes.items():
        node = data
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return parse_runtime_config(data)


@pytest.fixture(scope="session")
def sma_config_data(repo_root: Path) -> dict[str, Any]:
    data = yaml.safe_load((repo_root / "examples/backtest/sma-cross-btc.yaml").read_text())
    data["marketData"]["dataDir"] = str(repo_root / "data/market/binance-spot-1h-2017")
    return data


@pytest.fixture
def sma_config(sma_config_data: dict[str, Any]) -> Callable[..., RuntimeConfig]:
    """``sma_config(**{"account.paper.feeRate": 0.002})``: the sma-cross example with these wire fields set."""

    def build(**changes: Any) -> RuntimeConfig:
        return _with_changes(sma_config_data, changes)

    return build
