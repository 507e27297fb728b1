"""``slsbot.domain.ports.OwnedObjects`` on Kubernetes: objects an Experiment's controller creates carry an
``ownerReference`` to it (controller: true), so the garbage collector deletes them with it; a spec a controller
replaces (an A/B promotion) is written with a JSON merge patch that also removes the keys the new spec lacks.

With GitOps (Argo CD), a promoted spec differs from git until someone commits it: an Application that self-heals
would put the old spec back. docs/concepts/rollouts.md says so.
"""

from __future__ import annotations

from typing import Any

from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.api import GROUP, KINDS, VERSION, Experiment, Resource
from slsbot.domain.errors import ConflictError


def owner_reference(owner: Experiment) -> dict[str, Any]:
    if not owner.metadata.uid:
        raise ConflictError(f"Experiment {owner.namespace}/{owner.name} has no uid yet; it is looked at again")
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns ``old`` into ``new`` (keys ``new`` lacks are set to None)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch


class KubernetesOwnedObjects:
    def __init__(self, api: KubernetesApi) -> None:
        self._api = api

    def apply_owned(self, resource: Resource[Any, Any], *, owner: Experiment) -> None:
        reference = owner_reference(owner)
        path = _path(resource)
        existing = self._api.find(path)
        wire = resource.to_wire()
        if existing is None:
            body = {
                "apiVersion": wire["apiVersion"],
                "kind": wire["kind"],
                "metadata": {
                    "name": resource.name,
                    "namespace": resource.namespace,
                    "labels": dict(resource.metadata.labels),
                    "annotations": dict(resource.metadata.annotations),
                    "ownerReferences": [reference],
                },
                "spec": wire["spec"],
            }
            self._api.create(_path(resource, collection=True), body)
            return
        references = (existing.get("metadata") or {}).get("ownerReferences") or []
        if not any(ref.get("uid") == reference["uid"] for ref in references):
            raise ConflictError(
                f"{resource.kind} {resource.namespace}/{resource.name} exists and is not owned by "
                f"Experiment/{owner.name}; rename it or delete it"
            )
        patch = merge_patch(existing.get("spec") or {}, wire["spec"])
        if patch:
            self._api.patch(path, {"spec": patch})

    def replace_spec(self, resource: Resource[Any, Any]) -> None:
        path = _path(resource)
        existing = self._api.get(path)
        patch = merge_patch(existing.get("spec") or {}, resource.to_wire()["spec"])
        if patch:
            version = (existing.get("metadata") or {}).get("resourceVersion")
            # The resourceVersion makes the write conditional: an edit in between is a 409, a requeue.
            self._api.patch(path, {"metadata": {"resourceVersion": version}, "spec": patch})

    def delete(self, kind: str, namespace: str, name: str) -> None:
        path = resource_path(GROUP, VERSION, KINDS[kind].kind_info.plural, namespace=namespace, name=name)
        self._api.delete(path, propagation="Background")


def _path(resource: Resource[Any, Any], *, collection: bool = False) -> str:
    plural = resource.kind_info.plural
    if collection:
        return resource_path(GROUP, VERSION, plural, namespace=resource.namespace)
    return resource_path(GROUP, VERSION, plural, namespace=resource.namespace, name=resource.name)
