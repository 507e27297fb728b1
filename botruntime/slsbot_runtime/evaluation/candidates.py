"""What an evaluation compares: the whole ensemble, and each of its members alone.

A member alone is the same RuntimeConfig with an ensemble of that one member (same voting, agreement threshold,
account, risk, sizing and ``ml`` block): the evaluation never looks inside a member, so a rule, a model or a
user component is treated the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from slsbot.api import RuntimeConfig

ENSEMBLE = "ensemble"


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str  # "ensemble", or the member's name
    label: str  # how messages and the selection name it: "ensemble" or "ensemble.members[<name>]"
    config: RuntimeConfig

    @property
    def is_member(self) -> bool:
        return self.label != ENSEMBLE


def evaluation_candidates(config: RuntimeConfig) -> list[Candidate]:
    """The ensemble first, then each member alone in the order of ``ensemble.members`` (none for a one-member
    ensemble: it is its own member)."""
    candidates = [Candidate(ENSEMBLE, ENSEMBLE, config)]
    members = config.ensemble.members
    if len(members) > 1:
        for member in members:
            alone = config.model_copy(update={"ensemble": config.ensemble.model_copy(update={"members": [member]})})
            candidates.append(Candidate(member.name, f"ensemble.members[{member.name}]", alone))
    return candidates
