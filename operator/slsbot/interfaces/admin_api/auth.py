"""Bearer-token authentication with roles: a viewer reads, an operator acts (pause, resume), an admin may do
everything (``SLSBOT_ADMIN_TOKEN``, or the token ``slsbot up`` generates; ``SLSBOT_OPERATOR_TOKEN`` and
``SLSBOT_VIEWER_TOKEN`` give the lower roles).

Tokens are compared in constant time and are never stored, logged or returned: a caller is known by its role
and a token id (the first 8 hex digits of the token's SHA-256), e.g. ``operator:3fa1b2c4`` in the audit trail.

The app asks an ``Authenticator`` who sent a request (``app.state.authenticator``): ``TokenRegistry`` here, and on a
cluster ``cluster_auth.KubernetesAuthenticator``, whose principals are Kubernetes users (``operator:alice``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from pydantic import SecretStr
from starlette.requests import Request

from slsbot.domain.errors import PermissionDenied, SlsbotError


class Role(IntEnum):
    """Ordered: a role may do everything the roles below it may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class AuthenticationRequired(SlsbotError):
    """No bearer token, or one that is not known. HTTP 401 in the admin API."""


@dataclass(frozen=True, slots=True)
class Principal:
    """``token_id``: the token's id (``token_id()``), or a Kubernetes user's name. ``refusals``: why the roles above
    ``role`` were refused, when the authorizer said (a SubjectAccessReview's reason), for the 403's message."""

    role: Role
    token_id: str
    refusals: tuple[tuple[Role, str], ...] = ()

    @property
    def actor(self) -> str:
        return f"{self.role.label}:{self.token_id}"

    def require(self, role: Role) -> None:
        if self.role < role:
            reason = dict(self.refusals).get(role)
            raise PermissionDenied(
                f"{self.actor} may not do this: it needs the {role.label} role" + (f" ({reason})" if reason else "")
            )


class Authenticator(Protocol):
    """Who holds a bearer token, and with which role for ``request`` (its namespace and path may matter)."""

    async def identify(self, presented: str, *, request: Request) -> Principal | None:
        """The principal, or None for a token no one holds. Raises BackendUnavailable when it cannot tell now."""
        ...


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:8]


class TokenRegistry:
    """The known tokens and their roles. Built once at start from the settings."""

    def __init__(self, tokens: Iterable[tuple[SecretStr, Role]]) -> None:
        self._tokens = [(secret.get_secret_value().encode(), role) for secret, role in tokens]
        if not self._tokens:
            raise ValueError("the admin API needs at least one token")

    @classmethod
    def from_tokens(
        cls, *, admin: SecretStr | None = None, operator: SecretStr | None = None, viewer: SecretStr | None = None
    ) -> TokenRegistry:
        given = ((admin, Role.ADMIN), (operator, Role.OPERATOR), (viewer, Role.VIEWER))
        return cls((token, role) for token, role in given if token is not None)

    async def identify(self, presented: str, *, request: Request | None = None) -> Principal | None:
        """The principal holding ``presented``, or None. Every known token is compared, in constant time; the
        role does not depend on the request."""
        candidate = presented.encode()
        found: Role | None = None
        for token, role in self._tokens:
            if secrets.compare_digest(candidate, token):
                found = role
        return None if found is None else Principal(found, token_id(presented))
