"""``Allocation``: the share of the account's capital a running runtime trades with, and where it comes from.

The Strategy's ``allocationPercent`` (the RuntimeConfig's, ``source: spec``) until a controller overrides it with
``POST /allocation`` (``source: controller``); ``{"percent": null}`` clears the override. The override and the
timeline of allocations in force (``domain.allocation.AllocationTimeline``, which ``/performance`` normalises
returns by) are kept in the state file under the meta key ``allocation``, written before the answer, so a restart
keeps the override in force. The object is immutable: the loop thread replaces it, HTTP threads read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slsbot_runtime.domain.allocation import AllocationTimeline, check_percent
from slsbot_runtime.domain.errors import StateError

META_KEY = "allocation"
SPEC, CONTROLLER = "spec", "controller"


@dataclass(frozen=True, slots=True)
class Allocation:
    spec_percent: float
    override: float | None = None
    timeline: AllocationTimeline = field(default_factory=AllocationTimeline)

    @property
    def percent(self) -> float:
        """The allocation in force."""
        return self.spec_percent if self.override is None else self.override

    @property
    def source(self) -> str:
        return SPEC if self.override is None else CONTROLLER

    @classmethod
    def load(cls, meta: dict[str, Any], *, spec_percent: float) -> Allocation:
        """From the state file's meta (``StateStore.load_meta``); StateError naming the field when it is not what
        ``meta_value`` wrote. No entry: the spec's allocation, no history yet."""
        stored = meta.get(META_KEY)
        if stored is None:
            return cls(spec_percent)
        if not isinstance(stored, dict):
            raise StateError(f"state meta {META_KEY}: expected an object, got {stored!r:.80}")
        override = stored.get("override")
        if override is not None:
            try:
                override = check_percent(override, f"state meta {META_KEY}.override")
            except ValueError as error:
                raise StateError(str(error)) from None
        return cls(spec_percent, override, AllocationTimeline.from_json(stored.get("changes", [])))

    def meta_value(self) -> dict[str, Any]:
        """What the state file keeps (``StateStore.stage_meta(META_KEY, ...)``)."""
        return {"override": self.override, "changes": self.timeline.to_json()}

    def overridden(self, override: float | None, *, from_ts: int) -> Allocation:
        """With ``override`` (None: back to the spec's) in force for the candles from ``from_ts`` on."""
        changed = Allocation(self.spec_percent, override, self.timeline)
        return changed.in_force_from(from_ts)

    def in_force_from(self, from_ts: int) -> Allocation:
        """The timeline saying that ``percent`` is in force from ``from_ts`` on (a start whose spec changed)."""
        if self.timeline.latest == self.percent:
            return self
        return Allocation(self.spec_percent, self.override, self.timeline.with_change(from_ts, self.percent))

    def status_json(self) -> dict[str, Any]:
        """The ``allocation`` block of ``/status``."""
        return {"percent": self.percent, "source": self.source, "specPercent": self.spec_percent}

    def answer_json(self) -> dict[str, Any]:
        """The answer to ``POST /allocation``."""
        return {"allocationPercent": self.percent, "source": self.source}
