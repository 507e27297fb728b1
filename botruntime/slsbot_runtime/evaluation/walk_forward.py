"""One candidate (or buy-and-hold) over every fold, measured out of sample only, and the folds chained.

A fold is one ``run_backtest`` (auto mode: fast when it reproduces step mode, else step) over the fold's
warm-up and out-of-sample candles, with ``marketData.warmupCandles`` set to the warm-up's length so that no
position is opened before the fold starts (exits do not wait, but there is nothing to exit). Out of it come
the points of the out-of-sample window, preceded by the equity before it (the last warm-up point: the starting
balance), so that a fill at the fold's first open counts; the metrics are the backtester's own
(``backtest.metrics.performance``) over those points, the run's trades (all of them open in the fold), and the
exposure over the fold's points.

Overall: the folds' returns compounded. Fold k's curve is scaled to start where fold k-1 ended, the trades of
every fold are pooled (each fold's money starts again from the starting balance, so their pnl are comparable),
and the exposure counts every fold's points.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from slsbot.api import TIMEFRAME_SECONDS, RuntimeConfig
from slsbot_runtime.backtest.inputs import BacktestWindow
from slsbot_runtime.backtest.metrics import Trade, performance
from slsbot_runtime.backtest.report import BacktestResult
from slsbot_runtime.backtest.runner import run_backtest
from slsbot_runtime.evaluation.benchmark import buy_and_hold
from slsbot_runtime.evaluation.folds import Fold
from slsbot_runtime.features.base import OHLCV

#: ``progress(fold index, candles done, candles in the fold's run)``, as each fold's backtest reports.
FoldProgress = Callable[[int, int, int], None]


@dataclass(frozen=True, slots=True)
class Curve:
    """Equity at the point before a window, then after each candle time in it."""

    ts: np.ndarray
    equity: np.ndarray

    @property
    def returns(self) -> np.ndarray:
        return np.diff(self.equity) / self.equity[:-1]


@dataclass(frozen=True, slots=True)
class FoldResult:
    fold: Fold
    curve: Curve
    trades: list[Trade]
    exposed_points: int
    metrics: dict[str, Any]
    mode: str  # the backtest's mode ("buy-and-hold" for the benchmark)
    fingerprint: str | None  # the fold backtest's fingerprint (trades and metrics of the whole run)
    fallback_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"fold": self.fold.index, "metrics": self.metrics}
        if self.fingerprint is not None:
            data["backtest_fingerprint"] = self.fingerprint
            data["mode"] = self.mode
        return data


@dataclass(frozen=True, slots=True)
class WalkForwardResult:
    name: str
    folds: list[FoldResult]
    curve: Curve  # the folds chained
    metrics: dict[str, Any]

    @property
    def returns(self) -> np.ndarray:
        """Per out-of-sample candle time, every fold's returns in a row (each fold's own, not the chain's)."""
        return np.concatenate([fold.curve.returns for fold in self.folds])

    def to_json(self) -> dict[str, Any]:
        return {"overall": self.metrics, "folds": [fold.to_json() for fold in self.folds]}


def walk_forward(
    name: str,
    config: RuntimeConfig,
    folds: Sequence[Fold],
    *,
    data_dir: str | Path,
    warmup: int,
    progress: FoldProgress | None = None,
) -> WalkForwardResult:
    """Backtest ``config`` over every fold's warm-up and window; measure the windows (see the module doc)."""
    prepared = fold_config(config, warmup)
    results = []
    for fold in folds:
        report = None if progress is None else functools.partial(progress, fold.index)
        result = run_backtest(prepared, data_dir=data_dir, window=fold_window(fold), mode="auto", progress=report)
        results.append(measure_fold(prepared, fold, result))
    return chained(name, config, results)


def fold_config(config: RuntimeConfig, warmup: int) -> RuntimeConfig:
    """``config`` as every fold runs it: no entry in the first ``warmup`` candles of the run, no fixed start."""
    market_data = config.market_data.model_copy(update={"warmup_candles": warmup, "start": None})
    return config.model_copy(update={"market_data": market_data})


def fold_window(fold: Fold) -> BacktestWindow:
    """The candles a fold's backtest reads: its warm-up, then its window."""
    return BacktestWindow(_datetime(fold.warmup_start_ms), _datetime(fold.end_ms))


def walk_forward_buy_and_hold(
    config: RuntimeConfig, folds: Sequence[Fold], histories: Sequence[OHLCV], *, interval_ms: int
) -> WalkForwardResult:
    """Buy-and-hold of ``config``'s symbols over every fold (``benchmark``), measured as the candidates are."""
    seconds = TIMEFRAME_SECONDS[str(config.timeframe)]
    results = []
    for fold in folds:
        window = [_between(history, fold.start_ms, fold.end_ms) for history in histories]
        holding = buy_and_hold(window, paper=config.account.paper, before_ts=fold.start_ms - interval_ms)
        curve = Curve(holding.ts, holding.equity)
        exposure = holding.exposed_points / (len(curve.ts) - 1)
        metrics = performance(curve.ts, curve.equity, [], timeframe_seconds=seconds, exposure=exposure)
        results.append(FoldResult(fold, curve, [], holding.exposed_points, metrics, "buy-and-hold", None))
    return chained("buy-and-hold", config, results)


def measure_fold(config: RuntimeConfig, fold: Fold, result: BacktestResult) -> FoldResult:
    """The fold's out-of-sample window measured in ``result``, the backtest of ``fold_config(config, warmup)``
    over ``fold_window(fold)`` (see the module doc)."""
    ts, equity = result.equity_ts, result.equity
    first = int(np.searchsorted(ts, fold.start_ms, side="left"))
    if first == len(ts):
        raise AssertionError(f"fold {fold.index}: the backtest has no candle from {fold.start_ms} on")
    early = [trade for trade in result.trades if trade.entry_ts < fold.start_ms]
    if early:  # the warm-up blocks entries; a trade before the fold would mean it was traded on
        raise AssertionError(f"fold {fold.index}: a trade entered at {early[0].entry_ts}, in the warm-up")
    interval = (fold.end_ms - fold.start_ms) // max(fold.candles, 1)
    anchor_ts = int(ts[first - 1]) if first > 0 else fold.start_ms - interval
    anchor = float(equity[first - 1]) if first > 0 else config.account.paper.starting_balance
    curve = Curve(np.concatenate(([anchor_ts], ts[first:])), np.concatenate(([anchor], equity[first:])))
    # no position exists in the warm-up, so every exposed point of the run is in the fold
    exposed = round(result.metrics["exposure_pct"] / 100.0 * len(ts))
    points = len(ts) - first
    metrics = performance(
        curve.ts,
        curve.equity,
        result.trades,
        timeframe_seconds=TIMEFRAME_SECONDS[result.timeframe],
        exposure=exposed / points,
    )
    return FoldResult(
        fold, curve, result.trades, exposed, metrics, result.mode, result.fingerprint, result.fallback_reason
    )


def chained(name: str, config: RuntimeConfig, folds: list[FoldResult]) -> WalkForwardResult:
    """The folds' results compounded into one (see the module doc)."""
    ts_parts: list[np.ndarray] = [folds[0].curve.ts[:1]]
    equity_parts: list[np.ndarray] = [folds[0].curve.equity[:1]]
    level = float(folds[0].curve.equity[0])
    for fold in folds:
        scaled = fold.curve.equity[1:] * (level / fold.curve.equity[0])
        ts_parts.append(fold.curve.ts[1:])
        equity_parts.append(scaled)
        level = float(scaled[-1])
    curve = Curve(np.concatenate(ts_parts), np.concatenate(equity_parts))
    trades = [trade for fold in folds for trade in fold.trades]
    points = len(curve.ts) - 1
    metrics = performance(
        curve.ts,
        curve.equity,
        trades,
        timeframe_seconds=TIMEFRAME_SECONDS[str(config.timeframe)],
        exposure=sum(fold.exposed_points for fold in folds) / points,
    )
    return WalkForwardResult(name, folds, curve, metrics)


def _between(history: OHLCV, start_ms: int, end_ms: int) -> OHLCV:
    ts = np.asarray(history.ts)
    return history.slice(int(np.searchsorted(ts, start_ms, side="left")), int(np.searchsorted(ts, end_ms, side="left")))


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
