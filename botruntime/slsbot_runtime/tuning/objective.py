"""One trial: a parameter set backtested on every fold's in-sample window, fold by fold.

* The parameters come from the sampler (``suggest``), each ``<member>.<param>`` of the plan's search space, and
  make the trial's config (``TuningPlan.trial_config``). A combination the component refuses (``slow`` not
  above ``fast``) is pruned at once, with the reason in the user attribute ``invalid``: it is no result, and a
  pruned trial tells TPE to look elsewhere.
* Fold k's in-sample window is backtested (``LoadedCandles.fold_backtest``: auto mode, candles in memory) and
  measured as the evaluation measures a fold. The objective's value on the fold is the metric of that window,
  net of fees; an undefined metric (no trade, a flat curve) counts as no edge: 0, or 1 for the profit factor.
* With one objective the fold's value is reported as the intermediate value at step k, and the pruner may stop
  the trial there (``optuna.TrialPruned``). Optuna cannot report or prune with two objectives.
* The trial's value is the mean of its folds' values (one per objective).

User attributes (what finalize reads; nothing else is needed to judge the study):

* ``fold_values``: per fold reached, the objective values (a list per fold, one number per objective);
* ``returns``: ``{"ts": [...], "values": [...]}``, the trial's in-sample return per UTC day (``daily_returns``),
  every fold's span in a row (``windows.returns_span``: a day in two folds' windows is taken from the earlier
  fold), and the time of each day's last candle; only for trials that ran every fold;
* ``timing``: ``backtest_seconds`` (wall time inside the backtester), ``trial_seconds`` (the whole trial) and
  ``modes`` (how many fold backtests ran in each mode, fast or step), and ``worker`` (host and process id).
(One attribute per concern: each is a write to the study's storage.)
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna

from slsbot.api.experiment import ObjectiveMetric, ParameterType, SearchParameter
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.evaluation.walk_forward import Curve
from slsbot_runtime.tuning import accounting
from slsbot_runtime.tuning.data import TuningData
from slsbot_runtime.tuning.windows import DAY_MS, returns_span

#: The backtester's metric for each objective, and the value that means "no edge" when it is undefined.
METRICS: dict[str, tuple[str, float]] = {
    ObjectiveMetric.SHARPE: ("sharpe", 0.0),
    ObjectiveMetric.SORTINO: ("sortino", 0.0),
    ObjectiveMetric.CALMAR: ("calmar", 0.0),
    ObjectiveMetric.TOTAL_RETURN: ("total_return_pct", 0.0),
    ObjectiveMetric.PROFIT_FACTOR: ("profit_factor", 1.0),
    ObjectiveMetric.MAX_DRAWDOWN: ("max_drawdown_pct", 0.0),
}


def objective_values(metrics: Mapping[str, Any], objectives: Sequence[Any]) -> list[float]:
    """The objectives' values in a backtest's ``metrics`` (undefined ones count as no edge)."""
    values = []
    for objective in objectives:
        key, neutral = METRICS[str(objective.metric)]
        value = metrics.get(key)
        values.append(float(value) if value is not None and math.isfinite(value) else neutral)
    return values


def suggest(trial: optuna.Trial, space: Sequence[SearchParameter]) -> dict[str, Any]:
    """The trial's value of every parameter of ``space``, asked of its sampler."""
    params: dict[str, Any] = {}
    for p in space:
        if p.type == ParameterType.CATEGORICAL:
            params[p.name] = trial.suggest_categorical(p.name, list(p.choices or []))
        elif p.type == ParameterType.INT:
            assert p.low is not None and p.high is not None
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            assert p.low is not None and p.high is not None
            params[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
    return params


def daily_returns(curve: Curve, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ts, returns)``: per UTC day of the candles in ``[start_ms, end_ms)``, the equity's return from the end of
    the day before (the curve's first point for the first day) to the day's last candle, and that candle's time."""
    ts, equity = curve.ts, curve.equity
    inside = np.flatnonzero((ts >= start_ms) & (ts < end_ms))
    if len(inside) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    day = ts[inside] // DAY_MS
    last_of_day = inside[np.flatnonzero(np.append(day[1:] != day[:-1], True))]
    levels = np.concatenate(([equity[inside[0] - 1] if inside[0] > 0 else equity[0]], equity[last_of_day]))
    return ts[last_of_day].astype(np.int64), np.diff(levels) / levels[:-1]


class TrialObjective:
    """The callable given to ``Study.optimize``: one trial over every fold (see the module doc)."""

    def __init__(self, data: TuningData) -> None:
        self.data = data
        self.plan = data.plan

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        started = time.perf_counter()
        if not accounting.claim_slot(trial, self.plan.target_trials):
            return accounting.surplus_values(len(self.plan.objectives))
        params = suggest(trial, self.plan.search_space)
        try:
            config = self.plan.trial_config(params)
        except ConfigError as error:
            trial.set_user_attr("invalid", str(error))
            raise optuna.TrialPruned(f"invalid parameters: {error}") from None
        clock = self.data.candles.clock
        clock_before, modes_before = clock.seconds, dict(clock.modes)
        single = len(self.plan.objectives) == 1
        fold_values: list[list[float]] = []
        ts_parts: list[np.ndarray] = []
        return_parts: list[np.ndarray] = []
        for fold in self.data.folds:
            result = self.data.candles.fold_backtest(config, fold.train, warmup=self.data.warmup)
            values = objective_values(result.metrics, self.plan.objectives)
            fold_values.append(values)
            span = returns_span(self.data.folds, fold.index)
            day_ts, day_returns = daily_returns(result.curve, *span)
            ts_parts.append(day_ts)
            return_parts.append(day_returns)
            if single:
                trial.report(values[0], fold.index)
                if self.plan.pruning and trial.should_prune():
                    self._record(trial, fold_values, None, started, clock_before, modes_before)
                    raise optuna.TrialPruned(
                        f"fold {fold.index}: {values[0]:.4g}, worse than the earlier trials' median there"
                    )
        returns = (np.concatenate(ts_parts), np.concatenate(return_parts))
        self._record(trial, fold_values, returns, started, clock_before, modes_before)
        means = [float(np.mean([values[k] for values in fold_values])) for k in range(len(self.plan.objectives))]
        return means[0] if single else means

    def _record(
        self,
        trial: optuna.Trial,
        fold_values: list[list[float]],
        returns: tuple[np.ndarray, np.ndarray] | None,
        started: float,
        clock_before: float,
        modes_before: dict[str, int],
    ) -> None:
        clock = self.data.candles.clock
        trial.set_user_attr("fold_values", fold_values)
        if returns is not None:
            trial.set_user_attr(
                "returns", {"ts": [int(t) for t in returns[0]], "values": [float(r) for r in returns[1]]}
            )
        modes = {m: n - modes_before.get(m, 0) for m, n in clock.modes.items() if n > modes_before.get(m, 0)}
        timing = {
            "backtest_seconds": clock.seconds - clock_before,
            "trial_seconds": time.perf_counter() - started,
            "modes": modes,
            "worker": f"{socket.gethostname()}:{os.getpid()}",
        }
        trial.set_user_attr("timing", timing)
