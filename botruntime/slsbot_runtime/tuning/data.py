"""What a tuning process loads once and reuses for every trial: the candles of the whole walk, the folds, and a
backtest over any window of those candles.

``backtest.run_backtest`` reads the candle files on every call, which costs several times the backtest of a
fold in fast mode. A worker runs hundreds of backtests over the same candles, so it loads each symbol's file
once (``load_tuning_data``) and cuts every backtest's window out of memory as ``backtest.inputs.load_window``
cuts it from the file: open times from the window's start (inclusive) to its end (exclusive). The backtest
itself is ``run_backtest``'s auto mode: fast where it reproduces step mode, else step, saying why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from slsbot.api import RuntimeConfig
from slsbot_runtime.backtest.inputs import BacktestWindow, backtest_config, interval_ms
from slsbot_runtime.backtest.report import BacktestResult
from slsbot_runtime.backtest.runner import run_backtest
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.domain.errors import DataError
from slsbot_runtime.evaluation.folds import Fold
from slsbot_runtime.evaluation.walk_forward import FoldResult, fold_config, fold_window, measure_fold
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.tuning.plan import TuningPlan
from slsbot_runtime.tuning.windows import TuningFold, tuning_folds


@dataclass(slots=True)
class BacktestClock:
    """Wall time spent inside backtests (window cut, decisions, simulation, metrics), and how many ran."""

    seconds: float = 0.0
    runs: int = 0
    modes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoadedCandles:
    """Every symbol's candles, in memory; ``backtest`` runs any window of them."""

    data_dir: Path
    histories: tuple[OHLCV, ...]
    clock: BacktestClock = field(default_factory=BacktestClock)

    @classmethod
    def load(cls, config: RuntimeConfig, data_dir: str | Path) -> LoadedCandles:
        """Each of ``config``'s symbols at its timeframe, as the runtime's replay loads it; DataError when missing."""
        prepared = backtest_config(config, data_dir=data_dir, window=BacktestWindow())
        folder = Path(data_dir)
        step = interval_ms(prepared)
        histories = tuple(
            load_history(folder, symbol, str(prepared.timeframe), interval_ms=step) for symbol in prepared.symbols
        )
        return cls(folder, histories)

    def backtest(self, config: RuntimeConfig, window: BacktestWindow) -> BacktestResult:
        """``run_backtest(config, window=window, mode="auto")`` over the loaded candles."""
        started = time.perf_counter()
        histories = [self._cut(history, window) for history in self.histories]
        result = run_backtest(config, data_dir=self.data_dir, window=window, mode="auto", histories=histories)
        self.clock.seconds += time.perf_counter() - started
        self.clock.runs += 1
        self.clock.modes[result.mode] = self.clock.modes.get(result.mode, 0) + 1
        return result

    def fold_backtest(self, config: RuntimeConfig, fold: Fold, *, warmup: int) -> FoldResult:
        """The fold's window measured as ``evaluation.walk_forward`` measures it (``measure_fold``)."""
        prepared = fold_config(config, warmup)
        return measure_fold(prepared, fold, self.backtest(prepared, fold_window(fold)))

    def between(self, start_ms: int, end_ms: int) -> list[OHLCV]:
        return [_slice(history, start_ms, end_ms) for history in self.histories]

    def _cut(self, history: OHLCV, window: BacktestWindow) -> OHLCV:
        start = 0 if window.start is None else _ms(window.start)
        end = None if window.end is None else _ms(window.end)
        cut = _slice(history, start, end)
        if len(cut) == 0:
            raise DataError(f"no {history.symbol} candles between {window.start} and {window.end} in {self.data_dir}")
        return cut


@dataclass(frozen=True, slots=True)
class TuningData:
    """A plan made ready to run: the candles, the folds and the warm-up every backtest starts with."""

    plan: TuningPlan
    candles: LoadedCandles
    folds: list[TuningFold]
    warmup: int
    interval_ms: int


def load_tuning_data(plan: TuningPlan) -> TuningData:
    """Load the plan's candles once and cut the folds; ConfigError naming the plan's field, or DataError."""
    folder = plan.data_folder
    candles = LoadedCandles.load(plan.base, folder)
    step = interval_ms(plan.base)
    warmup = max([plan.base.market_data.warmup_candles, *(model.lookback for model in plan.base.ml.models)])
    folds = tuning_folds(
        data_start_ms=max(int(h.ts[0]) for h in candles.histories),
        data_end_ms=min(int(h.ts[-1]) for h in candles.histories) + step,
        interval_ms=step,
        warmup=warmup,
        train_days=plan.walk_forward.train_days,
        test_days=plan.walk_forward.test_days,
        count=plan.walk_forward.folds,
        end_ms=None if plan.window_end is None else _ms(plan.window_end),
    )
    # keep only what the folds read: less to cut from on every backtest
    kept = LoadedCandles(
        candles.data_dir, tuple(candles.between(folds[0].train.warmup_start_ms, folds[-1].test.end_ms))
    )
    return TuningData(plan, kept, folds, warmup, step)


def _slice(history: OHLCV, start_ms: int, end_ms: int | None) -> OHLCV:
    ts = np.asarray(history.ts)
    first = int(np.searchsorted(ts, start_ms, side="left"))
    last = len(ts) if end_ms is None else int(np.searchsorted(ts, end_ms, side="left"))
    return history.slice(first, last)


def _ms(moment: datetime) -> int:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return int(moment.timestamp() * 1000)
