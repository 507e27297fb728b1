"""A Kubernetes API emulator (kmock) over HTTP on 127.0.0.1, for running the real operator against: the operator's
integration tests and its scale benchmark (``slsbot.bench.operator_scale``) use it.

kmock stores objects and serves watches but runs no controllers: no garbage collection by owner references, no
Deployment controller, no kubelet. ``ClusterEmulator`` adds what an API server itself does (uid, resourceVersion,
generation, creationTimestamp, 422 on a failed JSON-patch test); whoever needs a running pod plays the Deployment
controller and the kubelet itself.

It also answers ``TokenReview`` (``authentication.k8s.io/v1``) from a table of tokens the test fills
(``emulator.users[token] = ("alice", ["team"])``), and ``SubjectAccessReview`` (``authorization.k8s.io/v1``) by
evaluating the RBAC objects it stores (Roles, ClusterRoles and their bindings, created like any object, with kubectl
or ``emulator.objects``) as the RBAC authorizer does: a rule allows when its verbs, apiGroups, resources and
resourceNames match (``*`` matches all); a ClusterRoleBinding applies everywhere, a RoleBinding in its namespace. An
allowed review's reason names the binding as the API server's does; a denied one has none (RBAC gives no opinion).
``reviews_available = False`` makes both answer 503, as an API server whose authentication webhook is down.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp.web
import jsonpatch
import kmock
import yaml

from slsbot.api import KINDS

REPO = Path(__file__).resolve().parents[3]
GROUP_VERSION = "slsbot.io/v1alpha1"


class ClusterEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus the bookkeeping a real API server does on every write.

    ``remember_requests`` (kmock's behaviour, what the tests assert on) keeps every request it served. kmock matches
    each new request against that whole history, which makes a long run quadratic: the operator benchmark turns it
    off, and a served request is then forgotten as soon as it is answered (a watch stays while it streams)."""

    _versions = itertools.count(1)
    remember_requests = True

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        #: How many requests it served per (resource[/subresource], verb), verb as RBAC names it (list, watch...),
        #: but for its own client's (``emulator.request``: what the tests and the benchmark do themselves).
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        #: TokenReview's table: token -> (username, groups). A token not in it is not authenticated.
        self.users: dict[str, tuple[str, list[str]]] = {}
        self.reviews_available = True

    async def _handle(self, request: Any) -> Any:
        ours = request.headers.get("User-Agent", "").startswith("kmock/")  # the tests' and benchmark's own calls
        if request.resource is not None and request.resource.plural is not None and not ours:
            resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
            self.calls[resource, _verb(request)] += 1
        if self.remember_requests:
            return await self._serve(request)
        try:
            return await self._serve(request)
        finally:
            with contextlib.suppress(ValueError):
                self._requests.remove(request)  # kmock's own log of what it served

    async def _serve(self, request: Any) -> Any:
        review = _REVIEWS.get(getattr(request.resource, "plural", None) or "")
        if review is not None and request.action == kmock.action.CREATE and isinstance(request.data, dict):
            if not self.reviews_available:
                raise kmock.KubernetesError(status=503, reason="ServiceUnavailable", message="reviews are unavailable")
            answer = dict(request.data)
            answer["status"] = self._token_review(answer) if review == "TokenReview" else self._access_review(answer)
            return aiohttp.web.json_response(answer, status=201)
        if request.resource is not None and isinstance(request.data, dict) and request.action == kmock.action.CREATE:
            meta = request.data.setdefault("metadata", {})
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("generation", 1)
            meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            meta["resourceVersion"] = str(next(self._versions))
        elif request.resource is not None and request.action == kmock.action.UPDATE:
            self._bump(request)
        try:
            return await super()._handle(request)
        except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict) as exc:
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc)) from exc

    def _KubernetesEmulator__get_objs(self, request: Any, strict: bool) -> list[Any]:
        """kmock finds an object by scanning every object it holds, for every request: a thousand Strategies and
        their runtimes' objects make each request thousands of comparisons, and the benchmark would measure kmock.
        An API server looks an object up by its key; so does this, falling back to kmock's scan on a miss."""
        if strict and request.name is not None and request.resource is not None:
            stored = getattr(self._objects, "_objects", None)
            if isinstance(stored, dict):
                found = stored.get((request.resource, request.namespace, request.name))
                if found is not None:
                    return [found]
        return super()._KubernetesEmulator__get_objs(request, strict)  # type: ignore[misc]

    def _token_review(self, review: dict[str, Any]) -> dict[str, Any]:
        token = (review.get("spec") or {}).get("token")
        if not isinstance(token, str) or token not in self.users:
            return {"authenticated": False, "user": {}, "error": "invalid bearer token"}
        username, groups = self.users[token]
        uid = str(uuid.uuid5(uuid.NAMESPACE_URL, username))
        return {
            "authenticated": True,
            "user": {"username": username, "uid": uid, "groups": [*groups, "system:authenticated"]},
        }

    def _access_review(self, review: dict[str, Any]) -> dict[str, Any]:
        spec = review.get("spec") or {}
        attributes = spec.get("resourceAttributes") or {}
        user, groups = str(spec.get("user") or ""), list(spec.get("groups") or [])
        namespace = attributes.get("namespace") or None
        for binding_kind, binding in self._rbac_bindings(namespace):
            if not any(_subject_matches(s, user, groups) for s in binding.get("subjects") or []):
                continue
            ref = binding.get("roleRef") or {}
            role_ns = binding["metadata"].get("namespace") if ref.get("kind") == "Role" else None
            role = self._rbac_object("roles" if ref.get("kind") == "Role" else "clusterroles", role_ns, ref.get("name"))
            if role is not None and any(_rule_matches(rule, attributes) for rule in role.get("rules") or []):
                reason = (
                    f'RBAC: allowed by {binding_kind} "{binding["metadata"]["name"]}" of {ref.get("kind")} '
                    f'"{ref.get("name")}" to User "{user}"'
                )
                return {"allowed": True, "reason": reason}
        return {"allowed": False}

    def _rbac_bindings(self, namespace: str | None) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for (resource, where, _name), obj in list(self.objects.items()):
            plural = getattr(resource, "plural", None)
            if obj.deleted or getattr(resource, "group", None) != RBAC_GROUP:
                continue
            if plural == "clusterrolebindings":
                found.append(("ClusterRoleBinding", dict(obj.raw)))
            elif plural == "rolebindings" and namespace is not None and where == namespace:
                found.append(("RoleBinding", dict(obj.raw)))
        return found

    def _rbac_object(self, plural: str, namespace: str | None, name: Any) -> dict[str, Any] | None:
        for (resource, where, found), obj in list(self.objects.items()):
            ours = getattr(resource, "group", None) == RBAC_GROUP and getattr(resource, "plural", None) == plural
            if ours and found == name and where == namespace and not obj.deleted:
                return dict(obj.raw)
        return None

    def _bump(self, request: Any) -> None:
        version = str(next(self._versions))
        if isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            meta["resourceVersion"] = version
            if "spec" in request.data and request.subresource is None:
                current = self._current(request)
                meta["generation"] = int(current.get("metadata", {}).get("generation") or 1) + 1
        elif isinstance(request.data, list):
            request.data.append({"op": "replace", "path": "/metadata/resourceVersion", "value": version})

    def _current(self, request: Any) -> dict[str, Any]:
        key = (request.resource, request.namespace, request.name)
        if key in self.objects and not self.objects[key].deleted:
            return dict(self.objects[key].raw)
        return {}


RBAC_GROUP = "rbac.authorization.k8s.io"
_REVIEWS = {"tokenreviews": "TokenReview", "subjectaccessreviews": "SubjectAccessReview"}


def _subject_matches(subject: dict[str, Any], user: str, groups: list[str]) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        return user == f"system:serviceaccount:{subject.get('namespace')}:{name}"
    return False


def _rule_matches(rule: dict[str, Any], attributes: dict[str, Any]) -> bool:
    def has(field: str, value: Any) -> bool:
        items = rule.get(field) or []
        return "*" in items or value in items

    resource = attributes.get("resource", "")
    if attributes.get("subresource"):
        resource = f"{resource}/{attributes['subresource']}"
    names = rule.get("resourceNames") or []
    return (
        has("verbs", attributes.get("verb"))
        and has("apiGroups", attributes.get("group", ""))
        and has("resources", resource)
        and (not names or attributes.get("name") in names)
    )


def _verb(request: Any) -> str:
    method = str(request.method.value)
    if method == "GET" and request.name is None:
        return "watch" if request.params.get("watch") == "true" else "list"
    return {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(
        method, method.lower()
    )


@contextlib.asynccontextmanager
async def emulated_cluster(namespaces: Iterable[str]) -> AsyncIterator[ClusterEmulator]:
    """The emulator serving on a free port of 127.0.0.1, with the core, apps and batch kinds the operator uses, the
    slsbot CRDs and ``namespaces``; stopped on exit."""
    async with ClusterEmulator() as emulator, kmock.Server(emulator):
        info = kmock.ResourceInfo
        verbs = {"get", "list", "watch", "create", "patch", "delete"}
        emulator.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = info(
            kind="CustomResourceDefinition", namespaced=False, verbs=verbs
        )
        emulator.resources["v1/namespaces"] = info(kind="Namespace", namespaced=False, verbs=verbs)
        for plural, kind in [
            ("events", "Event"),
            ("pods", "Pod"),
            ("services", "Service"),
            ("configmaps", "ConfigMap"),
            ("secrets", "Secret"),
            ("persistentvolumeclaims", "PersistentVolumeClaim"),
            ("serviceaccounts", "ServiceAccount"),
        ]:
            emulator.resources[f"v1/{plural}"] = info(kind=kind, namespaced=True, verbs=verbs)
        emulator.resources["apps/v1/deployments"] = info(kind="Deployment", namespaced=True, verbs=verbs)
        emulator.resources["batch/v1/jobs"] = info(kind="Job", namespaced=True, verbs=verbs, subresources={"status"})
        emulator.resources["batch/v1/cronjobs"] = info(kind="CronJob", namespaced=True, verbs=verbs)
        emulator.resources["networking.k8s.io/v1/networkpolicies"] = info(
            kind="NetworkPolicy", namespaced=True, verbs=verbs
        )
        for plural, kind, namespaced in [
            ("roles", "Role", True),
            ("rolebindings", "RoleBinding", True),
            ("clusterroles", "ClusterRole", False),
            ("clusterrolebindings", "ClusterRoleBinding", False),
        ]:
            emulator.resources[f"{RBAC_GROUP}/v1/{plural}"] = info(kind=kind, namespaced=namespaced, verbs=verbs)
        emulator.resources["authentication.k8s.io/v1/tokenreviews"] = info(
            kind="TokenReview", namespaced=False, verbs={"create"}
        )
        emulator.resources["authorization.k8s.io/v1/subjectaccessreviews"] = info(
            kind="SubjectAccessReview", namespaced=False, verbs={"create"}
        )
        for crd in crds():
            names = crd["spec"]["names"]
            emulator.resources[f"{GROUP_VERSION}/{names['plural']}"] = info(
                kind=names["kind"],
                singular=names["singular"],
                namespaced=True,
                verbs=verbs,
                shortnames=set(names.get("shortNames", [])),
                categories=set(names.get("categories", [])),
                subresources={"status"},
            )
            emulator.objects["apiextensions.k8s.io/v1/customresourcedefinitions", None, crd["metadata"]["name"]] = crd
        for namespace in namespaces:
            emulator.objects["v1/namespaces", None, namespace] = {"metadata": {"name": namespace}}
        yield emulator


def crds() -> list[dict[str, Any]]:
    """The generated CRDs from crds/, or minimal ones from the API models' kind_info if they are not there."""
    files = sorted((REPO / "crds").glob("*.slsbot.io.yaml"))
    if files:
        return [yaml.safe_load(path.read_text()) for path in files]
    found = []
    for cls in KINDS.values():
        info = cls.kind_info
        found.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{info.plural}.slsbot.io"},
                "spec": {
                    "group": "slsbot.io",
                    "scope": "Namespaced",
                    "names": {
                        "kind": info.kind,
                        "plural": info.plural,
                        "singular": info.singular,
                        "shortNames": list(info.short_names),
                    },
                },
            }
        )
    return found


def write_kubeconfig(path: Path, emulator: ClusterEmulator) -> Path:
    """A kubeconfig whose current context is the emulator (a bearer token it does not check)."""
    server = str(emulator.url).rstrip("/")
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": server}}],
                "users": [{"name": "operator", "user": {"token": "kmock-token"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "operator"}}],
                "current-context": "kmock",
            }
        )
    )
    return path
