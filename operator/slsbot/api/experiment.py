"""Experiment: tune a Strategy's parameters, or roll out a new version as an A/B test.

Only the schema and its validation exist in v1alpha1 so far; the tuning and rollout controllers come later.
"""

from __future__ import annotations

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
    strategy_ref: ObjectRef = Field(description="The Strategy that runs this variant.")
    initial_weight: float = Field(default=0.0, ge=0, le=1, description="Share of capital at the start.")


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


class Budget(SpecModel):
    max_trials: int = Field(default=50, ge=1, le=100_000)
    max_duration: Duration = "2h"
    parallelism: int = Field(default=1, ge=1, le=64)


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
    min_trades: int = Field(default=30, ge=1, description="A/B: trades per variant before a decision.")
    significance: float = Field(default=0.05, gt=0, lt=1, description="A/B: p-value needed to promote.")


class ExperimentSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.type != 'tuning' || (has(self.searchSpace) && size(self.searchSpace) > 0)",
                    "message": "a tuning experiment needs a searchSpace",
                },
                {
                    "rule": "self.type != 'ab' || (has(self.variants) && size(self.variants) >= 2)",
                    "message": "an ab experiment needs at least two variants",
                },
            ]
        }
    )

    type: ExperimentType
    strategy_ref: ObjectRef = Field(description="The Strategy being tuned, or the baseline of an A/B test.")
    search_space: list[SearchParameter] = Field(default_factory=list, max_length=64)
    variants: list[Variant] = Field(default_factory=list, max_length=8)
    objective: Objective = Field(default_factory=Objective)
    budget: Budget = Field(default_factory=Budget)
    schedule: Schedule = Field(default_factory=Schedule)

    @model_validator(mode="after")
    def _type_needs(self) -> ExperimentSpec:
        if self.type == ExperimentType.TUNING and not self.search_space:
            raise ValueError("searchSpace: a tuning experiment needs at least one parameter")
        if self.type == ExperimentType.AB and len(self.variants) < 2:
            raise ValueError("variants: an ab experiment needs at least two variants")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variants: names must be unique")
        return self


class ExperimentStatus(ObjectStatus):
    trials: int = Field(default=0, ge=0)
    best_value: float | None = None
    best_params: dict[str, Any] | None = Field(default=None, json_schema_extra=PRESERVE)
