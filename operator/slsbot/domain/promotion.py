"""What an A/B promotion does to the Strategies, and whose Strategy a retired candidate is. Pure.

A promotion writes the candidate's trading logic over the baseline's spec (``promoted_spec``), waits until the
baseline's reconciler reports the new spec running (``runs_current_spec``), then retires the candidate: deleted when
the Experiment owns it (``owned_by``), else left with no capital. docs/concepts/rollouts.md
"""

from __future__ import annotations

from slsbot.api import Experiment, Strategy, StrategySpec
from slsbot.domain.conditions import READY, get_condition

# What a promotion copies from the candidate's spec: its trading logic and the code that runs it. The baseline
# keeps its account, its allocation, where its candles come from, its pause and its deletion policy.
TRADING_LOGIC_FIELDS = ("symbols", "timeframe", "long_only", "ensemble", "ml", "risk", "sizing", "runtime")


def promoted_spec(baseline: StrategySpec, candidate: StrategySpec) -> StrategySpec:
    """The baseline's spec with the candidate's trading logic (``TRADING_LOGIC_FIELDS``); the baseline keeps its
    runtime's port (where its Service and control calls reach it), the rest of ``runtime`` is the candidate's."""
    wire = baseline.model_dump(by_alias=False)
    for name in TRADING_LOGIC_FIELDS:
        wire[name] = getattr(candidate, name)
    wire["runtime"] = candidate.runtime.model_copy(update={"port": baseline.runtime.port})
    return StrategySpec.model_validate(wire)


def same_trading_logic(first: StrategySpec, second: StrategySpec) -> bool:
    """Whether ``first`` already runs ``second``'s trading logic (its runtime's port aside)."""
    return all(
        getattr(first, name) == getattr(second, name) for name in TRADING_LOGIC_FIELDS if name != "runtime"
    ) and (first.runtime.model_copy(update={"port": second.runtime.port}) == second.runtime)


def runs_current_spec(strategy: Strategy) -> bool:
    """The Strategy's reconciler reports its runtime ready on the current generation of its spec."""
    status = strategy.status
    if status is None or status.observed_generation != strategy.metadata.generation:
        return False
    ready = get_condition(status.conditions, READY)
    return ready is not None and ready.status == "True" and ready.observed_generation == strategy.metadata.generation


def owned_by(strategy: Strategy, experiment: Experiment) -> bool:
    """Whether ``strategy`` is the Experiment's to delete: it names ``experiment`` among its
    ``metadata.ownerReferences``, or both were made by the same owner (a tuning run's promotion creates the candidate
    and its A/B Experiment together). An owned candidate is deleted when it is retired; anyone else's is only left
    without capital."""
    owners = _owners(strategy)
    if _reference_key(experiment.kind, experiment.name, experiment.metadata.uid) & owners:
        return True
    return bool(owners & _owners(experiment))


def _owners(resource: Strategy | Experiment) -> set[tuple[str, str, str | None]]:
    """(kind, name, uid) of each owner reference, and (kind, name, None) too, so a reference without a uid (or an
    object without one) still matches by name."""
    found: set[tuple[str, str, str | None]] = set()
    for reference in (resource.metadata.model_extra or {}).get("ownerReferences") or []:
        if isinstance(reference, dict) and isinstance(reference.get("kind"), str):
            found |= _reference_key(reference["kind"], str(reference.get("name")), reference.get("uid"))
    return found


def _reference_key(kind: str, name: str, uid: str | None) -> set[tuple[str, str, str | None]]:
    return {(kind, name, uid), (kind, name, None)} if uid else {(kind, name, None)}
