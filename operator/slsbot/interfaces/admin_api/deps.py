"""The admin API's dependencies, as ``Annotated`` aliases: ``SessionDep``, ``CurrentPrincipal``, ``ViewerDep``,
``OperatorDep``, ``RuntimeClientDep``. What they hand out (engine, tokens, runtime client) was passed to
``create_app`` and lives on ``app.state``; a session lives for one request.

Each is ``async def``: none waits for anything (a Session connects on its first query, in the route), and FastAPI
runs a plain ``def`` dependency in its thread pool, one thread hop each, which on a machine busy starting a fleet
costs every request a scheduling wait per hop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.interfaces.admin_api.auth import AuthenticationRequired, Principal, Role, TokenRegistry

bearer_scheme = HTTPBearer(auto_error=False, description="SLSBOT_ADMIN_TOKEN (operator) or SLSBOT_VIEWER_TOKEN")


async def get_session(request: Request) -> AsyncIterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


async def get_runtime_client(request: Request) -> RuntimeHttpClient:
    return request.app.state.runtime_client


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    if credentials is None:
        raise AuthenticationRequired("missing bearer token: send the header 'Authorization: Bearer <token>'")
    registry: TokenRegistry = request.app.state.tokens
    principal = registry.identify(credentials.credentials)
    if principal is None:
        raise AuthenticationRequired("unknown bearer token")
    request.state.principal = principal  # for the audit trail
    return principal


SessionDep = Annotated[Session, Depends(get_session)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
RuntimeClientDep = Annotated[RuntimeHttpClient, Depends(get_runtime_client)]


async def require_viewer(principal: CurrentPrincipal) -> Principal:
    principal.require(Role.VIEWER)
    return principal


async def require_operator(principal: CurrentPrincipal) -> Principal:
    principal.require(Role.OPERATOR)
    return principal


ViewerDep = Annotated[Principal, Depends(require_viewer)]
OperatorDep = Annotated[Principal, Depends(require_operator)]
