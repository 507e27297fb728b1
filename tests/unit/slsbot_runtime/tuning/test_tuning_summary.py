"""The controller's cheap look at a study: None before it exists (without creating a file), then the counts, the
target, whether it is done, and the best in-sample trial."""

from __future__ import annotations

from slsbot_runtime.tuning.storage import open_storage
from slsbot_runtime.tuning.study import load_study
from slsbot_runtime.tuning.summary import study_summary
from slsbot_runtime.tuning.worker import run_worker


def test_a_study_that_does_not_exist_has_no_summary_and_looking_creates_nothing(tmp_path):
    assert study_summary(f"sqlite:///{tmp_path}/study.db", "s") is None
    assert study_summary(f"journal://{tmp_path}/study.log", "s") is None
    assert list(tmp_path.iterdir()) == []
    open_storage(f"sqlite:///{tmp_path}/study.db")  # the file exists, the study does not
    assert study_summary(f"sqlite:///{tmp_path}/study.db", "s") is None


def test_the_summary_counts_trials_and_names_the_best(tmp_path, small_plan):
    url = f"sqlite:///{tmp_path}/study.db"
    plan = small_plan(maxTrials=7)
    run_worker(plan, open_storage(url), "s", worker_index=0)
    summary = study_summary(url, "s")
    assert summary is not None
    assert summary.target_trials == 7 and summary.finished == 7 and summary.done
    assert summary.complete + summary.pruned + summary.failed == 7 and summary.running == summary.waiting == 0
    best = load_study(open_storage(url), "s").best_trial
    assert (summary.best_trial, summary.best_value, summary.best_params) == (best.number, best.value, best.params)
    assert summary.to_wire()["bestParams"] == best.params
