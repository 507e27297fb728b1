"""The one persistent Optuna study of a tuning run: created by the first worker, loaded by the others and by
finalize, with the plan's directions, sampler and pruner.

* Samplers: ``TPESampler`` (with the constant liar, so that parallel workers do not all sample next to the same
  running trial), ``CmaEsSampler``, ``RandomSampler`` and ``GridSampler`` over ``TuningPlan.grid``.
* Pruner: ``MedianPruner`` (a trial stops after a fold whose in-sample value is worse than the median of the
  earlier trials' values on that fold, once ``PRUNER_STARTUP_TRIALS`` trials have finished) when the plan prunes,
  else none. Optuna's ``WilcoxonPruner`` is made for objectives averaged over folds, but with four or so folds
  its test cannot reach a useful significance before the last fold, so it would prune nothing.
* Seeds: each worker seeds its sampler from the plan's seed and its worker index; two workers with the same
  seed would sample the same parameters, so a worker without an index mixes in its process id.

The study's user attribute ``target_trials`` holds the number of finished trials that ends it (the plan's
``maxTrials``, or the grid's size if smaller), so ``summary`` can tell a finished study without the plan.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.tuning.plan import SamplerKind, TuningPlan

PRUNER_STARTUP_TRIALS = 5
TARGET_ATTR = "target_trials"


def sampler_seed(plan_seed: int, worker_index: int | None) -> int:
    entropy = [plan_seed, worker_index] if worker_index is not None else [plan_seed, os.getpid(), time.time_ns()]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def build_sampler(plan: TuningPlan, seed: int) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        if plan.sampler == SamplerKind.TPE:
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if plan.sampler == SamplerKind.CMAES:
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if plan.sampler == SamplerKind.RANDOM:
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.GridSampler(plan.grid(), seed=seed)


def build_pruner(plan: TuningPlan) -> optuna.pruners.BasePruner:
    if plan.pruning and len(plan.objectives) == 1:
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=0)
    return optuna.pruners.NopPruner()


def open_study(plan: TuningPlan, storage: BaseStorage, name: str, *, worker_index: int | None = None) -> optuna.Study:
    """The study ``name`` in ``storage``, created with the plan's directions if it does not exist; ConfigError
    naming ``--study`` when it exists with other objectives."""
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=plan.directions,
        sampler=build_sampler(plan, sampler_seed(plan.seed, worker_index)),
        pruner=build_pruner(plan),
        load_if_exists=True,
    )
    if [d.name.lower() for d in study.directions] != plan.directions:
        shown = ", ".join(d.name.lower() for d in study.directions)
        raise ConfigError(
            f"--study: {name} exists with other objectives ({shown}, not {', '.join(plan.directions)}); "
            "give this plan a study of its own"
        )
    if study.user_attrs.get(TARGET_ATTR) != plan.target_trials:
        study.set_user_attr(TARGET_ATTR, plan.target_trials)
    return study


def load_study(storage: BaseStorage, name: str) -> optuna.Study:
    """The existing study ``name`` (for finalize); ConfigError naming ``--study`` when there is none."""
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    except KeyError:
        raise ConfigError(f"--study: no study named {name} in the storage; run the workers first") from None
