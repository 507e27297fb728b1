"""The admin API's authenticator on a cluster (``slsbot operator --admin-api-port``): a bearer token is a Kubernetes
token (``kubectl create token``, a ServiceAccount's, an OIDC one the API server accepts), checked by TokenReview,
and the caller's role is the highest one RBAC grants on the slsbot resource the request is about, asked by
SubjectAccessReview (``adapters.kubernetes.access_review``):

========  ==========================================  ==========================================
role      SubjectAccessReview asked                   ClusterRole (deploy/operator/60-admin-api-roles.yaml)
========  ==========================================  ==========================================
admin     verb ``*`` on the resource                  ``slsbot-api-admin``
operator  verb ``patch``                              ``slsbot-api-operator``
viewer    verb ``get`` (one object) or ``list``       ``slsbot-api-viewer``
========  ==========================================  ==========================================

The resource is the route's (``/api/v1/strategies/...``: ``strategies.slsbot.io``; ``experiments``, ``incidents``;
``accounts/overview``: ``tradingaccounts``; ``riskpolicies``; ``events``, ``audit`` and ``fleet``: ``strategies``),
in the request's ``?namespace=``, cluster-wide when it names none: a user bound in one namespace only (a RoleBinding)
adds ``?namespace=<it>``. A principal's ``token_id`` is the user's name (bounded), so the audit trail says
``operator:alice``.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from slsbot.adapters.kubernetes.access_review import AccessQuestion, AccessReviews, bounded_name
from slsbot.domain.errors import PermissionDenied
from slsbot.interfaces.admin_api.auth import Principal, Role

API_PREFIX = "/api/v1/"
#: The slsbot resource a route's first path segment is about.
ROUTE_RESOURCES = {
    "strategies": "strategies",
    "experiments": "experiments",
    "incidents": "incidents",
    "accounts": "tradingaccounts",
    "events": "strategies",
    "audit": "strategies",
    "fleet": "strategies",
    "riskpolicies": "riskpolicies",
}
DEFAULT_RESOURCE = "strategies"


def access_questions(path: str, namespace: str | None) -> dict[Role, AccessQuestion]:
    """What to ask for each role, for a request to ``path`` in ``namespace`` (None: cluster-wide). Pure."""
    parts = path[len(API_PREFIX) :].split("/") if path.startswith(API_PREFIX) else []
    resource = ROUTE_RESOURCES.get(parts[0], DEFAULT_RESOURCE) if parts else DEFAULT_RESOURCE
    name = (
        parts[1] if len(parts) > 1 and parts[0] in ("strategies", "experiments", "incidents", "riskpolicies") else None
    )
    ask = {"resource": resource, "namespace": namespace or None}
    return {
        Role.ADMIN: AccessQuestion(verb="*", **ask),
        Role.OPERATOR: AccessQuestion(verb="patch", name=name, **ask),
        Role.VIEWER: AccessQuestion(verb="get" if name else "list", name=name, **ask),
    }


class KubernetesAuthenticator:
    """``auth.Authenticator`` over TokenReview and SubjectAccessReview (cached by ``AccessReviews``)."""

    def __init__(self, reviews: AccessReviews) -> None:
        self._reviews = reviews

    async def identify(self, presented: str, *, request: Request) -> Principal | None:
        return await asyncio.to_thread(
            self._identify, presented, request.url.path, request.query_params.get("namespace")
        )

    def _identify(self, presented: str, path: str, namespace: str | None) -> Principal | None:
        user = self._reviews.authenticate(presented)
        if user is None:
            return None
        refusals: list[tuple[Role, str]] = []
        for role, question in sorted(access_questions(path, namespace).items(), reverse=True):
            answer = self._reviews.check(presented, user, question)
            if answer.allowed:
                return Principal(role, bounded_name(user.username), refusals=tuple(refusals))
            refusals.append((role, answer.reason or f"RBAC does not allow {question.verb} on {question.resource}"))
        where = f"namespace {namespace!r}" if namespace else "any namespace (cluster-wide)"
        reason = refusals[-1][1]
        raise PermissionDenied(
            f"{bounded_name(user.username)} may not read slsbot objects in {where}: {reason}; bind the ClusterRole "
            "slsbot-api-viewer (or slsbot-api-operator, slsbot-api-admin) to the user, or add ?namespace= for a "
            "namespace it is bound in"
        )
