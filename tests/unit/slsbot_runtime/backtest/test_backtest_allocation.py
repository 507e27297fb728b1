"""allocationPercent in a backtest: entries are sized on the allocated share of the equity, the same in fast and step
mode; at 0 nothing is traded in either."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from slsbot_runtime.backtest.fast import run_fast
from slsbot_runtime.backtest.inputs import BacktestWindow, backtest_config, load_window
from slsbot_runtime.backtest.report import RunRecord
from slsbot_runtime.backtest.step import run_step

WINDOW = BacktestWindow(datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 9, 1, tzinfo=UTC))


def _both(config) -> tuple[RunRecord, RunRecord]:
    prepared = backtest_config(config, data_dir=None, window=WINDOW)
    histories = load_window(prepared, WINDOW)
    return run_step(prepared, histories), run_fast(prepared, histories)


def _entries(record: RunRecord) -> dict[str, float]:
    return {fill.client_order_id: fill.quantity for fill in record.fills if fill.side == "buy"}


def test_fixed_sizes_cut_by_the_per_trade_maximum_of_the_allocated_capital_match_in_both_modes(sma_config):
    changes = {"sizing.quantity": 2.0, "account.paper.startingBalance": 50_000, "risk.perTrade.maxPercent": 12}
    whole = _entries(_both(sma_config(**changes))[0])
    step, fast = _both(sma_config(**changes, allocationPercent=25))
    assert fast.fills == step.fills
    assert np.array_equal(fast.equity, step.equity)  # bit for bit
    quarter = _entries(step)
    assert quarter.keys() == whole.keys()  # the same signals, a quarter of the size (12% of 25% of the equity)
    first = next(iter(whole))  # both cut to 12% of their capital, at the same equity and price
    assert quarter[first] / whole[first] == pytest.approx(0.25, rel=1e-3)


def test_an_allocation_of_zero_trades_nothing_in_either_mode(sma_config):
    step, fast = _both(sma_config(allocationPercent=0))
    assert step.fills == [] and fast.fills == []
    assert np.array_equal(fast.equity, step.equity)
