"""``run_evaluation``: a RuntimeConfig evaluated out of sample, walk-forward, on recorded candles.

1. The data: every symbol's recorded candles (``marketData.dataDir`` or ``data_dir``), hashed (``record``).
2. The folds (``folds``): the held-out period after a warm-up of ``max(marketData.warmupCandles, the longest
   ml.models[].lookback)`` candles, cut into consecutive windows.
3. The lookahead check (``lookahead``) over the data the folds read, for the ensemble and each member alone.
   A failure raises ``LookaheadFailed`` and nothing is backtested: a strategy that looks ahead has no
   out-of-sample result to report.
4. Walk-forward backtests (``walk_forward``) of the ensemble, each member alone and buy-and-hold.
5. Selection statistics (``selection``) over the candidates' out-of-sample returns per candle: every
   candidate's deflated Sharpe ratio (deflated for the choice among all of them) and the PBO by CSCV.
6. The record: data fingerprint, config, parameters, seeds (the lookahead cuts', each model's), the models'
   training settings, code version (with the numerical libraries'). Nothing in the answer depends on the
   clock or the machine, so running it again on the same data and code gives the same JSON, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from slsbot.api import RuntimeConfig
from slsbot_runtime.backtest.inputs import BacktestWindow, backtest_config, interval_ms
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.domain.errors import ConfigError, DataError
from slsbot_runtime.domain.timeframes import utc_iso
from slsbot_runtime.evaluation import record
from slsbot_runtime.evaluation.candidates import Candidate, evaluation_candidates
from slsbot_runtime.evaluation.folds import Fold, walk_forward_folds
from slsbot_runtime.evaluation.lookahead import LookaheadReport, check_lookahead
from slsbot_runtime.evaluation.selection import backtest_overfitting, deflated_sharpe_ratios
from slsbot_runtime.evaluation.walk_forward import (
    FoldProgress,
    WalkForwardResult,
    walk_forward,
    walk_forward_buy_and_hold,
)
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy import registry as strategy_registry

#: What ``fingerprint`` hashes: the out-of-sample results, not how thoroughly the lookahead check looked nor the
#: record (the same results from another commit or folder have the same fingerprint).
RESULT_KEYS = ("evaluation", "ensemble", "members", "buy_and_hold", "selection")
#: ``progress(stage, done, total)``: stage "lookahead" counts decider runs, stage "backtests" counts candles.
EvaluationProgress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class EvaluationSettings:
    folds: int = 6
    start: datetime | None = None  # the held-out period's first open time (UTC); the data's start if None
    end: datetime | None = None  # held-out candles open before this; the data's end if None
    seed: int = 0  # draws the lookahead check's random cuts
    lookahead_cuts: int = 20  # evenly spaced cuts per symbol
    lookahead_random_cuts: int = 10  # and this many more at random
    pbo_blocks: int = 16  # CSCV's S; fewer (still even) when the period has under two candles per block

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = None if self.start is None else _iso(self.start)
        data["end"] = None if self.end is None else _iso(self.end)
        return data


class LookaheadFailed(ConfigError):
    """The strategy's past decisions change when later candles are appended. ``slsbot evaluate`` exits 2 and
    reports nothing but the check."""

    def __init__(self, report: LookaheadReport) -> None:
        self.report = report
        lines = "; ".join(v.message for v in report.violations)
        super().__init__(f"the lookahead check failed, so there is no out-of-sample result to report: {lines}")


@dataclass(frozen=True, slots=True)
class Evaluation:
    config: RuntimeConfig
    settings: EvaluationSettings
    folds: list[Fold]
    warmup: int
    candidates: list[Candidate]
    results: dict[str, WalkForwardResult]  # by candidate name
    benchmark: WalkForwardResult
    lookahead: LookaheadReport
    selection: dict[str, Any]
    data_files: list[record.DataFile]
    code: dict[str, Any]

    @property
    def ensemble(self) -> WalkForwardResult:
        return self.results[self.candidates[0].name]

    def to_json(self) -> dict[str, Any]:
        first, *others = self.candidates
        answer: dict[str, Any] = {
            "evaluation": {
                "name": self.config.name,
                "symbols": list(self.config.symbols),
                "timeframe": str(self.config.timeframe),
                "held_out": {"from": utc_iso(self.folds[0].start_ms), "to": utc_iso(self.folds[-1].end_ms)},
                "warmup_candles": self.warmup,
                "folds": [fold.to_json() for fold in self.folds],
            },
            "ensemble": self.results[first.name].to_json(),
            "members": {c.name: self.results[c.name].to_json() for c in others},
            "buy_and_hold": self.benchmark.to_json(),
            "selection": self.selection,
            "lookahead": self.lookahead.to_json(),
            "record": {
                "data": {
                    "fingerprint": record.data_fingerprint(self.data_files),
                    "files": [asdict(f) for f in self.data_files],
                },
                "config": record.config_record(self.config),
                "parameters": self.settings.to_json(),
                "seeds": {"lookahead_cuts": self.settings.seed, "models": record.model_seeds(self.config)},
                "models": record.models_record(self.config),
                "code": self.code,
            },
        }
        answer["fingerprint"] = record.canonical_hash({k: answer[k] for k in RESULT_KEYS})
        return answer


def run_evaluation(
    config: RuntimeConfig,
    *,
    data_dir: str | Path | None = None,
    settings: EvaluationSettings | None = None,
    progress: EvaluationProgress | None = None,
) -> Evaluation:
    """Evaluate ``config`` (see the module doc). Raises ConfigError (LookaheadFailed among them) or DataError."""
    settings = settings or EvaluationSettings()
    if settings.start is not None and settings.end is not None:
        BacktestWindow(settings.start, settings.end)  # --from before --to, or ConfigError
    prepared = backtest_config(config, data_dir=data_dir, window=BacktestWindow())
    assert prepared.market_data.data_dir is not None
    folder = Path(prepared.market_data.data_dir)
    step = interval_ms(prepared)
    timeframe = str(prepared.timeframe)
    files = record.data_files(folder, prepared.symbols, timeframe)
    histories = [load_history(folder, symbol, timeframe, interval_ms=step) for symbol in prepared.symbols]
    warmup = max([prepared.market_data.warmup_candles, *(model.lookback for model in prepared.ml.models)])
    folds = walk_forward_folds(
        data_start_ms=max(int(h.ts[0]) for h in histories),
        data_end_ms=min(int(h.ts[-1]) for h in histories) + step,
        interval_ms=step,
        warmup=warmup,
        count=settings.folds,
        start_ms=None if settings.start is None else _ms(settings.start),
        end_ms=None if settings.end is None else _ms(settings.end),
    )
    read = [_between(h, folds[0].warmup_start_ms, folds[-1].end_ms) for h in histories]
    candidates = evaluation_candidates(config)

    report = check_lookahead(
        candidates,
        read,
        count=settings.lookahead_cuts,
        random=settings.lookahead_random_cuts,
        seed=settings.seed,
        registry=_registry(),
        progress=None if progress is None else (lambda done, total: progress("lookahead", done, total)),
    )
    if not report.passed:
        raise LookaheadFailed(report)

    sizes = [sum(len(_between(h, f.warmup_start_ms, f.end_ms)) for h in histories) for f in folds]
    per_run = sum(sizes)
    total = per_run * len(candidates)
    results: dict[str, WalkForwardResult] = {}
    for k, candidate in enumerate(candidates):
        results[candidate.name] = walk_forward(
            candidate.name,
            candidate.config,
            folds,
            data_dir=folder,
            warmup=warmup,
            progress=None if progress is None else _fold_progress(progress, k * per_run, sizes, total),
        )
    benchmark = walk_forward_buy_and_hold(prepared, folds, histories, interval_ms=step)
    return Evaluation(
        config=config,
        settings=settings,
        folds=folds,
        warmup=warmup,
        candidates=candidates,
        results=results,
        benchmark=benchmark,
        lookahead=report,
        selection=_selection(candidates, results, settings.pbo_blocks),
        data_files=files,
        code=record.code_version(),
    )


def _selection(candidates: list[Candidate], results: dict[str, WalkForwardResult], blocks: int) -> dict[str, Any]:
    """DSR of every candidate and PBO of picking the best, over the per-candle out-of-sample returns."""
    labels = [c.label for c in candidates]
    matrix = np.column_stack([results[c.name].returns for c in candidates])
    dsrs = deflated_sharpe_ratios(matrix)
    best = max(range(len(candidates)), key=lambda k: (dsrs[k].sharpe, -k))
    answer: dict[str, Any] = {
        "candidates": labels,
        "selected": labels[best],
        "rule": "the highest out-of-sample Sharpe ratio per candle",
        "deflated_sharpe": {label: d.to_json() for label, d in zip(labels, dsrs, strict=True)},
    }
    if len(candidates) < 2:
        answer["pbo"] = None
        answer["pbo_skipped"] = "one candidate: nothing is selected"
        return answer
    usable = min(blocks, len(matrix) // 2)
    usable -= usable % 2
    if usable < 2:
        raise DataError(f"--from/--to: {len(matrix)} out-of-sample candles are too few for CSCV")
    answer["pbo"] = backtest_overfitting(matrix, blocks=usable).to_json(labels)
    return answer


def _fold_progress(progress: EvaluationProgress, before: int, sizes: list[int], total: int) -> FoldProgress:
    """One candidate's per-fold reports as candles done of the whole evaluation, never going backwards (auto
    mode counts again from 0 when it falls back to step mode: the bar waits meanwhile)."""
    starts = [before + sum(sizes[:k]) for k in range(len(sizes))]
    shown = [before]

    def report(fold: int, done: int, _run_total: int) -> None:
        shown[0] = max(shown[0], starts[fold] + min(done, sizes[fold]))
        progress("backtests", shown[0], total)

    return report


def _registry() -> strategy_registry.ComponentRegistry:
    """The component registry the deciders are built from (read when called, so a test can add a component)."""
    return strategy_registry.LIBRARY


def _between(history: OHLCV, start_ms: int, end_ms: int) -> OHLCV:
    ts = np.asarray(history.ts)
    return history.slice(int(np.searchsorted(ts, start_ms, side="left")), int(np.searchsorted(ts, end_ms, side="left")))


def _ms(moment: datetime) -> int:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return int(moment.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return utc_iso(_ms(moment))
