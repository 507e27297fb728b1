"""Configs and candles for the evaluation tests: small windows of the repository's recorded BTC and ETH 1h."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slsbot.api import RuntimeConfig
from slsbot_runtime.config_loading import parse_runtime_config
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.features.base import OHLCV

#: Three library members, fixed sizes and no binding risk limit: fast mode, so a fold takes milliseconds.
SMALL_CONFIG: dict[str, Any] = {
    "apiVersion": "slsbot.io/v1alpha1",
    "kind": "RuntimeConfig",
    "name": "small",
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
            {"name": "donchian", "strategy": "donchian_breakout", "params": {"entry": 20, "exit": 10}},
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
    "marketData": {"source": "replay", "warmupCandles": 50},
}


@pytest.fixture(scope="session")
def candles_dir(repo_root: Path) -> Path:
    return repo_root / "data/market/binance-spot-1h-2024"


@pytest.fixture
def small_config(candles_dir: Path) -> Callable[..., RuntimeConfig]:
    """``small_config(members=[...], **{"marketData.warmupCandles": 30})``: the small config with changes."""

    def build(members: list[dict[str, Any]] | None = None, **changes: Any) -> RuntimeConfig:
        data = copy.deepcopy(SMALL_CONFIG)
        data["marketData"]["dataDir"] = str(candles_dir)
        if members is not None:
            data["ensemble"]["members"] = members
        for path, value in changes.items():
            node = data
            *parents, last = path.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
        return parse_runtime_config(data)

    return build


@pytest.fixture(scope="session")
def btc_eth(candles_dir: Path) -> Callable[[int, int], list[OHLCV]]:
    """``btc_eth(first, count)``: ``count`` candles of BTC/USDT and ETH/USDT 1h from row ``first``."""
    full = [load_history(candles_dir, s, "1h", interval_ms=3_600_000) for s in ("BTC/USDT", "ETH/USDT")]

    def window(first: int, count: int) -> list[OHLCV]:
        return [history.slice(first, first + count) for history in full]

    return window
