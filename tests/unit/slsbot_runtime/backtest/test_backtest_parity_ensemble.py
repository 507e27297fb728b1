"""The full ensemble in fast mode gives exactly the step mode's trades and equity on real candles: all twelve library
components on eight pairs, every voting method, Kelly sizing from the signal track record (and from the confidence
before it has one), the volatility halt, the circuit breaker up to flattenAndHalt, the loss limits, shorts and the
kill switch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from slsbot.api import RuntimeConfig
from slsbot_runtime.backtest.fast import run_fast
from slsbot_runtime.backtest.inputs import BacktestWindow, backtest_config, load_window
from slsbot_runtime.backtest.metrics import round_trips
from slsbot_runtime.backtest.report import RunRecord
from slsbot_runtime.backtest.runner import run_backtest
from slsbot_runtime.backtest.step import run_step
from slsbot_runtime.config_loading import parse_runtime_config
from slsbot_runtime.domain.equity import max_drawdown_percent

REPO = Path(__file__).resolve().parents[4]
EXAMPLE = REPO / "examples/backtest/ensemble-8-symbols.yaml"
SIX_MONTHS = BacktestWindow(datetime(2024, 10, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
THREE_MONTHS = BacktestWindow(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))


def _example(**changes: Any) -> RuntimeConfig:
    """The committed example (its own data folder in this repository), with these wire fields set."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["marketData"]["dataDir"] = str(REPO / "data/market/binance-spot-1h-2024")
    for path, value in changes.items():
        node = data
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return parse_runtime_config(data)


def _both(config: RuntimeConfig, window: BacktestWindow) -> tuple[RunRecord, RunRecord]:
    prepared = backtest_config(config, data_dir=None, window=window)
    histories = load_window(prepared, window)
    return run_step(prepared, histories), run_fast(prepared, histories)


def _fast(config: RuntimeConfig, window: BacktestWindow) -> RunRecord:
    prepared = backtest_config(config, data_dir=None, window=window)
    return run_fast(prepared, load_window(prepared, window))


def _assert_same(step: RunRecord, fast: RunRecord) -> None:
    assert fast.fills == step.fills
    assert np.array_equal(fast.candle_ts, step.candle_ts)
    assert np.array_equal(fast.equity, step.equity)  # bit for bit


@pytest.mark.slow
def test_the_eight_symbol_ensemble_example_over_six_months_gives_the_step_modes_trades_and_fingerprint():
    config = _example()
    step = run_backtest(config, window=SIX_MONTHS, mode="step")
    fast = run_backtest(config, window=SIX_MONTHS, mode="auto")
    assert fast.mode == "fast" and fast.fallback_reason is None
    assert step.candles == fast.candles == 8 * 182 * 24
    assert len(step.trades) > 400  # 461 round trips
    assert fast.trades == step.trades
    assert fast.metrics == step.metrics
    assert fast.fingerprint == step.fingerprint
    assert np.array_equal(fast.equity, step.equity)
    # what the run went through: the first breaker level (reduceSize at 8%) tripped, and the volatility halt refused
    # entries that would otherwise have been taken
    assert max_drawdown_percent(step.equity) > 8.0
    no_halt = _example(**{"risk.volatilityHalt.enabled": False})
    assert run_backtest(no_halt, window=SIX_MONTHS, mode="fast").trades != fast.trades


TIGHT_LIMITS = {
    "risk.circuitBreaker.levels": [
        {"action": "reduceSize", "drawdownPercent": 2, "sizeMultiplier": 0.5, "cooldown": "6h"},
        {"action": "flattenAndHalt", "drawdownPercent": 5, "cooldown": "12h"},
    ],
    "risk.dailyLossLimitPercent": 1.5,
    "risk.maxDrawdownPercent": 30,
    "risk.perTrade.maxPercent": 30,
    "risk.maxSymbolExposurePercent": 40,
}


@pytest.mark.slow
@pytest.mark.parametrize("voting", ["majority", "confidence", "sharpe"])
def test_every_voting_method_long_and_short_under_tight_limits_that_flatten_and_halt_matches(voting):
    config = _example(**{"ensemble.voting": voting, "longOnly": False, **TIGHT_LIMITS})
    step, fast = _both(config, THREE_MONTHS)
    trades = round_trips(step.fills)
    assert len(trades) > 50
    assert {trade.side for trade in trades} == {"long", "short"}
    _assert_same(step, fast)
    # the flattenAndHalt level and the daily loss limit both changed what was traded
    levels = TIGHT_LIMITS["risk.circuitBreaker.levels"][:1]
    without_flatten = _example(
        **{"ensemble.voting": voting, "longOnly": False, **TIGHT_LIMITS, "risk.circuitBreaker.levels": levels}
    )
    assert _fast(without_flatten, THREE_MONTHS).fills != fast.fills
    no_daily_limit = _example(
        **{"ensemble.voting": voting, "longOnly": False, **TIGHT_LIMITS, "risk.dailyLossLimitPercent": 100}
    )
    assert _fast(no_daily_limit, THREE_MONTHS).fills != fast.fills


@pytest.mark.slow
def test_two_flatten_and_halt_levels_hold_until_the_later_cooldown_ends_in_both_modes():
    """The deeper level trips while the shallower one flattens: the breaker lets go only when the deeper one's
    cooldown ends, and the symbols trade again from there in both modes."""
    levels = [
        {"action": "flattenAndHalt", "drawdownPercent": 3, "cooldown": "12h"},
        {"action": "flattenAndHalt", "drawdownPercent": 5, "cooldown": "48h"},
    ]
    config = _example(**{**TIGHT_LIMITS, "risk.circuitBreaker.levels": levels, "risk.dailyLossLimitPercent": 100})
    step, fast = _both(config, THREE_MONTHS)
    assert len(round_trips(step.fills)) > 100
    _assert_same(step, fast)


def test_the_kill_switch_trades_nothing_in_either_mode():
    window = BacktestWindow(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 20, tzinfo=UTC))
    step, fast = _both(_example(**{"risk.killSwitch": True}), window)
    assert step.fills == [] and fast.fills == []
    _assert_same(step, fast)
