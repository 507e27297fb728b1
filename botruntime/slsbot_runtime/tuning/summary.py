"""``study_summary(storage_url, study_name)``: what the controller shows while a study runs. Cheap: it reads the
study's trials from its storage and runs no backtest.

Counts follow ``accounting`` (a trial run again after its worker died counts once; surplus trials not at all).
``done`` is true once the finished trials reach the study's target (``study.TARGET_ATTR``, written by the
first worker). The best value is the mean in-sample value over the folds (the first objective's best trial); with
two objectives there is no single best, and ``paretoFront`` counts the trials on the front instead.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from slsbot.api.base import SpecModel
from slsbot_runtime.tuning.accounting import SURPLUS, count_trials
from slsbot_runtime.tuning.storage import StorageSettings, open_storage, storage_file_missing
from slsbot_runtime.tuning.study import TARGET_ATTR


class StudySummary(SpecModel):
    study: str
    target_trials: int | None
    complete: int
    pruned: int
    failed: int
    running: int
    waiting: int
    finished: int
    done: bool
    best_trial: int | None = None
    best_value: float | None = None  # mean in-sample value over the folds
    best_params: dict[str, Any] | None = None
    pareto_front: int | None = None  # two objectives: trials on the front


def study_summary(storage_url: str, study_name: str, settings: StorageSettings | None = None) -> StudySummary | None:
    """The study's counts and best trial, or None when the storage or the study does not exist (yet). A storage
    that cannot be reached raises ConfigError naming ``--storage``."""
    if storage_file_missing(storage_url):
        return None  # not created by merely looking
    storage = open_storage(storage_url, settings)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler(0))
    except KeyError:
        return None
    trials = study.get_trials(deepcopy=False)
    counts = count_trials(trials)
    target = study.user_attrs.get(TARGET_ATTR)
    summary = StudySummary(
        study=study_name,
        target_trials=target,
        complete=counts.complete,
        pruned=counts.pruned,
        failed=counts.failed,
        running=counts.running,
        waiting=counts.waiting,
        finished=counts.finished,
        done=target is not None and counts.finished >= target,
    )
    complete = [t for t in trials if t.state == TrialState.COMPLETE and not t.user_attrs.get(SURPLUS)]
    if not complete:
        return summary
    if len(study.directions) > 1:
        summary.pareto_front = len(study.best_trials)
        return summary
    best = study.best_trial
    summary.best_trial = best.number
    summary.best_value = best.value
    summary.best_params = dict(best.params)
    return summary
