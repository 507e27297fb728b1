"""Experiment: tune a Strategy's parameters (``type: tuning``), or roll out a new version as an A/B test (``type: ab``).

Tuning is walk-forward optimisation with Optuna: the reported result is the concatenated out-of-sample performance of
each fold's in-sample best, and a proposal carries its deflated Sharpe ratio and probability of backtest
overfitting. An A/B rollout shifts the account's capital from the baseline to the candidate along ``schedule.steps``
and promotes or rolls back on an always-valid sequential test. See docs/concepts/experiments.md.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from slsbot.api.base import Duration, Name, ObjectRef, ObjectStatus, SpecModel
from slsbot.api.strategy import PRESERVE


class ExperimentType(StrEnum):
    TUNING = "tuning"
    AB = "ab"


class ParameterType(StrEnum):
    INT = "int"
    FLOAT = "float"
    CATEGORICAL = "categorical"


class SearchParameter(SpecModel):
    """One dimension of the search space, addressed as ``<member>.<param>``, e.g. ``sma.fast``."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.type == 'categorical' ? has(self.choices) : (has(self.low) && has(self.high))",
                    "message": "int and float parameters need low and high; categorical ones need choices",
                }
            ]
        }
    )

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.[A-Za-z_][A-Za-z0-9_]*$", max_length=127)
    type: ParameterType
    low: float | None = None
    high: float | None = None
    step: float | None = Field(default=None, gt=0)
    log: bool = False
    choices: list[Any] | None = Field(default=None, min_length=1, max_length=256, json_schema_extra=PRESERVE)

    @model_validator(mode="after")
    def _bounds(self) -> SearchParameter:
        if self.type == ParameterType.CATEGORICAL:
            if not self.choices:
                raise ValueError(f"searchSpace[{self.name}].choices: categorical parameters need choices")
        else:
            if self.low is None or self.high is None:
                raise ValueError(f"searchSpace[{self.name}]: {self.type} parameters need low and high")
            if self.low >= self.high:
                raise ValueError(f"searchSpace[{self.name}].low: must be below high ({self.low} >= {self.high})")
            if self.log and self.low <= 0:
                raise ValueError(f"searchSpace[{self.name}].low: a log scale needs low > 0")
        return self


class Variant(SpecModel):
    name: Name
    strategy_ref: ObjectRef = Field(
        description="The Strategy that runs this variant; the one that is also spec.strategyRef is the baseline."
    )


class ObjectiveMetric(StrEnum):
    SHARPE = "sharpe"
    SORTINO = "sortino"
    CALMAR = "calmar"
    TOTAL_RETURN = "totalReturn"
    PROFIT_FACTOR = "profitFactor"
    MAX_DRAWDOWN = "maxDrawdown"


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class Objective(SpecModel):
    metric: ObjectiveMetric = ObjectiveMetric.SHARPE
    direction: Direction = Direction.MAXIMIZE


class Sampler(StrEnum):
    TPE = "tpe"
    CMAES = "cmaes"
    RANDOM = "random"
    GRID = "grid"


class Promotion(StrEnum):
    MANUAL = "manual"
    AB = "ab"


class Acceptance(SpecModel):
    """What a tuning proposal must show before it may be promoted; below either, it is reported and never promoted."""

    min_deflated_sharpe: float = Field(
        default=0.95,
        ge=0,
        le=1,
        description="Deflated Sharpe ratio (a probability, with every trial counted) the proposal must reach.",
    )
    max_pbo: float = Field(
        default=0.5, ge=0, le=1, description="Probability of backtest overfitting over the trials, at most."
    )


class History(SpecModel):
    """The recorded candles a tuning run backtests on."""

    data_dir: str | None = Field(
        default=None,
        max_length=4096,
        description="Folder of recorded candles; the tuned Strategy's marketData.dataDir if unset.",
    )
    end: datetime | None = Field(default=None, description="Last candle used (UTC); the data's end if unset.")


class Budget(SpecModel):
    max_trials: int = Field(default=50, ge=1, le=100_000, description="Finished trials (complete, pruned, failed).")
    max_duration: Duration = Field(default="2h", description="Wall time after which no new trial starts.")
    parallelism: int = Field(default=1, ge=1, le=64, description="Trials run at once (worker processes or Jobs).")


class WalkForward(SpecModel):
    train_days: int = Field(default=90, ge=1, le=3650)
    test_days: int = Field(default=30, ge=1, le=3650)
    folds: int = Field(default=4, ge=1, le=100)


class Schedule(SpecModel):
    cron: str | None = Field(
        default=None, max_length=100, description="Re-run on this cron schedule (UTC); once if unset."
    )
    walk_forward: WalkForward = Field(default_factory=WalkForward)
    steps: list[float] = Field(
        default_factory=lambda: [10.0, 25.0, 50.0, 100.0],
        min_length=1,
        max_length=20,
        description="A/B: capital percent shifted to the candidate at each step.",
    )
    step_interval: Duration = Field(default="24h", description="A/B: minimum time at each step.")
    min_trades: int = Field(default=30, ge=1, description="A/B: closed trades per variant before a step moves on.")
    significance: float = Field(
        default=0.05,
        gt=0,
        lt=0.5,
        description="A/B: bound on the chance of promoting a candidate that is no better, over every look.",
    )

    @model_validator(mode="after")
    def _steps_rise_to_100(self) -> Schedule:
        previous = 0.0
        for i, step in enumerate(self.steps):
            if not previous < step <= 100:
                raise ValueError(
                    f"schedule.steps[{i}]: {step:g} must be above the step before ({previous:g}) and at most 100; "
                    "steps are the candidate's percent of the capital, rising, e.g. [10, 25, 50, 100]"
                )
            previous = step
        if self.steps[-1] != 100:
            raise ValueError(
                f"schedule.steps: the last step is {self.steps[-1]:g}; it must be 100 (the candidate takes all the "
                "capital before it is promoted), e.g. [10, 25, 50, 100]"
            )
        return self


class ExperimentSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.type != 'tuning' || (has(self.searchSpace) && size(self.searchSpace) > 0)",
                    "message": "a tuning experiment needs a searchSpace",
                },
                {
                    "rule": "self.type != 'ab' || (has(self.variants) && size(self.variants) == 2)",
                    "message": "an ab experiment has exactly two variants, the baseline and the candidate",
                },
            ]
        }
    )

    type: ExperimentType
    strategy_ref: ObjectRef = Field(description="The Strategy being tuned, or the baseline of an A/B test.")
    search_space: list[SearchParameter] = Field(default_factory=list, max_length=64)
    variants: list[Variant] = Field(default_factory=list, max_length=8)
    objective: Objective = Field(default_factory=Objective)
    second_objective: Objective | None = Field(
        default=None, description="Tuning: a second objective; the result is then a Pareto front."
    )
    sampler: Sampler = Field(default=Sampler.TPE, description="Tuning: Optuna's sampler.")
    pruning: bool = Field(default=True, description="Tuning: stop hopeless trials between folds (one objective).")
    acceptance: Acceptance = Field(default_factory=Acceptance)
    history: History = Field(default_factory=History)
    promotion: Promotion = Field(
        default=Promotion.MANUAL,
        description="Tuning: manual (report only), or ab (an accepted proposal starts an A/B rollout).",
    )
    budget: Budget = Field(default_factory=Budget)
    schedule: Schedule = Field(default_factory=Schedule)
    paused: bool = Field(default=False, description="A/B: hold the current step (no shifts, no promotion).")
    abort: bool = Field(default=False, description="A/B: roll back now: the candidate goes to zero capital.")
    promote: bool = Field(default=False, description="A/B: promote now, whatever the test says (audited).")

    @model_validator(mode="after")
    def _type_needs(self) -> ExperimentSpec:
        if self.type == ExperimentType.TUNING and not self.search_space:
            raise ValueError("searchSpace: a tuning experiment needs at least one parameter")
        if self.type == ExperimentType.AB:
            if len(self.variants) != 2:
                raise ValueError(
                    f"variants: an ab experiment has exactly two variants, the baseline and the candidate "
                    f"({len(self.variants)} given)"
                )
            baselines = [v for v in self.variants if v.strategy_ref.name == self.strategy_ref.name]
            if len(baselines) != 1:
                raise ValueError(
                    f"variants: exactly one variant must run spec.strategyRef ({self.strategy_ref.name!r}), the "
                    "baseline; the other is the candidate"
                )
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variants: names must be unique")
        if self.second_objective is not None and self.sampler == Sampler.CMAES:
            raise ValueError("sampler: cmaes optimises one objective; use tpe or random with secondObjective")
        return self

    @property
    def baseline(self) -> Variant | None:
        return next((v for v in self.variants if v.strategy_ref.name == self.strategy_ref.name), None)

    @property
    def candidate(self) -> Variant | None:
        return next((v for v in self.variants if v.strategy_ref.name != self.strategy_ref.name), None)


class TrialCounts(SpecModel):
    complete: int = Field(default=0, ge=0)
    pruned: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    running: int = Field(default=0, ge=0)


class TuningProposal(SpecModel):
    params: dict[str, Any] = Field(default_factory=dict, json_schema_extra=PRESERVE)
    in_sample_value: float | None = Field(default=None, description="The objective on the most recent window.")
    out_of_sample: dict[str, Any] = Field(
        default_factory=dict,
        json_schema_extra=PRESERVE,
        description="Concatenated out-of-sample metrics of the folds' in-sample bests, net of fees.",
    )
    buy_and_hold: dict[str, Any] = Field(default_factory=dict, json_schema_extra=PRESERVE)
    deflated_sharpe: float | None = None
    pbo: float | None = None
    trials_counted: int = 0
    accepted: bool = False
    reason: str = ""


class TuningStatus(SpecModel):
    study: str | None = Field(default=None, description="The Optuna study's name.")
    run: int = Field(default=0, ge=0, description="Runs started (one, then one per cron firing).")
    run_started_at: datetime | None = None
    run_finished_at: datetime | None = None
    next_run_at: datetime | None = None
    trials: TrialCounts = Field(default_factory=TrialCounts)
    best_value: float | None = Field(default=None, description="Best mean in-sample objective.")
    best_params: dict[str, Any] | None = Field(default=None, json_schema_extra=PRESERVE)
    proposal: TuningProposal | None = None
    report: str | None = Field(default=None, description="Where the report is (admin API path).")
    candidate: str | None = Field(default=None, description="The candidate Strategy created for promotion: ab.")
    rollout: str | None = Field(default=None, description="The A/B Experiment created for promotion: ab.")


class VariantStatus(SpecModel):
    name: str
    strategy: str
    allocation_percent: float = 0.0
    trades: int = 0
    return_percent: float | None = None
    sharpe: float | None = None
    drawdown_percent: float | None = None


class RolloutDecision(SpecModel):
    time: datetime
    step: int
    action: str = Field(description="Hold, Step, Promote, Rollback, Pause, Resume, Abort.")
    reason: str
    statistic: float | None = None
    threshold: float | None = None


class RolloutStatus(SpecModel):
    current_step_index: int = Field(default=0, ge=0)
    step_started_at: datetime | None = Field(default=None, description="Market time at which the step began.")
    paused: bool = False
    variants: list[VariantStatus] = Field(default_factory=list)
    statistic: float | None = Field(default=None, description="The sequential test's statistic now.")
    threshold: float | None = Field(default=None, description="The statistic at which it decides.")
    verdict: str | None = None
    test_state: dict[str, Any] | None = Field(default=None, json_schema_extra=PRESERVE)
    cursor: int | None = Field(default=None, description="Last period (ms) folded into the test.")
    decisions: list[RolloutDecision] = Field(default_factory=list, max_length=50)


class ExperimentStatus(ObjectStatus):
    tuning: TuningStatus | None = None
    rollout: RolloutStatus | None = None
