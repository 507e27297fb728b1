"""The study a worker runs: every sampler (the grid stops at its size), two objectives with a Pareto front and a
proposal taken from it by the first objective, the deadline, and a study name reused with other objectives."""

from __future__ import annotations

import itertools

import optuna
import pytest
from optuna.trial import TrialState

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.tuning.finalize import finalize
from slsbot_runtime.tuning.storage import open_storage
from slsbot_runtime.tuning.study import load_study, open_study
from slsbot_runtime.tuning.worker import WorkerOutcome, run_worker

TWO_OBJECTIVES = [{"metric": "sharpe"}, {"metric": "maxDrawdown", "direction": "minimize"}]


@pytest.fixture
def storage(tmp_path):
    return open_storage(f"journal://{tmp_path}/study.log")


def test_the_grid_sampler_runs_each_point_once_and_stops_at_the_grid_size(small_plan, storage):
    plan = small_plan(
        sampler="grid",
        maxTrials=10,
        searchSpace=[
            {"name": "sma.fast", "type": "int", "low": 5, "high": 10, "step": 5},
            {"name": "rsi.period", "type": "categorical", "choices": [7, 14]},
        ],
    )
    outcome, counts = run_worker(plan, storage, "grid", worker_index=0)
    assert outcome == WorkerOutcome.DONE and counts.finished == 4
    study = load_study(storage, "grid")
    assert isinstance(open_study(plan, storage, "grid").sampler, optuna.samplers.GridSampler)
    seen = sorted((t.params["sma.fast"], t.params["rsi.period"]) for t in study.trials)
    assert seen == sorted(itertools.product([5, 10], [7, 14]))


@pytest.mark.parametrize(
    ("sampler", "kind"), [("random", optuna.samplers.RandomSampler), ("cmaes", optuna.samplers.CmaEsSampler)]
)
def test_random_and_cma_es_run_to_the_target(small_plan, storage, sampler, kind):
    plan = small_plan(sampler=sampler, maxTrials=7, pruning=False)
    outcome, counts = run_worker(plan, storage, sampler, worker_index=0)
    assert outcome == WorkerOutcome.DONE and counts.finished == counts.complete == 7
    assert isinstance(open_study(plan, storage, sampler).sampler, kind)
    params = {tuple(t.params.values()) for t in load_study(storage, sampler).trials}
    assert len(params) > 1  # the sampler moved


def test_two_objectives_give_a_pareto_front_and_a_proposal_from_it_by_the_first(small_plan, storage, tmp_path):
    plan = small_plan(objectives=TWO_OBJECTIVES, pruning=False, maxTrials=8)
    outcome, _ = run_worker(plan, storage, "pareto", worker_index=0)
    assert outcome == WorkerOutcome.DONE
    result = finalize(plan, storage, "pareto", tmp_path / "out")
    study = load_study(storage, "pareto")
    front = sorted(study.best_trials, key=lambda t: t.number)
    assert [p.trial for p in result.pareto_front] == [t.number for t in front]
    assert [p.values for p in result.pareto_front] == [t.values for t in front]
    latest = max(front, key=lambda t: (t.user_attrs["fold_values"][-1][0], -t.number))
    assert result.proposal.trial == latest.number and "Pareto front" in result.proposal.rule
    assert result.best_in_sample is None
    for trial in study.trials:
        assert len(trial.values) == 2 and trial.intermediate_values == {}  # Optuna cannot report two values
    assert (tmp_path / "out" / "pareto.png").read_bytes().startswith(b"\x89PNG")


def test_a_deadline_in_the_past_stops_the_worker_before_any_trial(small_plan, storage):
    plan = small_plan(deadline="2020-01-01T00:00:00Z")
    outcome, counts = run_worker(plan, storage, "late", worker_index=0)
    assert outcome == WorkerOutcome.DEADLINE and counts.finished == 0
    assert load_study(storage, "late").trials == []


def test_a_study_name_reused_with_other_objectives_is_refused(small_plan, storage):
    open_study(small_plan(), storage, "taken")
    with pytest.raises(ConfigError, match=r"^--study: taken exists with other objectives \(maximize, not maximize, mi"):
        open_study(small_plan(objectives=TWO_OBJECTIVES, pruning=False), storage, "taken")
    with pytest.raises(ConfigError, match=r"^--study: no study named missing"):
        load_study(storage, "missing")


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_finalize_without_a_complete_trial_says_there_is_no_proposal(small_plan, storage, tmp_path):
    plan = small_plan()
    study = open_study(plan, storage, "empty")
    trial = study.ask()
    study.tell(trial, state=TrialState.FAIL)
    result = finalize(plan, storage, "empty", tmp_path / "out")
    assert result.proposal is None and not result.accepted and result.trials_counted == 1
    assert result.reason == "no trial ran every fold: there is nothing to propose"
    page = (tmp_path / "out" / "report.html").read_text()
    assert "no complete trial yet" in page and "no proposal" in page
