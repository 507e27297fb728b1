"""Walk-forward runs: each fold a backtest of its warm-up and window, measured on the window only, never trading in
the warm-up; the folds chained into the overall result."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from slsbot.api import TIMEFRAME_SECONDS
from slsbot_runtime.backtest.inputs import BacktestWindow
from slsbot_runtime.backtest.metrics import performance
from slsbot_runtime.backtest.runner import run_backtest
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.evaluation.folds import walk_forward_folds
from slsbot_runtime.evaluation.walk_forward import walk_forward, walk_forward_buy_and_hold

H = 3_600_000
JAN_2025 = 1_735_689_600_000


def _folds(warmup: int, count: int = 3, candles: int = 3 * 240):
    return walk_forward_folds(
        data_start_ms=JAN_2025 - 500 * H,
        data_end_ms=JAN_2025 + candles * H,
        interval_ms=H,
        warmup=warmup,
        count=count,
        start_ms=JAN_2025,
    )


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_a_fold_is_the_backtest_of_its_warm_up_and_window_measured_on_the_window(small_config, candles_dir):
    config = small_config(**{"marketData.warmupCandles": 50})
    folds = _folds(warmup=50)
    result = walk_forward("ensemble", config, folds, data_dir=candles_dir, warmup=50)
    fold = folds[1]
    direct = run_backtest(
        config, data_dir=candles_dir, window=BacktestWindow(_utc(fold.warmup_start_ms), _utc(fold.end_ms))
    )
    measured = result.folds[1]
    assert measured.trades == direct.trades and measured.fingerprint == direct.fingerprint
    first = int(np.searchsorted(direct.equity_ts, fold.start_ms))
    assert first == 50  # the warm-up's candle times
    np.testing.assert_array_equal(measured.curve.ts, direct.equity_ts[first - 1 :])
    np.testing.assert_array_equal(measured.curve.equity, direct.equity[first - 1 :])
    assert measured.curve.equity[0] == 100_000  # nothing happened in the warm-up
    exposed = direct.metrics["exposure_pct"] / 100 * len(direct.equity_ts)
    expected = performance(
        measured.curve.ts,
        measured.curve.equity,
        direct.trades,
        timeframe_seconds=TIMEFRAME_SECONDS["1h"],
        exposure=exposed / fold.candles,
    )
    assert measured.metrics == pytest.approx(expected, rel=1e-12)
    assert measured.metrics["total_return_pct"] == pytest.approx(100 * (measured.curve.equity[-1] / 100_000 - 1))


def test_the_warm_up_is_read_but_never_traded_on_even_when_the_config_would_trade_sooner(small_config, candles_dir):
    config = small_config(**{"marketData.warmupCandles": 31})  # sma 10/30 could trade after 31 candles
    folds = _folds(warmup=200)
    result = walk_forward("ensemble", config, folds, data_dir=candles_dir, warmup=200)
    for fold_result in result.folds:
        assert fold_result.trades, "the members trade in every fold of this window"
        assert min(trade.entry_ts for trade in fold_result.trades) >= fold_result.fold.start_ms
        assert fold_result.curve.equity[0] == 100_000
    # the same config's own warm-up over the same candles does trade before the fold starts
    fold = folds[0]
    own = run_backtest(
        config, data_dir=candles_dir, window=BacktestWindow(_utc(fold.warmup_start_ms), _utc(fold.end_ms))
    )
    assert min(trade.entry_ts for trade in own.trades) < fold.start_ms


def test_overall_is_the_folds_compounded_with_their_trades_pooled(small_config, candles_dir):
    config = small_config()
    folds = _folds(warmup=50)
    result = walk_forward("ensemble", config, folds, data_dir=candles_dir, warmup=50)
    growth = math.prod(1 + f.metrics["total_return_pct"] / 100 for f in result.folds)
    assert result.metrics["total_return_pct"] == pytest.approx(100 * (growth - 1), rel=1e-9)
    assert result.metrics["final_equity"] == pytest.approx(100_000 * growth, rel=1e-12)
    assert result.metrics["trades"] == sum(f.metrics["trades"] for f in result.folds)
    assert len(result.returns) == sum(f.fold.candles for f in result.folds) == len(result.curve.ts) - 1
    np.testing.assert_allclose(result.returns, result.curve.returns, rtol=1e-9, atol=1e-15)
    exposures = [f.metrics["exposure_pct"] * f.fold.candles for f in result.folds]
    assert result.metrics["exposure_pct"] == pytest.approx(sum(exposures) / sum(f.fold.candles for f in result.folds))


def test_buy_and_hold_is_measured_over_the_same_windows(small_config, candles_dir):
    config = small_config()
    folds = _folds(warmup=50)
    histories = [load_history(candles_dir, s, "1h", interval_ms=H) for s in config.symbols]
    hold = walk_forward_buy_and_hold(config, folds, histories, interval_ms=H)
    for fold_result in hold.folds:
        fold = fold_result.fold
        assert fold_result.curve.ts[0] == fold.start_ms - H and fold_result.curve.ts[-1] == fold.end_ms - H
        assert fold_result.metrics["exposure_pct"] == 100.0 and fold_result.metrics["trades"] == 0
        assert fold_result.trades == [] and fold_result.curve.equity[0] == 100_000
    growth = math.prod(1 + f.metrics["total_return_pct"] / 100 for f in hold.folds)
    assert hold.metrics["total_return_pct"] == pytest.approx(100 * (growth - 1), rel=1e-9)
