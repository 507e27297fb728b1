"""``TuningResult``: what finalize writes to ``DIR/result.json`` and the controller reads into the Experiment's
status. camelCase on the wire, as the plan. Metrics are the backtester's (``backtest.metrics.performance``: net of
fees, returns and drawdowns in percent)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from slsbot.api.base import SpecModel
from slsbot.api.experiment import Objective


class TrialTally(SpecModel):
    complete: int
    pruned: int
    failed: int  # failed and not run again
    running: int
    waiting: int
    retried: int  # failed because their worker died, and run again
    surplus: int  # started beyond the target by a racing worker; counted nowhere else
    finished: int  # complete + pruned + failed: the N of the deflated Sharpe ratio


class TrialPoint(SpecModel):
    trial: int
    values: list[float]  # the trial's value per objective: the mean over the folds' in-sample windows
    params: dict[str, Any]


class FoldOutcome(SpecModel):
    index: int
    train_from: str
    train_to: str
    test_from: str
    test_to: str
    trial: int = Field(description="The trial with the best in-sample value on this fold's training window.")
    params: dict[str, Any]
    in_sample_values: list[float] = Field(description="That trial's objective values on the training window.")
    out_of_sample: dict[str, Any] = Field(description="Its metrics on the test window that follows.")
    buy_and_hold: dict[str, Any]


class Proposal(SpecModel):
    trial: int
    params: dict[str, Any]
    in_sample_values: list[float] = Field(description="On the most recent fold's training window.")
    rule: str


class TuningResult(SpecModel):
    study: str
    objectives: list[Objective]
    trials: TrialTally
    best_in_sample: TrialPoint | None = Field(
        default=None, description="One objective: the trial with the best mean in-sample value."
    )
    pareto_front: list[TrialPoint] = Field(default_factory=list, description="Two objectives: the Pareto front.")
    folds: list[FoldOutcome] = Field(default_factory=list)
    out_of_sample: dict[str, Any] | None = Field(
        default=None, description="The folds' out-of-sample windows chained: the walk-forward result."
    )
    buy_and_hold: dict[str, Any] | None = None
    proposal: Proposal | None = None
    dsr: float | None = Field(default=None, description="The proposal's deflated Sharpe ratio (a probability).")
    deflated_sharpe: dict[str, Any] | None = None
    pbo: float | None = Field(default=None, description="Probability of backtest overfitting over the trials.")
    overfitting: dict[str, Any] | None = None
    trials_counted: int = Field(description="N, every finished trial, as the DSR counts them.")
    accepted: bool
    reason: str
    report: str = "report.html"
