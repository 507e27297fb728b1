"""Counting trials: a trial run again after its worker died counts once, a surplus trial not at all, and a trial
started beyond the target by a racing worker is marked surplus before it samples anything."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from slsbot_runtime.tuning.accounting import SURPLUS, claim_slot, count_trials, surplus_values

X = {"x": IntDistribution(0, 9)}


def _trial(number, state, **attrs):
    values = [1.0] if state == TrialState.COMPLETE else None
    trial = create_trial(state=state, values=values, params={"x": number % 10}, distributions=X, **attrs)
    trial.number = number
    return trial


def test_counts_leave_out_retried_and_surplus_trials():
    trials = [
        _trial(0, TrialState.COMPLETE),
        _trial(1, TrialState.PRUNED),
        _trial(2, TrialState.FAIL),  # its worker died; run again as 5
        _trial(3, TrialState.FAIL),  # failed for good
        _trial(4, TrialState.FAIL, user_attrs={SURPLUS: True}),
        _trial(5, TrialState.RUNNING, system_attrs={"failed_trial": 2, "retry_history": [2]}),
        _trial(6, TrialState.WAITING, system_attrs={"failed_trial": 7, "retry_history": [7]}),
        _trial(7, TrialState.FAIL),  # its worker died; queued again as 6
    ]
    counts = count_trials(trials)
    assert (counts.complete, counts.pruned, counts.failed, counts.running, counts.waiting) == (1, 1, 1, 1, 1)
    assert (counts.retried, counts.surplus) == (2, 1)
    assert counts.finished == 3 and counts.holding == 5


@pytest.mark.filterwarnings("ignore:The value nan is not acceptable")
def test_a_trial_beyond_the_target_is_marked_surplus_and_ends_failed():
    study = optuna.create_study()
    first, second, third = study.ask(), study.ask(), study.ask()  # three workers started at once
    assert claim_slot(first, 2) and claim_slot(second, 2)
    assert not claim_slot(third, 2)
    assert study.trials[2].user_attrs == {SURPLUS: True}
    study.tell(third, surplus_values(1))
    assert study.trials[2].state == TrialState.FAIL
    assert math.isnan(surplus_values(1)) and all(math.isnan(v) for v in surplus_values(2))
    study.tell(first, 1.0)
    counts = count_trials(study.trials)
    assert (counts.complete, counts.running, counts.failed, counts.surplus) == (1, 1, 0, 1)


def test_a_slot_freed_by_a_dead_worker_goes_to_the_trial_that_runs_it_again():
    study = optuna.create_study()
    dead, alive = study.ask(), study.ask()
    study.tell(dead, state=TrialState.FAIL)
    study.add_trial(
        create_trial(
            state=TrialState.WAITING,
            params={},
            distributions={},
            system_attrs={"failed_trial": dead.number, "retry_history": [dead.number]},
        )
    )
    again = study.ask()  # the queued retry
    assert again.number == 2
    assert claim_slot(alive, 2) and claim_slot(again, 2)
