"""The report a person looks at: ``report.html``, a static page with its pictures beside it (PNG, matplotlib).

* ``history.png``: every trial's value (the first objective, the mean over the folds' training windows) by trial
  number, pruned trials at the fold where they stopped, and the best so far;
* ``importances.png``: how much each parameter explains of the value (``optuna.importance``, fANOVA, seeded);
* ``equity.png``: the walk-forward (out-of-sample, net of fees) equity of the folds' choices beside buy-and-hold;
* ``pareto.png`` with two objectives: every complete trial, the Pareto front marked.

Pictures are drawn on ``matplotlib.figure.Figure`` objects (the Agg canvas), never through ``pyplot``: no global
figure state, nothing needs a display. A picture that cannot be drawn (no complete trial, one value for every
trial) is left out and the page says why.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from matplotlib.figure import Figure
from optuna.trial import TrialState

from slsbot_runtime.evaluation.walk_forward import WalkForwardResult
from slsbot_runtime.tuning.accounting import SURPLUS
from slsbot_runtime.tuning.plan import TuningPlan
from slsbot_runtime.tuning.result import TuningResult

SIZE = (8.0, 4.0)
DPI = 100


def write_report(
    out: Path,
    plan: TuningPlan,
    study: optuna.Study,
    result: TuningResult,
    *,
    walk: WalkForwardResult | None,
    benchmark: WalkForwardResult | None,
) -> Path:
    """Draw the pictures and write ``out/report.html``; returns its path."""
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS)]
    pictures: list[tuple[str, str | None, str]] = []  # (title, file or None, caption or why not)
    metric = str(plan.objectives[0].metric)
    pictures.append(("Optimisation history", *_history(out, trials, metric, plan.directions[0])))
    pictures.append(("Parameter importances", *_importances(out, study, plan)))
    if len(plan.objectives) == 2:
        pictures.append(("Pareto front", *_pareto(out, trials, result, plan)))
    pictures.append(("Out-of-sample equity", *_equity(out, walk, benchmark)))
    page = out / "report.html"
    page.write_text(_page(plan, result, pictures), encoding="utf-8")
    return page


def _history(out: Path, trials: list[optuna.trial.FrozenTrial], metric: str, direction: str) -> tuple[str | None, str]:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return None, "no complete trial yet"
    figure = Figure(figsize=SIZE, dpi=DPI)
    axes = figure.subplots()
    numbers = np.array([t.number for t in complete])
    values = np.array([t.values[0] for t in complete])
    axes.scatter(numbers, values, s=14, color="tab:blue", label="complete (mean over the training windows)")
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        axes.scatter([t.number for t in pruned], last, s=14, marker="x", color="tab:gray", label="pruned (last fold)")
    best = np.maximum.accumulate(values) if direction == "maximize" else np.minimum.accumulate(values)
    axes.step(numbers, best, where="post", color="tab:red", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel(f"{metric} (in sample)")
    axes.legend(loc="best", fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, out / "history.png"), f"{len(complete)} complete and {len(pruned)} pruned trials"


def _importances(out: Path, study: optuna.Study, plan: TuningPlan) -> tuple[str | None, str]:
    target = None if len(plan.objectives) == 1 else (lambda t: t.values[0])
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=plan.seed)
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator, target=target)
    except (RuntimeError, ValueError) as error:  # too few complete trials, or no parameter that varied
        return None, f"not available: {error}"
    if not importances:
        return None, "not available: no parameter varied"
    figure = Figure(figsize=SIZE, dpi=DPI)
    axes = figure.subplots()
    names = list(importances)[::-1]
    axes.barh(names, [float(importances[n]) for n in names], color="tab:green")
    axes.set_xlabel(f"share of the variance of {plan.objectives[0].metric} explained (fANOVA)")
    figure.tight_layout()
    shown = ", ".join(f"{n} {float(v):.2f}" for n, v in importances.items())
    return _save(figure, out / "importances.png"), shown


def _pareto(
    out: Path, trials: list[optuna.trial.FrozenTrial], result: TuningResult, plan: TuningPlan
) -> tuple[str | None, str]:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return None, "no complete trial yet"
    figure = Figure(figsize=SIZE, dpi=DPI)
    axes = figure.subplots()
    axes.scatter(
        [t.values[0] for t in complete], [t.values[1] for t in complete], s=12, color="tab:gray", label="trials"
    )
    front = result.pareto_front
    axes.scatter(
        [p.values[0] for p in front], [p.values[1] for p in front], s=24, color="tab:red", label="Pareto front"
    )
    axes.set_xlabel(f"{plan.objectives[0].metric} ({plan.directions[0]})")
    axes.set_ylabel(f"{plan.objectives[1].metric} ({plan.directions[1]})")
    axes.legend(loc="best", fontsize="small")
    axes.grid(alpha=0.3)
    return _save(figure, out / "pareto.png"), f"{len(front)} trials on the front of {len(complete)}"


def _equity(out: Path, walk: WalkForwardResult | None, benchmark: WalkForwardResult | None) -> tuple[str | None, str]:
    if walk is None or benchmark is None:
        return None, "no proposal: nothing was run out of sample"
    figure = Figure(figsize=SIZE, dpi=DPI)
    axes = figure.subplots()
    axes.plot(
        _dates(walk.curve.ts), walk.curve.equity, color="tab:blue", label="walk-forward (out of sample, net of fees)"
    )
    axes.plot(_dates(benchmark.curve.ts), benchmark.curve.equity, color="tab:orange", label="buy-and-hold")
    for fold in walk.folds[1:]:
        axes.axvline(_dates(np.array([fold.fold.start_ms]))[0], color="gray", linestyle="--", linewidth=0.8)
    axes.set_ylabel("equity")
    axes.legend(loc="best", fontsize="small")
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    caption = (
        f"walk-forward {walk.metrics['total_return_pct']:.2f} %, "
        f"buy-and-hold {benchmark.metrics['total_return_pct']:.2f} %; dashed lines: a new fold's parameters"
    )
    return _save(figure, out / "equity.png"), caption


def _dates(ts: np.ndarray) -> list[datetime]:
    return [datetime.fromtimestamp(int(t) / 1000, UTC) for t in ts]


def _save(figure: Figure, path: Path) -> str:
    figure.savefig(path, format="png")
    return path.name


def _page(plan: TuningPlan, result: TuningResult, pictures: list[tuple[str, str | None, str]]) -> str:
    e = html.escape
    verdict = "accepted" if result.accepted else "not accepted"
    rows = [
        ("Study", result.study),
        ("Strategy", plan.base.name),
        ("Objectives", ", ".join(f"{o.metric} ({o.direction})" for o in result.objectives)),
        ("Sampler", f"{plan.sampler}, pruning {'on' if plan.pruning else 'off'}"),
        (
            "Trials",
            f"{result.trials.finished} finished: {result.trials.complete} complete, {result.trials.pruned} pruned, "
            f"{result.trials.failed} failed",
        ),
        (
            "Proposal",
            "none" if result.proposal is None else f"trial {result.proposal.trial}: {_params(result.proposal.params)}",
        ),
        (
            "Deflated Sharpe ratio",
            _number(result.dsr)
            + f" (N = {result.trials_counted} trials; minimum {plan.acceptance.min_deflated_sharpe:g})",
        ),
        ("Probability of backtest overfitting", _number(result.pbo) + f" (maximum {plan.acceptance.max_pbo:g})"),
        ("Verdict", f"{verdict}. {result.reason}"),
    ]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Tuning {e(result.study)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;}table{border-collapse:collapse;}"
        "td,th{border:1px solid #ccc;padding:0.3em 0.6em;text-align:left;vertical-align:top;}"
        "img{max-width:100%;}</style></head><body>",
        f"<h1>Tuning {e(result.study)}: {e(verdict)}</h1>",
        "<table>",
        *(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows),
        "</table>",
    ]
    if result.folds:
        parts += [
            "<h2>Walk-forward folds</h2>",
            "<p>Each fold's parameters are the best on its training window; the test window that follows is out of "
            "sample. Metrics are net of fees.</p>",
            "<table><tr><th>Fold</th><th>Training</th><th>Test</th><th>Trial</th><th>Parameters</th>"
            "<th>In sample</th><th>Out of sample return %</th><th>Sharpe</th><th>Buy-and-hold return %</th></tr>",
        ]
        for fold in result.folds:
            parts.append(
                "<tr>"
                + "".join(
                    f"<td>{e(str(cell))}</td>"
                    for cell in (
                        fold.index,
                        f"{fold.train_from} to {fold.train_to}",
                        f"{fold.test_from} to {fold.test_to}",
                        fold.trial,
                        _params(fold.params),
                        ", ".join(f"{v:.4g}" for v in fold.in_sample_values),
                        _number(fold.out_of_sample.get("total_return_pct")),
                        _number(fold.out_of_sample.get("sharpe")),
                        _number(fold.buy_and_hold.get("total_return_pct")),
                    )
                )
                + "</tr>"
            )
        parts.append("</table>")
        assert result.out_of_sample is not None and result.buy_and_hold is not None
        parts += [
            "<h2>Out of sample, all folds chained</h2>",
            _metrics_table(result.out_of_sample, result.buy_and_hold),
        ]
    for title, file, caption in pictures:
        parts.append(f"<h2>{e(title)}</h2>")
        if file is not None:
            parts.append(f'<img src="{e(file)}" alt="{e(title)}">')
        parts.append(f"<p>{e(caption)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _metrics_table(walk: dict[str, Any], hold: dict[str, Any]) -> str:
    keys = ("total_return_pct", "cagr_pct", "sharpe", "sortino", "max_drawdown_pct", "trades", "exposure_pct")
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_number(walk.get(k))}</td><td>{_number(hold.get(k))}</td></tr>"
        for k in keys
    )
    return f"<table><tr><th></th><th>walk-forward</th><th>buy-and-hold</th></tr>{rows}</table>"


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in params.items())


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.4g}"
