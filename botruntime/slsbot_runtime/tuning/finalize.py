"""``python -m slsbot_runtime.tuning.finalize --plan PLAN.json --storage URL --study NAME --out DIR``: the
walk-forward result of a study, its proposal, and whether the proposal can be trusted.

1. For each fold, the complete trial with the best in-sample value on that fold's training window (the first
   objective's; ties go to the earlier trial) is backtested on the fold's test window that follows. With two
   objectives the choice is made among the Pareto front's trials, by the first objective. Pruned trials are no
   candidates: the pruner judged them hopeless.
2. The test windows' results chained (``evaluation.walk_forward.chained``) are the walk-forward result: out of
   sample only, net of fees, beside buy-and-hold of the same symbols over the same windows.
3. The proposal is fold choice of the most recent fold: the best on the latest training window.
4. Its deflated Sharpe ratio and the study's probability of backtest overfitting (``trust``), and the verdict.
5. ``DIR/result.json`` (``TuningResult``) and ``DIR/report.html`` with its pictures (``report``).

A study without a complete trial has no proposal: the result says so (accepted false) and the report shows what
there is. Exit codes: 0 written; 2 a bad plan, storage or study name (the message names it); 1 anything else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from slsbot_runtime.domain.errors import ConfigError, DataError
from slsbot_runtime.domain.timeframes import utc_iso
from slsbot_runtime.evaluation.walk_forward import WalkForwardResult, chained, walk_forward_buy_and_hold
from slsbot_runtime.tuning.accounting import SURPLUS, count_trials
from slsbot_runtime.tuning.data import TuningData, load_tuning_data
from slsbot_runtime.tuning.plan import TuningPlan, load_plan
from slsbot_runtime.tuning.report import write_report
from slsbot_runtime.tuning.result import FoldOutcome, Proposal, TrialPoint, TrialTally, TuningResult
from slsbot_runtime.tuning.storage import open_storage
from slsbot_runtime.tuning.study import load_study
from slsbot_runtime.tuning.trust import judge

EXIT_DONE = 0
EXIT_BAD_INPUT = 2


def finalize(plan: TuningPlan, storage: BaseStorage, study_name: str, out_dir: str | Path) -> TuningResult:
    """Run the out-of-sample backtests, judge the proposal, write ``result.json`` and the report."""
    study = load_study(storage, study_name)
    trials = study.get_trials(deepcopy=False)
    counts = count_trials(trials)
    tally = TrialTally(
        complete=counts.complete,
        pruned=counts.pruned,
        failed=counts.failed,
        running=counts.running,
        waiting=counts.waiting,
        retried=counts.retried,
        surplus=counts.surplus,
        finished=counts.finished,
    )
    complete = [t for t in trials if t.state == TrialState.COMPLETE and not t.user_attrs.get(SURPLUS)]
    single = len(plan.objectives) == 1
    base = TuningResult(
        study=study_name,
        objectives=plan.objectives,
        trials=tally,
        trials_counted=counts.finished,
        accepted=False,
        reason="no trial ran every fold: there is nothing to propose",
    )
    if complete:
        best = study.best_trial if single else None
        base.best_in_sample = None if best is None else _point(best)
        front = [] if single else sorted(study.best_trials, key=lambda t: t.number)
        base.pareto_front = [_point(t) for t in front]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not complete:
        write_report(out, plan, study, base, walk=None, benchmark=None)
        _write(out, base)
        return base

    data = load_tuning_data(plan)
    pool = complete if single else front
    rule = (
        "the complete trial with the best in-sample value on the most recent fold's training window"
        if single
        else "of the Pareto front's trials, the one with the best first objective on the most recent fold's "
        "training window"
    )
    chosen = [_best_on_fold(pool, k, plan) for k in range(len(data.folds))]
    walk, benchmark = _out_of_sample(data, chosen)
    proposal = chosen[-1]
    trust = judge(proposal, complete, trials_counted=counts.finished, acceptance=plan.acceptance)
    result = base.model_copy(
        update={
            "folds": [
                FoldOutcome(
                    index=fold.index,
                    train_from=utc_iso(fold.train.start_ms),
                    train_to=utc_iso(fold.train.end_ms),
                    test_from=utc_iso(fold.test.start_ms),
                    test_to=utc_iso(fold.test.end_ms),
                    trial=trial.number,
                    params=dict(trial.params),
                    in_sample_values=trial.user_attrs["fold_values"][fold.index],
                    out_of_sample=walk.folds[fold.index].metrics,
                    buy_and_hold=benchmark.folds[fold.index].metrics,
                )
                for fold, trial in zip(data.folds, chosen, strict=True)
            ],
            "out_of_sample": walk.metrics,
            "buy_and_hold": benchmark.metrics,
            "proposal": Proposal(
                trial=proposal.number,
                params=dict(proposal.params),
                in_sample_values=proposal.user_attrs["fold_values"][-1],
                rule=rule,
            ),
            "dsr": trust.dsr,
            "deflated_sharpe": None if trust.deflated is None else trust.deflated.to_json(),
            "pbo": trust.pbo,
            "overfitting": None if trust.overfitting is None else trust.overfitting.to_json(),
            "accepted": trust.accepted,
            "reason": trust.reason,
        }
    )
    write_report(out, plan, study, result, walk=walk, benchmark=benchmark)
    _write(out, result)
    return result


def _best_on_fold(pool: Sequence[FrozenTrial], fold: int, plan: TuningPlan) -> FrozenTrial:
    sign = 1.0 if plan.directions[0] == "maximize" else -1.0
    return max(pool, key=lambda t: (sign * t.user_attrs["fold_values"][fold][0], -t.number))


def _out_of_sample(data: TuningData, chosen: Sequence[FrozenTrial]) -> tuple[WalkForwardResult, WalkForwardResult]:
    plan = data.plan
    results = [
        data.candles.fold_backtest(plan.trial_config(trial.params), fold.test, warmup=data.warmup)
        for fold, trial in zip(data.folds, chosen, strict=True)
    ]
    walk = chained("walk-forward", plan.base, results)
    tests = [fold.test for fold in data.folds]
    benchmark = walk_forward_buy_and_hold(plan.base, tests, data.candles.histories, interval_ms=data.interval_ms)
    return walk, benchmark


def _point(trial: FrozenTrial) -> TrialPoint:
    return TrialPoint(trial=trial.number, values=list(trial.values or []), params=dict(trial.params))


def _write(out: Path, result: TuningResult) -> None:
    """``result.json``, replaced whole (a reader never sees half of it)."""
    staged = out / "result.json.tmp"
    staged.write_text(result.model_dump_json(by_alias=True, indent=2), encoding="utf-8")
    staged.replace(out / "result.json")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slsbot_runtime.tuning.finalize", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--plan", required=True, help="the TuningPlan JSON file the workers ran")
    parser.add_argument("--storage", required=True, help="the study's storage URL")
    parser.add_argument("--study", required=True, help="the study's name")
    parser.add_argument("--out", required=True, help="folder for result.json and report.html")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        plan = load_plan(args.plan)
        result = finalize(plan, open_storage(args.storage), args.study, args.out)
    except (ConfigError, DataError) as error:
        print(f"tuning finalize: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{args.out}/result.json: {result.reason}")
    return EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
