"""What the admin API reads and shows, whichever backend holds it: the local supervisor's database
(``adapters.admin_data``) or a cluster's objects (``adapters.kubernetes.admin_data``). Plain data; the port that hands
it out is ``domain.ports.AdminData``.

``AdminObject`` is one slsbot object as declared (its manifest) with its status and the few facts the views need
(generation, age, deletion, and locally the overrides the admin API layered over the manifest: a Strategy's
``paused``, an A/B Experiment's controls, a RiskPolicy's ``killSwitch``). On a cluster there are no overrides: the
API patches the spec itself, as ``kubectl patch`` would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slsbot.api import KINDS, Experiment, RiskPolicy, Strategy
from slsbot.api.resources import Resource

#: The spec fields of an A/B Experiment the admin API sets (``POST /experiments/{name}/promote|abort|pause|resume``).
EXPERIMENT_CONTROLS = ("paused", "abort", "promote")
#: The spec field of a RiskPolicy the admin API sets (``POST /riskpolicies/{name}/kill-switch``), kept locally in the
#: same overrides column as an Experiment's controls.
KILL_SWITCH = "killSwitch"


@dataclass(frozen=True, slots=True)
class AdminObject:
    kind: str
    namespace: str
    name: str
    document: dict[str, Any]  # the manifest: apiVersion, kind, metadata, spec
    status: dict[str, Any] | None
    generation: int
    created_at: datetime
    deleting: bool = False
    paused_override: bool | None = None
    controls_override: dict[str, Any] | None = None
    owner: str | None = None  # "Kind/name" of the object that owns this one (same namespace)

    def as_resource(self) -> Resource[Any, Any]:
        """The API object with its generation and status, and the overrides applied."""
        return resource_of(
            self.kind,
            self.document,
            generation=self.generation,
            created_at=self.created_at,
            status=self.status,
            owner=self.owner,
            paused_override=self.paused_override,
            controls_override=self.controls_override,
        )


def resource_of(
    kind: str,
    document: dict[str, Any],
    *,
    generation: int,
    created_at: datetime,
    status: dict[str, Any] | None,
    owner: str | None = None,
    paused_override: bool | None = None,
    controls_override: dict[str, Any] | None = None,
) -> Resource[Any, Any]:
    document = dict(document)
    document["metadata"] = {
        "creationTimestamp": created_at,  # as the API server sets it: when the object was first stored
        **document.get("metadata", {}),
        "generation": generation,
    }
    if owner is not None:  # as the API server shows an owner (no uid: the local store has none)
        owner_kind, _, owner_name = owner.partition("/")
        document["metadata"]["ownerReferences"] = [
            {"apiVersion": document.get("apiVersion", "slsbot.io/v1alpha1"), "kind": owner_kind, "name": owner_name}
        ]
    if status is not None:
        document["status"] = status
    resource = KINDS[kind].model_validate(document)
    if isinstance(resource, Strategy) and paused_override is not None:
        resource.spec.paused = paused_override
    if isinstance(resource, Experiment) and controls_override:
        for control, value in controls_override.items():
            if control in EXPERIMENT_CONTROLS:
                setattr(resource.spec, control, bool(value))
    if isinstance(resource, RiskPolicy) and controls_override and KILL_SWITCH in controls_override:
        resource.spec.kill_switch = bool(controls_override[KILL_SWITCH])
    return resource


@dataclass(frozen=True, slots=True)
class RuntimeView:
    """A Strategy's runtime as the backend knows it: locally a process (pid, restarts, its last ``/status``); on a
    cluster a Deployment, whose pod the API does not name (no pid), and whose ``/status`` is asked when needed."""

    pid: int | None = None
    restarts: int = 0
    last_status: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EventEntry:
    """One event about a slsbot object (a row of the local store; a core/v1 Event on a cluster)."""

    id: int
    kind: str
    namespace: str
    name: str
    type: str
    reason: str
    message: str
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class RuntimeActivity:
    """A Strategy's equity curve, newest trades and risk decisions and its breaker: the runtime's ``/activity`` body
    (``slsbot_runtime.activity``), or built from its state file while it is down."""

    body: dict[str, Any] = field(default_factory=dict)
    from_state_file: bool = False


@dataclass(frozen=True, slots=True)
class RuntimeOrders:
    """A Strategy's orders, newest first, as its runtime serves them, or from its state file while it is down."""

    items: list[dict[str, Any]] = field(default_factory=list)
    from_state_file: bool = False
