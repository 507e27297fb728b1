"""Plans for the tuning tests: an SMA crossover and an RSI reversion on BTC/USDT and ETH/USDT 1h, the repository's
recorded candles (2024-09 to 2026-02), short walk-forward windows so that a trial takes a few tens of
milliseconds (fast mode)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slsbot_runtime.tuning.plan import TuningPlan, parse_plan

BASE: dict[str, Any] = {
    "apiVersion": "slsbot.io/v1alpha1",
    "kind": "RuntimeConfig",
    "name": "btc-eth-trend",
    "account": {
        "name": "backtest",
        "exchange": "binance",
        "paper": {"startingBalance": 100000, "feeRate": 0.001, "spreadBps": 1, "slippageBps": 2},
    },
    "symbols": ["BTC/USDT", "ETH/USDT"],
    "timeframe": "1h",
    "ensemble": {
        "voting": "majority",
        "members": [
            {"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30, "mode": "level"}},
            {"name": "rsi", "strategy": "rsi_reversion"},
        ],
    },
    "sizing": {"method": "fixedQuantity", "quantity": 0.1},
    "risk": {
        "perTrade": {"minPercent": 0.001, "maxPercent": 100},
        "maxSymbolExposurePercent": 1000,
        "maxTotalExposurePercent": 1000,
        "maxLeverage": 1,
        "dailyLossLimitPercent": 100,
        "maxDrawdownPercent": 100,
        "circuitBreaker": {"levels": []},
        "volatilityHalt": {"enabled": False},
    },
    "marketData": {"source": "replay", "warmupCandles": 60},
}

SPACE: list[dict[str, Any]] = [
    {"name": "sma.fast", "type": "int", "low": 3, "high": 20},
    {"name": "sma.slow", "type": "int", "low": 25, "high": 60, "step": 5},
    {"name": "rsi.period", "type": "int", "low": 5, "high": 21},
]


@pytest.fixture(scope="session")
def candles_dir(repo_root: Path) -> Path:
    return repo_root / "data/market/binance-spot-1h-2024"


@pytest.fixture(scope="session")
def plan_data(candles_dir: Path) -> Callable[..., dict[str, Any]]:
    """``plan_data(maxTrials=8, ...)``: the small plan as JSON data, with top-level fields replaced."""

    def build(**changes: Any) -> dict[str, Any]:
        base = copy.deepcopy(BASE)
        base["marketData"]["dataDir"] = str(candles_dir)
        data: dict[str, Any] = {
            "base": base,
            "searchSpace": copy.deepcopy(SPACE),
            "walkForward": {"trainDays": 20, "testDays": 7, "folds": 3},
            "windowEnd": "2026-01-01T00:00:00Z",
            "maxTrials": 8,
            "seed": 3,
        }
        data.update(changes)
        return data

    return build


@pytest.fixture(scope="session")
def small_plan(plan_data: Callable[..., dict[str, Any]]) -> Callable[..., TuningPlan]:
    def build(**changes: Any) -> TuningPlan:
        return parse_plan(plan_data(**changes))

    return build
