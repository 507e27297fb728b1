"""Reads and writes of the slsbot objects themselves: Strategies, TradingAccounts, RiskPolicies.

Objects are parsed into the API models here; one that the models refuse (a rule the CRD schema cannot express,
such as unique ensemble member names) raises ``InvalidSpecError`` naming the field. Status is written through
the ``status`` subresource with a merge patch, and only when it changed.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import ValidationError

from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.api import GROUP, KINDS, VERSION, Resource, Strategy
from slsbot.api.base import ObjectStatus
from slsbot.domain.errors import InvalidSpecError, NotFoundError
from slsbot.domain.resolve import INVALID_SPEC, Problem

log = logging.getLogger(__name__)

ANNOTATION_DRAINED = "slsbot.io/drained"

R = TypeVar("R", bound=Resource[Any, Any])


class InvalidObjectError(InvalidSpecError):
    """The API models refuse an object; ``problems`` names each failed field."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def validation_problems(exc: ValidationError) -> list[Problem]:
    """Each failed field as a Problem on its path, e.g. ``spec.ensemble.members[1].name``."""
    problems = []
    for error in exc.errors():
        path = ""
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(Problem(INVALID_SPEC, path.lstrip(".") or "spec", message))
    return problems


def parse_object(model: type[R], body: dict[str, Any]) -> R:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidObjectError(validation_problems(exc)) from exc


class KubernetesObjectStore:
    def __init__(self, api: KubernetesApi) -> None:
        self._api = api

    def get(self, model: type[Resource[Any, Any]], namespace: str, name: str) -> dict[str, Any]:
        """The object as the API holds it; NotFoundError if it is gone. ``parse_object`` makes it a model."""
        return self._api.get(_path(model, namespace, name))

    def served_kinds(self) -> set[str]:
        """The resources the API server serves in slsbot's group and version (API discovery, which every
        authenticated client may read): empty until the CRDs are installed."""
        try:
            body = self._api.get(f"/apis/{GROUP}/{VERSION}")
        except NotFoundError:
            return set()
        return {str(r.get("name")) for r in body.get("resources") or [] if "/" not in str(r.get("name"))}

    def strategies(self, namespace: str) -> dict[str, Strategy]:
        return self._list(Strategy, namespace)

    def write_status(self, body: dict[str, Any], status: ObjectStatus) -> bool:
        """Patch ``status`` if it differs from what ``body`` holds; True if it wrote."""
        wanted = status.model_dump(mode="json", by_alias=True)
        if (body.get("status") or {}) == {key: value for key, value in wanted.items() if value is not None}:
            return False
        meta = body["metadata"]
        path = resource_path(*_gvp(body["kind"]), namespace=meta["namespace"], name=meta["name"], subresource="status")
        self._api.patch(path, {"status": wanted})
        return True

    def annotate(self, body: dict[str, Any], annotations: dict[str, str | None]) -> None:
        meta = body["metadata"]
        path = resource_path(*_gvp(body["kind"]), namespace=meta["namespace"], name=meta["name"])
        self._api.patch(path, {"metadata": {"annotations": annotations}})

    def _list(self, model: type[R], namespace: str) -> dict[str, R]:
        found: dict[str, R] = {}
        for body in self._api.list(resource_path(GROUP, VERSION, model.kind_info.plural, namespace=namespace)):
            try:
                found[body["metadata"]["name"]] = parse_object(model, body)
            except (InvalidSpecError, KeyError) as exc:
                # Its own handler reports it; to a Strategy it is as good as missing.
                log.info("skipping %s %s/%s: %s", model.kind_info.kind, namespace, _name(body), exc)
        return found


def _path(model: type[Resource[Any, Any]], namespace: str, name: str) -> str:
    return resource_path(GROUP, VERSION, model.kind_info.plural, namespace=namespace, name=name)


def _gvp(kind: str) -> tuple[str, str, str]:
    return GROUP, VERSION, KINDS[kind].kind_info.plural


def _name(body: dict[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("name", "?"))


def is_drained(body: dict[str, Any]) -> bool:
    return ((body.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_DRAINED) == "true"
