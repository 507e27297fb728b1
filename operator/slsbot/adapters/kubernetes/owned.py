"""THROWAWAY STAND-IN, DELETE AT MERGE: the lead's main has the real ``KubernetesOwnedObjects`` at this path
(ownerReferences on created objects, a conditional merge patch); take it. This one only replaces a spec and deletes,
enough for the A/B controller to run on this branch (``slsbot.domain.ports.OwnedObjects``)."""

from __future__ import annotations

from typing import Any

from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.api import GROUP, KINDS, VERSION, Experiment, Resource


class KubernetesOwnedObjects:
    def __init__(self, api: KubernetesApi) -> None:
        self._api = api

    def apply_owned(self, resource: Resource[Any, Any], *, owner: Experiment) -> None:
        raise NotImplementedError("stand-in: owned objects come with the lead's KubernetesOwnedObjects")

    def replace_spec(self, resource: Resource[Any, Any]) -> None:
        path = resource_path(
            GROUP, VERSION, resource.kind_info.plural, namespace=resource.namespace, name=resource.name
        )
        stored = self._api.get(path).get("spec") or {}
        self._api.patch(path, {"spec": _merge_patch(stored, resource.spec.to_wire())})

    def delete(self, kind: str, namespace: str, name: str) -> None:
        plural = KINDS[kind].kind_info.plural
        self._api.delete(resource_path(GROUP, VERSION, plural, namespace=namespace, name=name))


def _merge_patch(stored: Any, wanted: Any) -> Any:
    """What turns ``stored`` into ``wanted`` as a JSON merge patch: a key ``wanted`` lacks is removed (None)."""
    if not isinstance(stored, dict) or not isinstance(wanted, dict):
        return wanted
    patch: dict[str, Any] = {key: None for key in stored if key not in wanted}
    for key, value in wanted.items():
        patch[key] = _merge_patch(stored.get(key), value) if key in stored else value
    return patch
