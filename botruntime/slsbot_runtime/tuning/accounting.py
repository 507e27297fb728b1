"""Counting a study's trials, and keeping several workers to exactly the plan's number of finished trials.

A trial is *finished* when it is complete, pruned, or failed and not run again. Two kinds of trial count for
nothing:

* a trial that failed because its worker died (its heartbeat went stale) and was run again as a new trial
  (``RetryHeartbeatStaleTrialCallback`` lists it in the new trial's ``retry_history``): the new one counts;
* a *surplus* trial: one a worker started when the study already held its target of trials (finished, running
  or waiting). Workers that look at the same moment can both start one; Optuna gives trials their numbers in the
  order it creates them, so each trial checks, first thing, how many trials that count come before it
  (``claim_slot``), and a trial beyond the target ends at once as failed, with the user attribute ``surplus``.

So the number of counting trials never exceeds the target, and workers stop when the finished ones reach it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

SURPLUS = "surplus"


@dataclass(frozen=True, slots=True)
class TrialCounts:
    complete: int = 0
    pruned: int = 0
    failed: int = 0  # failed and not run again
    running: int = 0
    waiting: int = 0  # queued to run again after their worker died
    retried: int = 0  # failed with a stale heartbeat and run again as another trial
    surplus: int = 0  # started beyond the target by a worker that looked at the same time as another

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed

    @property
    def holding(self) -> int:
        """Trials that count or will: finished, running and waiting."""
        return self.finished + self.running + self.waiting


def count_trials(trials: Iterable[FrozenTrial], *, before: int | None = None) -> TrialCounts:
    """The counts of ``trials``, or of those numbered below ``before`` (whether a failed one was run again is
    read from all of them: the trial that runs it again may come later)."""
    trials = list(trials)
    retried = retried_numbers(trials)
    counts = dict.fromkeys(("complete", "pruned", "failed", "running", "waiting", "retried", "surplus"), 0)
    for trial in trials:
        if before is not None and trial.number >= before:
            continue
        if trial.user_attrs.get(SURPLUS):
            counts["surplus"] += 1
        elif trial.state == TrialState.FAIL:
            counts["retried" if trial.number in retried else "failed"] += 1
        else:
            counts[_STATE_KEYS[trial.state]] += 1
    return TrialCounts(**counts)


def retried_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """The numbers of the trials that were run again as another trial."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return {n for t in trials for n in RetryHeartbeatStaleTrialCallback.retry_history(t)}


def claim_slot(trial: optuna.Trial, target: int) -> bool:
    """Whether ``trial`` is within the study's ``target`` of counting trials (see the module doc); if not, it is
    marked surplus, and the caller ends it as failed at once (returning NaN)."""
    if count_trials(trial.study.get_trials(deepcopy=False), before=trial.number).holding < target:
        return True
    trial.set_user_attr(SURPLUS, True)
    return False


def surplus_values(objectives: int) -> float | list[float]:
    """What the objective returns for a surplus trial: NaN, which Optuna records as a failed trial."""
    return math.nan if objectives == 1 else [math.nan] * objectives


_STATE_KEYS = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}
