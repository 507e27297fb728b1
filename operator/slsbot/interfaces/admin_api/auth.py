"""Bearer-token authentication with roles: a viewer reads, an operator acts (pause, resume), an admin may do
everything (``SLSBOT_ADMIN_TOKEN``, or the token ``slsbot up`` generates; ``SLSBOT_OPERATOR_TOKEN`` and
``SLSBOT_VIEWER_TOKEN`` give the lower roles).

Tokens are compared in constant time and are never stored, logged or returned: a caller is known by its role
and a token id (the first 8 hex digits of the token's SHA-256), e.g. ``operator:3fa1b2c4`` in the audit trail.

The app asks an ``Authenticator`` who sent a request (``app.state.authenticator``): ``TokenRegistry`` here, and on a
cluster ``cluster_auth.KubernetesAuthenticator``, whose principals are Kubernetes users (``operator:alice``).

Rotation without downtime: a role may hold several tokens, each with an optional ``valid_until``. A rotated token
(``SLSBOT_ADMIN_TOKEN_PREVIOUS`` and its siblings) stays valid until ``SLSBOT_TOKEN_GRACE_UNTIL``; after that it is
refused with ``TokenExpired`` (401), whose message says the token was retired in a rotation (docs/how-to/
rotate-slsbot-secrets.md).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


class TokenExpired(AuthenticationRequired):
    """A token retired in a rotation whose grace period has ended. HTTP 401; the message says so, and to use the
    new token, without echoing either."""


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


@dataclass(frozen=True, slots=True)
class KnownToken:
    """One token the admin API accepts: its role and, for a token retired in a rotation, until when."""

    secret: SecretStr = field(repr=False)
    role: Role
    valid_until: datetime | None = None  # aware; None: valid until it is removed from the settings

    def __post_init__(self) -> None:
        if self.valid_until is not None and self.valid_until.tzinfo is None:
            raise ValueError("valid_until must carry a time zone, e.g. 2026-12-06T12:00:00Z")


class TokenRegistry:
    """The known tokens and their roles, several per role while a rotation's grace period lasts. Built once at
    start from the settings; ``clock`` says what time it is (tests pass their own)."""

    def __init__(
        self,
        tokens: Iterable[KnownToken | tuple[SecretStr, Role]],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        known = [token if isinstance(token, KnownToken) else KnownToken(*token) for token in tokens]
        self._tokens = [(token.secret.get_secret_value().encode(), token.role, token.valid_until) for token in known]
        if not self._tokens:
            raise ValueError("the admin API needs at least one token")
        self._clock = clock

    @classmethod
    def from_tokens(
        cls,
        *,
        admin: SecretStr | None = None,
        operator: SecretStr | None = None,
        viewer: SecretStr | None = None,
        admin_previous: SecretStr | None = None,
        operator_previous: SecretStr | None = None,
        viewer_previous: SecretStr | None = None,
        previous_valid_until: datetime | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> TokenRegistry:
        """The current token of each role, and the ones a rotation retired, valid until ``previous_valid_until``."""
        previous = (admin_previous, operator_previous, viewer_previous)
        if any(token is not None for token in previous) and previous_valid_until is None:
            raise ValueError("a previous token needs the end of its grace period (SLSBOT_TOKEN_GRACE_UNTIL)")
        given = [
            *(
                KnownToken(token, role)
                for token, role in ((admin, Role.ADMIN), (operator, Role.OPERATOR), (viewer, Role.VIEWER))
                if token is not None
            ),
            *(
                KnownToken(token, role, previous_valid_until)
                for token, role in zip(previous, (Role.ADMIN, Role.OPERATOR, Role.VIEWER), strict=True)
                if token is not None
            ),
        ]
        return cls(given, clock=clock)

    async def identify(self, presented: str, *, request: Request | None = None) -> Principal | None:
        """The principal holding ``presented``, or None for a token nobody holds. TokenExpired for a token whose
        grace period has ended. Every known token is compared, in constant time; the role does not depend on the
        request."""
        return self._principal_for(presented)

    def _principal_for(self, presented: str) -> Principal | None:
        candidate = presented.encode()
        now = self._clock()
        found: Role | None = None
        expired: tuple[Role, datetime] | None = None
        for token, role, valid_until in self._tokens:
            if secrets.compare_digest(candidate, token):
                if valid_until is None or now < valid_until:
                    found = role if found is None else max(found, role)
                else:
                    expired = (role, valid_until)
        if found is not None:
            return Principal(found, token_id(presented))
        if expired is not None:
            role, until = expired
            raise TokenExpired(
                f"this {role.label} token was retired in a rotation and its grace period ended at "
                f"{until.astimezone(UTC).isoformat(timespec='seconds')}; use the new {role.label} token"
            )
        return None
