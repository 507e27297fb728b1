"""Step mode: the live trading loop itself, fed a replay of the window, trading the paper exchange.

The loop, its deciders, its risk manager and its paper exchange are built by ``app.prepare_runtime`` and
``app.connect_runtime``, the very functions ``slsbot runtime`` uses, from the backtest's config
(``inputs.backtest_config``: a replay at pace 0, a paper account, a state store in memory). The run is
``TradingLoop.run``: every candle goes through gap and warmup bookkeeping, the paper exchange's matching, the
ensemble, the risk manager, the order manager and the state store, exactly as live. Only what a commit guarantees
differs: the store is ``inputs.backtest_store`` (``Durability.NONE``), so the loop's commits (two per order, one
per thousand candles) and its final flush write nothing. The results are what the loop staged in that store: its
fills and the equity of every candle (``StateStore.staged_fills``, ``staged_equity``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import RuntimeOptions, connect_runtime, prepare_runtime
from slsbot_runtime.backtest.inputs import THROWAWAY_STATE, backtest_store, interval_ms
from slsbot_runtime.backtest.report import PROGRESS_EVERY, Progress, RunRecord
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV


def run_step(config: RuntimeConfig, histories: Sequence[OHLCV], *, progress: Progress | None = None) -> RunRecord:
    """Run the loop over ``histories`` (merged in time order) and collect what it booked."""
    parts = prepare_runtime(config, RuntimeOptions(state_path=THROWAWAY_STATE))
    store = backtest_store()
    models = parts.models
    try:
        built = connect_runtime(parts, store)
        feed = ReplayFeed(list(histories), interval_ms=interval_ms(config))
        started = time.perf_counter()
        built.loop.run(feed if progress is None else _reporting(feed, len(feed), progress))
        elapsed = time.perf_counter() - started
        fills = store.staged_fills()
        times, equities = store.staged_equity()
    finally:
        close = getattr(models, "close", None)
        if close is not None:
            close()  # the training process and its throwaway registry
        store.close()
    return RunRecord(
        mode="step",
        fills=fills,
        candle_ts=np.array(times, dtype=np.int64),
        equity=np.array(equities, dtype=np.float64),
        elapsed_s=elapsed,
    )


def _reporting(candles: Iterable[Candle], total: int, progress: Progress) -> Iterator[Candle]:
    done = 0
    for candle in candles:
        yield candle
        done += 1
        if done % PROGRESS_EVERY == 0:
            progress(done, total)
    progress(done, total)
