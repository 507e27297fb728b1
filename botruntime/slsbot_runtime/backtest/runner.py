"""``run_backtest``: one RuntimeConfig over a window of recorded candles, in step, fast or auto mode.

* ``step``: the live loop itself (``backtest.step``). Always available.
* ``fast``: vectorized decisions and an event loop (``backtest.fast``); gives exactly the step mode's trades,
  or refuses with ``FastModeUnavailable`` naming why.
* ``auto``: fast when it can, else step; the result says which ran and why fast did not.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

from slsbot.api import TIMEFRAME_SECONDS, RuntimeConfig
from slsbot_runtime.backtest.eligibility import FastModeUnavailable, static_blockers
from slsbot_runtime.backtest.fast import run_fast
from slsbot_runtime.backtest.inputs import BacktestWindow, backtest_config, load_window
from slsbot_runtime.backtest.report import BacktestResult, Progress, summarize
from slsbot_runtime.backtest.step import run_step
from slsbot_runtime.features.base import OHLCV


class BacktestMode(StrEnum):
    STEP = "step"
    FAST = "fast"
    AUTO = "auto"


def run_backtest(
    config: RuntimeConfig,
    *,
    data_dir: str | Path | None = None,
    window: BacktestWindow | None = None,
    mode: BacktestMode | str = BacktestMode.AUTO,
    progress: Progress | None = None,
    histories: Sequence[OHLCV] | None = None,
) -> BacktestResult:
    """Backtest ``config`` (see ``inputs`` for what changes from a runtime). Raises ConfigError (bad config,
    or FastModeUnavailable for ``mode="fast"``) or DataError (missing or unusable candles). ``progress`` hears
    ``(candles done, candles in the window)`` as the run goes (again from 0 when auto falls back to step).
    ``histories``: the window's candles, already loaded (one per symbol, cut to ``window``), for callers that run
    many backtests over the same data (tuning); read from ``data_dir`` when None."""
    mode = BacktestMode(mode)
    window = window or BacktestWindow()
    prepared = backtest_config(config, data_dir=data_dir, window=window)
    blockers = static_blockers(prepared)
    if mode == BacktestMode.FAST and blockers:
        raise FastModeUnavailable(blockers)  # before loading any data
    if histories is None:
        histories = load_window(prepared, window)
    fallback: str | None = None
    if mode == BacktestMode.STEP:
        record = run_step(prepared, histories, progress=progress)
    elif mode == BacktestMode.FAST:
        record = run_fast(prepared, histories, progress=progress)
    else:
        try:
            if blockers:
                raise FastModeUnavailable(blockers)
            record = run_fast(prepared, histories, progress=progress)
        except FastModeUnavailable as error:
            fallback = error.summary
            record = run_step(prepared, histories, progress=progress)
    timeframe = str(prepared.timeframe)
    return summarize(
        record,
        timeframe=timeframe,
        timeframe_seconds=TIMEFRAME_SECONDS[timeframe],
        symbols=prepared.symbols,
        fallback_reason=fallback,
    )
