"""``TuningPlan``: everything a tuning worker and its finalize step need, as one JSON document.

The controller writes it from an Experiment of type tuning (and the Strategy it tunes, as a RuntimeConfig); every
worker and the finalize step read the same file. Field names are camelCase on the wire, as in every slsbot API
object, and a plan survives a JSON round trip unchanged.

What a plan fixes:

* ``base``: the tuned Strategy as a RuntimeConfig. A trial's config is ``base`` with the trial's values put in
  place of its members' parameters (``trial_config``); nothing else changes.
* ``searchSpace``: one ``SearchParameter`` per dimension, named ``<member>.<param>`` (``sma.fast``). A name that
  points at no member of ``base.ensemble`` or at no parameter of that member's component is refused here.
* ``objectives``: one, or two for a Pareto front; each a metric of the backtester, net of fees, and a direction.
* ``sampler``: ``tpe`` (default), ``cmaes``, ``random`` or ``grid``. The grid needs a finite space: a float
  parameter needs a ``step``.
* ``pruning``: stop a trial between folds when its in-sample value so far is worse than the median of the others'
  at the same fold. Optuna prunes single-objective studies only, so a plan with two objectives must turn it off.
* ``walkForward``: ``folds`` in-sample windows of ``trainDays``, each followed by its out-of-sample window of
  ``testDays``; the out-of-sample windows follow each other and end at ``windowEnd`` (the data's end if unset).
* ``maxTrials`` and ``deadline`` (UTC wall clock) stop the workers; ``seed`` seeds the samplers.
* ``acceptance``: a proposal is accepted when its deflated Sharpe ratio is at least ``minDeflatedSharpe`` and the
  probability of backtest overfitting at most ``maxPbo``.

Every problem is a ``ConfigError`` whose message starts with the field (``load_plan``; the worker exits 2).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from slsbot.api import RuntimeConfig
from slsbot.api.base import SpecModel
from slsbot.api.experiment import Direction, Objective, ParameterType, SearchParameter, WalkForward
from slsbot_runtime.config_loading import describe_validation_error
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.strategy.registry import LIBRARY

#: The JSON types Optuna stores for a categorical choice.
CATEGORICAL_TYPES = (str, int, float, bool, type(None))


class SamplerKind(StrEnum):
    TPE = "tpe"
    CMAES = "cmaes"
    RANDOM = "random"
    GRID = "grid"


class Acceptance(SpecModel):
    """When a proposal may be promoted."""

    min_deflated_sharpe: float = Field(
        default=0.95,
        ge=0,
        le=1,
        description="The deflated Sharpe ratio, a probability, must reach this (0.95: 95 % sure of an edge).",
    )
    max_pbo: float = Field(
        default=0.5, ge=0, le=1, description="The probability of backtest overfitting must not exceed this."
    )


class TuningPlan(SpecModel):
    base: RuntimeConfig = Field(description="The tuned Strategy as a RuntimeConfig.")
    search_space: list[SearchParameter] = Field(min_length=1, max_length=64)
    objectives: list[Objective] = Field(default_factory=lambda: [Objective()], min_length=1, max_length=2)
    sampler: SamplerKind = SamplerKind.TPE
    pruning: bool = True
    walk_forward: WalkForward = Field(default_factory=WalkForward)
    data_dir: str | None = Field(default=None, description="Recorded candles; base.marketData.dataDir if unset.")
    window_end: datetime | None = Field(default=None, description="The last out-of-sample window ends here.")
    max_trials: int = Field(default=50, ge=1, le=100_000)
    deadline: datetime | None = Field(default=None, description="Workers start no trial after this (UTC).")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    acceptance: Acceptance = Field(default_factory=Acceptance)

    @field_validator("window_end", "deadline")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self) -> TuningPlan:
        names = [p.name for p in self.search_space]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"searchSpace: each parameter may appear once; {', '.join(repeated)} repeated")
        for index, parameter in enumerate(self.search_space):
            _check_parameter(self.base, index, parameter, grid=self.sampler == SamplerKind.GRID)
        metrics = [o.metric for o in self.objectives]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objectives: two objectives on the same metric {metrics[0]}; drop one")
        if len(self.objectives) == 2 and self.pruning:
            raise ValueError(
                "pruning: Optuna prunes single-objective studies only (Trial.report and should_prune refuse two "
                "objectives); set pruning to false for a study with two objectives"
            )
        if len(self.objectives) == 2 and self.sampler == SamplerKind.CMAES:
            raise ValueError("sampler: cmaes optimises one objective; use tpe, random or grid for two objectives")
        return self

    @property
    def directions(self) -> list[str]:
        return [str(Direction(o.direction)) for o in self.objectives]

    @property
    def data_folder(self) -> str:
        folder = self.data_dir or self.base.market_data.data_dir
        if folder is None:
            raise ConfigError("dataDir: the plan names no folder of recorded candles; set dataDir or base.marketData")
        return folder

    def grid(self) -> dict[str, list[Any]]:
        """Every value of every parameter, for the grid sampler (a plan with sampler grid has a finite space)."""
        return {p.name: parameter_values(p) for p in self.search_space}

    @property
    def target_trials(self) -> int:
        """Finished trials that end the study: ``maxTrials``, or the grid's size when that is smaller."""
        if self.sampler != SamplerKind.GRID:
            return self.max_trials
        return min(self.max_trials, math.prod(len(values) for values in self.grid().values()))

    def trial_config(self, params: Mapping[str, Any]) -> RuntimeConfig:
        """``base`` with each ``<member>.<param>`` of ``params`` put in place; ConfigError naming the member's
        parameter when the component refuses the value (``slow`` not above ``fast``, say)."""
        changes: dict[str, dict[str, Any]] = {}
        for name, value in params.items():
            member, param = name.split(".", 1)
            changes.setdefault(member, {})[param] = value
        members = []
        for member in self.base.ensemble.members:
            if member.name in changes:
                member = member.model_copy(update={"params": {**member.params, **changes[member.name]}})
                LIBRARY.build(member)  # the component's own validation, or ConfigError naming the parameter
            members.append(member)
        ensemble = self.base.ensemble.model_copy(update={"members": members})
        return self.base.model_copy(update={"ensemble": ensemble})

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


def load_plan(path: str | Path) -> TuningPlan:
    """The plan in ``path``; ConfigError naming the field (or ``--plan`` for an unreadable file)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"--plan: cannot read {file}: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--plan: {file} is not JSON: {error}") from None
    return parse_plan(data)


def parse_plan(data: Any) -> TuningPlan:
    if not isinstance(data, dict):
        raise ConfigError(f"--plan: expected a TuningPlan object (base, searchSpace, ...), got {type(data).__name__}")
    try:
        return TuningPlan.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error).replace("(top level): ", "")) from None
    except ConfigError as error:  # a component the registry does not know, raised inside a validator
        raise ConfigError(str(error)) from None


def parameter_values(parameter: SearchParameter) -> list[Any]:
    """Every value a finite parameter takes: the choices, or low to high by step (1 for an int without one)."""
    if parameter.type == ParameterType.CATEGORICAL:
        return list(parameter.choices or [])
    assert parameter.low is not None and parameter.high is not None
    if parameter.type == ParameterType.INT:
        return list(range(int(parameter.low), int(parameter.high) + 1, int(parameter.step or 1)))
    if parameter.step is None:
        raise ValueError(f"searchSpace[{parameter.name}].step: a float parameter without a step has no finite values")
    count = math.floor((parameter.high - parameter.low) / parameter.step + 1e-9) + 1
    return [round(parameter.low + k * parameter.step, 12) for k in range(count)]


def _check_parameter(base: RuntimeConfig, index: int, parameter: SearchParameter, *, grid: bool) -> None:
    where = f"searchSpace[{index}]"
    member_name, param = parameter.name.split(".", 1)
    members = {m.name: m for m in base.ensemble.members}
    member = members.get(member_name)
    if member is None:
        raise ValueError(
            f"{where}.name: {parameter.name} names no member of base.ensemble ({member_name!r}); "
            f"its members are {', '.join(members)}"
        )
    component = LIBRARY.lookup(member.strategy, member.version, member=member.name)
    accepted = list(component.Params.model_fields)
    if param not in accepted:
        raise ValueError(
            f"{where}.name: {parameter.name}: member {member_name} ({member.strategy}) has no parameter {param!r}; "
            f"it accepts {', '.join(accepted)}"
        )
    if parameter.type == ParameterType.CATEGORICAL:
        odd = [c for c in parameter.choices or [] if not isinstance(c, CATEGORICAL_TYPES)]
        if odd:
            raise ValueError(f"{where}.choices: a choice must be a string, number, boolean or null; got {odd[0]!r}")
        return
    assert parameter.low is not None and parameter.high is not None
    if parameter.log and parameter.step is not None:
        raise ValueError(f"{where}.step: a log-scale parameter cannot have a step; drop step or log")
    if parameter.type == ParameterType.INT:
        for field, value in (("low", parameter.low), ("high", parameter.high), ("step", parameter.step)):
            if value is not None and value != int(value):
                raise ValueError(f"{where}.{field}: an int parameter needs whole numbers (got {value})")
    elif grid and parameter.step is None:
        raise ValueError(
            f"{where}.step: the grid sampler needs a finite space, and the float parameter {parameter.name} has no "
            "step; give it a step or use sampler tpe, random or cmaes"
        )
    if parameter.step is not None:
        spans = (parameter.high - parameter.low) / parameter.step
        if abs(spans - round(spans)) > 1e-9:
            raise ValueError(
                f"{where}.high: high - low ({parameter.high - parameter.low:g}) is not a multiple of step "
                f"({parameter.step:g}); move high to low plus a whole number of steps"
            )
