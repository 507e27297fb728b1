"""Walk-forward optimisation end to end on recorded candles: each fold's in-sample best is run on the test window
that follows it (never on its training window), the result is those test windows chained, the proposal is the
best on the most recent training window, DSR and PBO come from ``evaluation.selection`` with every finished trial
counted, and finalize writes the result and a report with real pictures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import matplotlib.image
import numpy as np
import pytest
from optuna.trial import TrialState

from slsbot_runtime.evaluation.selection import backtest_overfitting, deflated_sharpe_ratio, sharpe_ratio
from slsbot_runtime.evaluation.walk_forward import chained, walk_forward
from slsbot_runtime.tuning.data import load_tuning_data
from slsbot_runtime.tuning.finalize import finalize
from slsbot_runtime.tuning.plan import parse_plan
from slsbot_runtime.tuning.result import TuningResult
from slsbot_runtime.tuning.storage import open_storage
from slsbot_runtime.tuning.study import load_study
from slsbot_runtime.tuning.worker import WorkerOutcome, run_worker

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, plan_data):
    """12 trials of the small plan on a journal study, then finalize."""
    plan = parse_plan(plan_data(maxTrials=12))
    folder = tmp_path_factory.mktemp("tuned")
    storage = open_storage(f"journal://{folder}/study.log")
    outcome, counts = run_worker(plan, storage, "wf", worker_index=0)
    assert outcome == WorkerOutcome.DONE and counts.finished == 12
    result = finalize(plan, storage, "wf", folder / "out")
    study = load_study(storage, "wf")
    return plan, study, result, folder / "out"


def _complete(study):
    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]


def test_each_fold_runs_its_in_sample_best_on_the_test_window_that_follows(tuned, candles_dir):
    plan, study, result, _ = tuned
    data = load_tuning_data(plan)
    complete = _complete(study)
    direct = []
    for fold, outcome in zip(data.folds, result.folds, strict=True):
        best = max(complete, key=lambda t: (t.user_attrs["fold_values"][fold.index][0], -t.number))
        assert outcome.trial == best.number and outcome.params == best.params
        assert outcome.in_sample_values == best.user_attrs["fold_values"][fold.index]
        # out of sample is after the training window, never in it
        assert outcome.train_to == outcome.test_from
        assert fold.test.start_ms >= fold.train.end_ms and fold.test.end_ms > fold.test.start_ms
        # and it is what a backtest of that trial's config on the test window gives, read from the files
        alone = walk_forward("fold", plan.trial_config(best.params), [fold.test], data_dir=candles_dir, warmup=60)
        assert outcome.out_of_sample == alone.folds[0].metrics
        trained = walk_forward("fold", plan.trial_config(best.params), [fold.train], data_dir=candles_dir, warmup=60)
        assert outcome.out_of_sample != trained.folds[0].metrics  # not the training window's
        direct.append(alone.folds[0])
    assert result.out_of_sample == chained("walk-forward", plan.base, direct).metrics
    assert result.buy_and_hold is not None and result.buy_and_hold["trades"] == 0


def test_the_proposal_is_the_best_on_the_most_recent_training_window(tuned):
    _, study, result, _ = tuned
    latest = max(_complete(study), key=lambda t: (t.user_attrs["fold_values"][-1][0], -t.number))
    assert result.proposal is not None
    assert result.proposal.trial == latest.number == result.folds[-1].trial
    assert result.proposal.params == latest.params
    assert "most recent fold" in result.proposal.rule
    assert result.best_in_sample is not None and result.best_in_sample.trial == study.best_trial.number


def test_dsr_and_pbo_come_from_selection_with_every_finished_trial_counted(tuned):
    plan, study, result, _ = tuned
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
    assert result.trials_counted == len(finished) == 12
    complete = _complete(study)
    matrix = np.column_stack([t.user_attrs["returns"]["values"] for t in complete])
    proposal = next(t for t in complete if t.number == result.proposal.trial)
    variance = float(np.var([sharpe_ratio(matrix[:, k]) for k in range(matrix.shape[1])], ddof=1))
    expected = deflated_sharpe_ratio(proposal.user_attrs["returns"]["values"], trials=12, sharpe_variance=variance)
    assert result.dsr == pytest.approx(expected.probability, rel=1e-12)
    assert result.deflated_sharpe["trials"] == 12
    assert result.pbo == backtest_overfitting(matrix, blocks=16).pbo
    assert result.overfitting["candidates"] == len(complete)
    accepted = result.dsr >= plan.acceptance.min_deflated_sharpe and result.pbo <= plan.acceptance.max_pbo
    assert result.accepted is accepted
    assert result.reason.startswith("accepted: " if accepted else "not accepted: ")


def test_the_returns_are_one_per_in_sample_day_and_the_same_days_for_every_trial(tuned):
    plan, study, _, _ = tuned
    data = load_tuning_data(plan)
    days = {tuple(t.user_attrs["returns"]["ts"]) for t in _complete(study)}
    assert len(days) == 1
    ts = np.array(days.pop())
    assert np.all(np.diff(ts) > 0)
    assert ts[0] >= data.folds[0].train.start_ms and ts[-1] < data.folds[-1].train.end_ms
    in_sample_days = (data.folds[-1].train.end_ms - data.folds[0].train.start_ms) // 86_400_000
    assert in_sample_days <= len(ts) <= in_sample_days + len(data.folds)  # a day cut by a fold boundary counts twice


def test_finalize_writes_the_result_and_a_report_with_real_pictures(tuned):
    _, _, result, out = tuned
    assert TuningResult.model_validate_json((out / "result.json").read_text()) == result
    assert json.loads((out / "result.json").read_text())["proposal"]["trial"] == result.proposal.trial
    page = (out / "report.html").read_text()
    for name in ("history.png", "importances.png", "equity.png"):
        assert f'<img src="{name}"' in page
        raw = (out / name).read_bytes()
        assert raw.startswith(PNG_SIGNATURE)
        pixels = matplotlib.image.imread(out / name)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 600
        assert float(pixels[..., :3].std()) > 0.05  # drawn on, not a blank canvas
    assert "Deflated Sharpe ratio" in page and result.reason.split(":")[0] in page
    assert datetime.fromisoformat(result.folds[0].test_from.replace("Z", "+00:00")).tzinfo == UTC
