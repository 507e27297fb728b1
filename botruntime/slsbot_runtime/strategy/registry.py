"""From an ensemble member's spec to a live strategy component.

``build_component`` looks the member's ``strategy`` id and ``version`` up in a ``ComponentRegistry`` (the
library by default) and validates its ``params`` against the component's parameter model. Every error is
a ``ConfigError`` whose message starts with the field path as it is written in the Strategy manifest,
``ensemble.members[<name>].strategy`` or ``ensemble.members[<name>].params.<field>``, and says how to fix it.

A registry is immutable: ``LIBRARY.extended(MyComponent)`` returns a new one that also knows ``MyComponent``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from slsbot.api import EnsembleMember
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.strategy.base import StrategyComponent
from slsbot_runtime.strategy.library import LIBRARY_COMPONENTS


class ComponentRegistry:
    """Strategy component classes by ``(id, version)``."""

    __slots__ = ("_components",)

    def __init__(self, components: Iterable[type[StrategyComponent]] = ()) -> None:
        table: dict[tuple[str, int], type[StrategyComponent]] = {}
        for component in components:
            key = (component.id, component.version)
            if key in table:
                raise ValueError(f"strategy component {component.id} version {component.version} registered twice")
            table[key] = component
        self._components = table

    def extended(self, *components: type[StrategyComponent]) -> ComponentRegistry:
        """A new registry with these components added (a duplicate id and version is a ValueError)."""
        return ComponentRegistry([*self._components.values(), *components])

    @property
    def ids(self) -> list[str]:
        return sorted({key[0] for key in self._components})

    def versions(self, strategy: str) -> list[int]:
        return sorted(version for sid, version in self._components if sid == strategy)

    def components(self) -> list[type[StrategyComponent]]:
        return [self._components[key] for key in sorted(self._components)]

    def lookup(self, strategy: str, version: int = 1, *, member: str | None = None) -> type[StrategyComponent]:
        """The component class, or a ConfigError naming ``ensemble.members[<member>].strategy``."""
        where = f"ensemble.members[{member or strategy}]"
        found = self._components.get((strategy, version))
        if found is not None:
            return found
        versions = self.versions(strategy)
        if versions:
            raise ConfigError(
                f"{where}.strategy: {strategy} has no interface version {version}; "
                f"set {where}.version to one of {', '.join(map(str, versions))}"
            )
        close = difflib.get_close_matches(strategy, self.ids, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{where}.strategy: unknown strategy {strategy!r}{hint}; known: {', '.join(self.ids)}")

    def build(
        self,
        spec: EnsembleMember | str,
        version: int = 1,
        params: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
    ) -> StrategyComponent:
        """A fresh component for one member: ``build(member)`` or ``build("sma_cross", 1, {"fast": 5})``."""
        if isinstance(spec, EnsembleMember):
            strategy, version, params, name = spec.strategy, spec.version, spec.params, spec.name
        else:
            strategy = spec
        member = name or strategy
        component = self.lookup(strategy, version, member=member)
        if params is not None and not isinstance(params, Mapping):
            raise ConfigError(f"ensemble.members[{member}].params: must be a mapping of names to values")
        try:
            return component(params)
        except ValidationError as error:
            raise ConfigError(_describe_params_error(error, component, member)) from None


def _describe_params_error(error: ValidationError, component: type[StrategyComponent], member: str) -> str:
    accepted = ", ".join(component.Params.model_fields)
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        path = f"ensemble.members[{member}].params" + (f".{field}" if field else "")
        if item["type"] == "extra_forbidden":
            problems.append(f"{path}: unknown parameter of {component.id}; it accepts {accepted}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{path}: {message} (got {item.get('input')!r})")
    return "; ".join(problems)


#: The built-in library. Immutable; extend it with ``LIBRARY.extended(...)``.
LIBRARY = ComponentRegistry(LIBRARY_COMPONENTS)


def build_component(
    spec: EnsembleMember | str,
    version: int = 1,
    params: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    registry: ComponentRegistry = LIBRARY,
) -> StrategyComponent:
    """A fresh component for an ensemble member spec, or for ``(id, version, params)``."""
    return registry.build(spec, version, params, name=name)
