"""Who holds a bearer token, and what RBAC lets them do, asked of the API server: a ``TokenReview``
(``authentication.k8s.io/v1``) and ``SubjectAccessReview`` s (``authorization.k8s.io/v1``), as a webhook-authenticated
aggregated API server does (the operator's ServiceAccount needs ``create`` on both: ``system:auth-delegator``).

The answers are kept for ``ttl`` seconds (10 by default), per SHA-256 of the token and per question, so a page of
requests costs one review; a token is never kept, logged or put in an error. Any failure to review (an unreachable
API server, a refused review, an answer it cannot read) is ``BackendUnavailable``, which the admin API answers with
503: a caller is never told its token is unknown because the API server could not be asked.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

from slsbot.adapters.kubernetes.client import KubernetesApi
from slsbot.domain.errors import BackendUnavailable, SlsbotError

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"  # noqa: S105 - a path, not a password
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
_NAME_LIMIT = 48  # a user name kept in a principal (and the audit trail's actor): bounded
_MAX_ENTRIES = 10_000  # answers kept at most; the least recently used go first


@dataclass(frozen=True, slots=True)
class ReviewedUser:
    """A user the API server authenticated: ``status.user`` of a TokenReview."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class AccessQuestion:
    """``spec.resourceAttributes`` of a SubjectAccessReview. ``namespace`` None: cluster-wide."""

    verb: str
    resource: str
    group: str = "slsbot.io"
    namespace: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AccessAnswer:
    allowed: bool
    reason: str = ""


class AccessReviews:
    """TokenReview and SubjectAccessReview over ``KubernetesApi``, cached. Thread-safe; each call blocks (run it in
    a worker thread from a coroutine)."""

    def __init__(self, api: KubernetesApi, *, ttl: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._api = api
        self._lock = threading.Lock()
        self._answers: TTLCache[tuple[Any, ...], tuple[Any, ...]] = TTLCache(_MAX_ENTRIES, ttl, timer=clock)

    def authenticate(self, token: str) -> ReviewedUser | None:
        """The user holding ``token``, or None when the API server does not know it."""
        key = ("token", _digest(token))
        cached = self._cached(key)
        if cached is not None:
            return cached[0]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        status = self._review(TOKEN_REVIEWS, body, "TokenReview")
        user = _reviewed_user(status) if status.get("authenticated") is True else None
        self._keep(key, (user,))
        return user

    def check(self, token: str, user: ReviewedUser, question: AccessQuestion) -> AccessAnswer:
        """Whether ``user`` may ``question.verb`` the resource, and why (the authorizer's reason)."""
        key = ("access", _digest(token), question)
        cached = self._cached(key)
        if cached is not None:
            return cached[0]
        attributes: dict[str, Any] = {"verb": question.verb, "group": question.group, "resource": question.resource}
        if question.namespace is not None:
            attributes["namespace"] = question.namespace
        if question.name is not None:
            attributes["name"] = question.name
        spec: dict[str, Any] = {"resourceAttributes": attributes, "user": user.username, "groups": list(user.groups)}
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {key: list(values) for key, values in user.extra}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        status = self._review(ACCESS_REVIEWS, body, "SubjectAccessReview")
        reason = str(status.get("reason") or status.get("evaluationError") or "")[:300]
        answer = AccessAnswer(allowed=status.get("allowed") is True and status.get("denied") is not True, reason=reason)
        self._keep(key, (answer,))
        return answer

    def _review(self, path: str, body: dict[str, Any], kind: str) -> dict[str, Any]:
        try:
            answer = self._api.create(path, body)
        except SlsbotError as exc:
            # The error names the request and the server's reason; never the token (it is in the body, not the path).
            raise BackendUnavailable(
                f"cannot ask the Kubernetes API server for a {kind}, so no one can be authorised now: {exc}; check "
                "that the operator reaches the API server and that its ServiceAccount may create tokenreviews and "
                "subjectaccessreviews (the system:auth-delegator ClusterRole, bound in deploy/operator)"
            ) from exc
        status = answer.get("status")
        if not isinstance(status, dict):
            raise BackendUnavailable(f"the Kubernetes API server answered a {kind} without a status")
        return status

    def _cached(self, key: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            return self._answers.get(key)

    def _keep(self, key: tuple[Any, ...], value: tuple[Any, ...]) -> None:
        with self._lock:
            self._answers[key] = value


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _reviewed_user(status: dict[str, Any]) -> ReviewedUser | None:
    user = status.get("user") or {}
    name = user.get("username")
    if not isinstance(name, str) or not name:
        return None
    extra = user.get("extra") or {}
    return ReviewedUser(
        username=name,
        uid=str(user.get("uid") or ""),
        groups=tuple(str(g) for g in user.get("groups") or []),
        extra=tuple(sorted((str(k), tuple(str(v) for v in vs or [])) for k, vs in extra.items())),
    )


def bounded_name(username: str) -> str:
    """A user name as kept in a principal and the audit trail: at most ``_NAME_LIMIT`` characters."""
    return username if len(username) <= _NAME_LIMIT else username[: _NAME_LIMIT - 1] + "\u2026"
