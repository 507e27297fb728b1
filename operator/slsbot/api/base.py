"""Building blocks shared by every slsbot API kind.

Field names are snake_case in Python and camelCase on the wire (YAML, JSON, the Kubernetes API),
as the Kubernetes API conventions ask. Unknown fields are rejected, so a typo in a manifest is an
error that names the field instead of a setting silently ignored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

GROUP = "slsbot.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d))+$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration such as ``90s``, ``15m`` or ``1h30m`` into a timedelta."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration: write it like 30s, 15m, 1h30m or 2d")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, examples=["30s", "15m", "1h"]),
    AfterValidator(_check_duration),
]
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]


class SpecModel(BaseModel):
    """Base of every API object: camelCase aliases, unknown fields rejected, values validated on assignment."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        use_enum_values=True,
    )

    def __setattr__(self, name: str, value: Any) -> None:
        """Assign with validation. A rejected value leaves the object as it was: pydantic runs the cross-field
        (model) validators after it has already stored the value, so restore the fields when they refuse it."""
        fields = dict(self.__dict__)
        fields_set = set(self.__pydantic_fields_set__)
        try:
            super().__setattr__(name, value)
        except ValidationError:
            object.__setattr__(self, "__dict__", fields)
            object.__setattr__(self, "__pydantic_fields_set__", fields_set)
            raise

    def to_wire(self) -> dict[str, Any]:
        """The object as it is written to YAML or the Kubernetes API: camelCase, no unset optionals."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ObjectRef(SpecModel):
    """A reference to another slsbot object in the same namespace."""

    name: Name = Field(description="Name of the referenced object, in the same namespace.")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(SpecModel):
    """One observation of an object's state, as in the Kubernetes API conventions (metav1.Condition)."""

    type: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=316, description="Ready, Progressing, Degraded, ...")
    status: ConditionStatus
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        max_length=1024,
        description="A CamelCase machine-readable reason, e.g. InvalidSpec or WaitingForDependency.",
    )
    message: str = Field(default="", max_length=32768, description="A human-readable message naming the field.")
    last_transition_time: datetime = Field(description="When the status last changed.")
    observed_generation: int = Field(default=0, ge=0)


class ObjectStatus(SpecModel):
    """What every kind reports: a phase, the generation it acted on, and its conditions."""

    phase: str = Field(default="Pending")
    observed_generation: int = Field(default=0, ge=0)
    conditions: list[Condition] = Field(
        default_factory=list,
        description="The latest observation of each condition type (Ready, Progressing, Degraded, ...), one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
