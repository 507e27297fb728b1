"""How far a proposal can be trusted, from the trials that led to it: its deflated Sharpe ratio and the study's
probability of backtest overfitting, both from ``evaluation.selection``.

The returns are in sample: each trial's return per UTC day over the folds' in-sample windows (``objective``), the
series on which the trials were compared. Only trials that ran every fold have one (complete trials).

* **DSR**: the proposal's daily Sharpe ratio, deflated for the choice among ``N`` trials, where ``N`` is every
  finished trial (complete, pruned and failed: each was a look at the data), and for the spread of the complete
  trials' Sharpe ratios. A probability: how sure we can be that the proposal's true Sharpe ratio is above zero
  after having picked the best of ``N``.
* **PBO**: combinatorially symmetric cross-validation over the complete trials' daily returns (one column per
  trial): how often the in-sample best of half the days ranks below the median on the other half. It needs two
  trials and four days at least; blocks as in the evaluation (16, fewer and even for short series).

``accepted`` = DSR at least ``acceptance.minDeflatedSharpe`` and PBO at most ``acceptance.maxPbo``; the reason says
which figure decided, in plain words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from optuna.trial import FrozenTrial

from slsbot_runtime.evaluation.selection import (
    DeflatedSharpe,
    Overfitting,
    backtest_overfitting,
    deflated_sharpe_ratio,
    sharpe_ratio,
)
from slsbot_runtime.tuning.plan import Acceptance

PBO_BLOCKS = 16


@dataclass(frozen=True, slots=True)
class Trust:
    deflated: DeflatedSharpe | None
    overfitting: Overfitting | None
    trials_counted: int  # N of the DSR: every finished trial
    trials_compared: int  # the complete trials whose returns make the PBO matrix
    accepted: bool
    reason: str

    @property
    def dsr(self) -> float | None:
        if self.deflated is None or not math.isfinite(self.deflated.probability):
            return None
        return self.deflated.probability

    @property
    def pbo(self) -> float | None:
        return None if self.overfitting is None else self.overfitting.pbo


def trial_returns(trial: FrozenTrial) -> tuple[np.ndarray, np.ndarray] | None:
    """``(day times, daily returns)`` the trial recorded, or None (a trial that did not run every fold)."""
    recorded = trial.user_attrs.get("returns")
    if not recorded:
        return None
    return np.asarray(recorded["ts"], dtype=np.int64), np.asarray(recorded["values"], dtype=np.float64)


def judge(
    proposal: FrozenTrial,
    complete: Sequence[FrozenTrial],
    *,
    trials_counted: int,
    acceptance: Acceptance,
) -> Trust:
    """The proposal's DSR (``N = trials_counted``) and the PBO over ``complete`` (see the module doc)."""
    reference = trial_returns(proposal)
    if reference is None:
        return Trust(None, None, trials_counted, 0, False, "the proposal has no in-sample returns to judge")
    days, proposal_returns = reference
    columns = []
    for trial in complete:
        recorded = trial_returns(trial)
        if recorded is not None and np.array_equal(recorded[0], days):
            columns.append(recorded[1])
    matrix = np.column_stack(columns) if columns else proposal_returns[:, None]
    sharpes = [sharpe_ratio(matrix[:, k]) for k in range(matrix.shape[1])]
    variance = float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else 0.0
    deflated = deflated_sharpe_ratio(proposal_returns, trials=max(trials_counted, 1), sharpe_variance=variance)
    overfitting = None
    blocks = min(PBO_BLOCKS, len(matrix) // 2)
    blocks -= blocks % 2
    if matrix.shape[1] >= 2 and blocks >= 2:
        overfitting = backtest_overfitting(matrix, blocks=blocks)
    accepted, reason = _verdict(deflated, overfitting, matrix.shape, trials_counted, acceptance)
    return Trust(deflated, overfitting, trials_counted, matrix.shape[1], accepted, reason)


def _verdict(
    deflated: DeflatedSharpe,
    overfitting: Overfitting | None,
    shape: tuple[int, ...],
    counted: int,
    acceptance: Acceptance,
) -> tuple[bool, str]:
    problems = []
    dsr = deflated.probability
    if not math.isfinite(dsr):
        problems.append("the proposal's in-sample returns are flat or too few: there is no Sharpe ratio to deflate")
    elif dsr < acceptance.min_deflated_sharpe:
        problems.append(
            f"the deflated Sharpe ratio {dsr:.3f} is below {acceptance.min_deflated_sharpe:g}: after {counted} "
            "trials, the proposal's in-sample Sharpe ratio is not clearly above what the best of that many would "
            "show by luck"
        )
    if overfitting is None:
        problems.append(
            f"the probability of backtest overfitting cannot be estimated from {shape[1]} complete trial(s) over "
            f"{shape[0]} days: it needs two trials and four days at least"
        )
    elif overfitting.pbo > acceptance.max_pbo:
        problems.append(
            f"the probability of backtest overfitting {overfitting.pbo:.3f} exceeds {acceptance.max_pbo:g}: in that "
            "share of the cross-validation splits, the best trial on half the days ranked below the median on the "
            "other half"
        )
    if problems:
        return False, "not accepted: " + "; ".join(problems)
    assert overfitting is not None
    return True, (
        f"accepted: the deflated Sharpe ratio {dsr:.3f} reaches {acceptance.min_deflated_sharpe:g} after {counted} "
        f"trials, and the probability of backtest overfitting {overfitting.pbo:.3f} is at most {acceptance.max_pbo:g}"
    )
