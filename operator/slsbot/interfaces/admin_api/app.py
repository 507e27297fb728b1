"""The admin API's app factory: routes, the one handler turning ``slsbot.domain.errors`` into HTTP errors,
and the audit of every mutating request (who, what, when, result), whatever its outcome."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlmodel import Session

from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import record_audit
from slsbot.domain.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidSpecError,
    NotFoundError,
    PermissionDenied,
    RuntimeUnreachable,
    SlsbotError,
)
from slsbot.interfaces.admin_api.auth import AuthenticationRequired, TokenRegistry
from slsbot.interfaces.admin_api.routes import health_router, router

log = logging.getLogger(__name__)

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HTTP_STATUS: dict[type[SlsbotError], int] = {
    AuthenticationRequired: 401,
    PermissionDenied: 403,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidSpecError: 400,
    RuntimeUnreachable: 503,
    BackendUnavailable: 503,
}


def status_for(exc: SlsbotError) -> int:
    for kind in type(exc).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return 500


async def slsbot_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SlsbotError)
    code = status_for(exc)
    request.state.audit_detail = str(exc)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=code, headers=headers)


def _write_audit(engine: Engine, *, actor: str, action: str, target: str | None, result: str) -> None:
    try:
        with Session(engine) as session:
            record_audit(session, actor=actor, action=action, target=target, result=result, now=datetime.now(UTC))
    except Exception:  # an audit failure is loud in the log but does not turn a done action into an error
        log.exception("could not write the audit entry for %s by %s", action, actor)


async def audit_mutations(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    if request.method not in MUTATING_METHODS:
        return await call_next(request)
    response = await call_next(request)
    principal = getattr(request.state, "principal", None)
    detail = getattr(request.state, "audit_detail", None)
    result = f"{response.status_code} {detail}" if detail else str(response.status_code)
    await run_in_threadpool(
        _write_audit,
        request.app.state.engine,
        actor=principal.actor if principal is not None else "anonymous",
        action=f"{request.method} {request.url.path}",
        target=getattr(request.state, "audit_target", None),
        result=result[:1000],
    )
    return response


def create_app(
    *, engine: Engine, tokens: TokenRegistry, runtime_client: RuntimeHttpClient, state_dir: Path | None = None
) -> FastAPI:
    """``state_dir``: the supervisor's state folder, to read a down runtime's orders from its state file."""
    app = FastAPI(
        title="slsbot admin API",
        version="v1",
        description="The local supervisor's strategies, their orders, events and the audit trail. "
        "Bearer tokens: a viewer reads, an operator also pauses and resumes.",
    )
    app.state.engine = engine
    app.state.tokens = tokens
    app.state.runtime_client = runtime_client
    app.state.state_dir = state_dir
    app.add_exception_handler(SlsbotError, slsbot_error_handler)
    app.middleware("http")(audit_mutations)
    app.include_router(health_router)
    app.include_router(router)
    return app
