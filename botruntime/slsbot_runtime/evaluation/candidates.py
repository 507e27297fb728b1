"""What an evaluation compares: the whole ensemble, and each of its members alone.

The ensemble's members are its rule-based members (``ensemble.members``) and its voting signal models
(``ml.models`` with ``vote: true``), which join the vote under their own names. A member alone is the same
RuntimeConfig with that one member voting, everything else unchanged (voting, agreement threshold, account, risk,
sizing, an anomaly model):

* a rule-based member alone: an ensemble of that member, and no signal model;
* a signal model alone: no rule-based member and that model; a stacking model keeps its inputs, which train with
  it but do not vote (``vote: false``).

A model with ``vote: false`` is no member (it only feeds a stacking model), so it is no candidate of its own. The
evaluation never looks inside a member, so a rule, a model or a user component is treated the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from slsbot.api import RuntimeConfig
from slsbot.api.strategy import MLModel, ModelRole

ENSEMBLE = "ensemble"


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str  # "ensemble", or the member's name
    label: str  # how messages and the selection name it: "ensemble", "ensemble.members[<name>]", "ml.models[<name>]"
    config: RuntimeConfig

    @property
    def is_member(self) -> bool:
        return self.label != ENSEMBLE

    @property
    def has_models(self) -> bool:
        """Whether the candidate's vote includes signal models (its deciders need a model bank)."""
        return bool(self.config.ml.signal_models)


def evaluation_candidates(config: RuntimeConfig) -> list[Candidate]:
    """The ensemble first, then each rule-based member alone in the order of ``ensemble.members``, then each voting
    signal model alone in the order of ``ml.models`` (none for a one-member ensemble: it is its own member)."""
    candidates = [Candidate(ENSEMBLE, ENSEMBLE, config)]
    members = config.ensemble.members
    models = [model for model in config.ml.signal_models if model.vote]
    if len(members) + len(models) < 2:
        return candidates
    anomaly = [model for model in config.ml.models if model.role == ModelRole.ANOMALY]
    for member in members:
        candidates.append(
            Candidate(
                member.name,
                f"ensemble.members[{member.name}]",
                _with(config, members=[member], models=anomaly),
            )
        )
    by_name = {model.name: model for model in config.ml.models}
    for model in models:
        inputs = [by_name[name].model_copy(update={"vote": False}) for name in model.inputs]
        alone = _with(config, members=[], models=[*inputs, model, *anomaly])
        candidates.append(Candidate(model.name, f"ml.models[{model.name}]", alone))
    return candidates


def _with(config: RuntimeConfig, *, members: list, models: list[MLModel]) -> RuntimeConfig:
    """``config`` with these ensemble members and ml.models (an empty ``members`` only beside a voting model: the
    runtime's ensemble then holds the model alone)."""
    ensemble = config.ensemble.model_copy(update={"members": members})
    ml = config.ml.model_copy(update={"models": models})
    return config.model_copy(update={"ensemble": ensemble, "ml": ml})
