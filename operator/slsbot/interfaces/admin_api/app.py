"""The admin API's app factory: routes, the handlers turning ``slsbot.domain.errors`` (and Starlette's own 404 and
405) into one JSON error shape, the audit trail, and the interactive docs and the Control Center (``/ui``) served
from assets in the package.

What is recorded, and what is not:

* every **authenticated** mutating request (POST, PUT, PATCH, DELETE) that matched a real route is one audit entry,
  whatever its outcome: the caller (role and token id), the method and the route's template, the target, the
  status and the error's message, each field bounded (``adapters.store.AUDIT_FIELD_LIMITS``);
* a request refused before anyone is known (401: no token or an unknown one, on any route), and a mutating
  request to no route at all, is only **counted**, per method, route template and status: nothing an anonymous
  sender chose (its path, its token, its body) is stored, so no one can grow the database by sending requests.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from slsbot.adapters.admin_data import SqlAdminData
from slsbot.adapters.control_metrics import METRICS_CONTENT_TYPE, ControlMetrics
from slsbot.adapters.postmortems import LocalPostmortems
from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import NO_ROUTE, count_refused_request, record_audit
from slsbot.adapters.supervisor_store import SqlIncidentStore
from slsbot.domain.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidSpecError,
    NotFoundError,
    PermissionDenied,
    RuntimeUnreachable,
    SlsbotError,
)
from slsbot.domain.ports import AdminData
from slsbot.interfaces.admin_api.auth import AuthenticationRequired, Authenticator
from slsbot.interfaces.admin_api.control_center import install_control_center
from slsbot.interfaces.admin_api.deps import InvalidQueryParameter, identify_sender
from slsbot.interfaces.admin_api.experiment_reports import router as experiment_reports_router
from slsbot.interfaces.admin_api.experiments import router as experiments_router
from slsbot.interfaces.admin_api.fleet import router as fleet_router
from slsbot.interfaces.admin_api.hardening import docs_csp, install_hardening
from slsbot.interfaces.admin_api.incidents import router as incidents_router
from slsbot.interfaces.admin_api.overview import router as overview_router
from slsbot.interfaces.admin_api.risk_policies import router as risk_policies_router
from slsbot.interfaces.admin_api.routes import health_router, router
from slsbot.interfaces.admin_api.schemas import protection_responses
from slsbot.services.incidents import IncidentService, PostmortemArchive
from slsbot.settings import AdminApiSettings

log = logging.getLogger(__name__)

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
COUNTED_METHODS = frozenset({"GET", "HEAD", "OPTIONS", *MUTATING_METHODS})
HTTP_STATUS: dict[type[SlsbotError], int] = {
    AuthenticationRequired: 401,
    PermissionDenied: 403,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidSpecError: 400,
    InvalidQueryParameter: 400,
    RuntimeUnreachable: 503,
    BackendUnavailable: 503,
}
#: Swagger UI's files, vendored from the npm package swagger-ui-dist (see its VENDORED.md): /docs works offline.
SWAGGER_UI_ASSETS = Path(__file__).parent / "static" / "swagger-ui"
DOCS_ASSETS_URL = "/docs/assets"


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


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own answers (no such route, a method the route does not take) in the same JSON shape."""
    assert isinstance(exc, StarletteHTTPException)
    error = HTTPStatus(exc.status_code).phrase.title().replace(" ", "").replace("-", "")
    return JSONResponse({"detail": str(exc.detail), "error": error}, status_code=exc.status_code, headers=exc.headers)


def _write_audit(engine: Engine, *, actor: str, action: str, target: str | None, result: str) -> None:
    try:
        with Session(engine) as session:
            record_audit(session, actor=actor, action=action, target=target, result=result, now=datetime.now(UTC))
    except Exception:  # an audit failure is loud in the log but does not turn a done action into an error
        log.exception("could not write the audit entry for %s by %s", action, actor)


def _count_refused(engine: Engine, *, method: str, route: str, status: int) -> None:
    try:
        with Session(engine) as session:
            count_refused_request(session, method=method, route=route, status=status, now=datetime.now(UTC))
    except Exception:
        log.exception("could not count a refused %s %s (%d)", method, route, status)


def matched_route(request: Request) -> str | None:
    """The template of the route that served ``request`` (``/api/v1/strategies/{name}``), or None when no route
    took its method and path (an unknown path, a method the route does not take, the docs' static files)."""
    route = request.scope.get("route")
    if isinstance(route, Route) and route.methods is not None and request.method in route.methods:
        return route.path
    return None


async def audit_mutations(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    route = matched_route(request)
    engine = request.app.state.engine
    method = request.method if request.method in COUNTED_METHODS else "OTHER"
    mutating = request.method in MUTATING_METHODS
    principal = await identify_sender(request) if route is not None else None
    if route is None:
        if mutating:
            await run_in_threadpool(_count_refused, engine, method=method, route=NO_ROUTE, status=response.status_code)
    elif principal is None:
        if response.status_code >= 400:  # refused before anyone was known: 401 (or 400 for a malformed request)
            await run_in_threadpool(_count_refused, engine, method=method, route=route, status=response.status_code)
    elif mutating:
        detail = getattr(request.state, "audit_detail", None)
        await run_in_threadpool(
            _write_audit,
            engine,
            actor=principal.actor,
            action=f"{request.method} {route}",
            target=getattr(request.state, "audit_target", None),
            result=f"{response.status_code} {detail}" if detail else str(response.status_code),
        )
    return response


def swagger_ui(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - docs",
        swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon-32x32.png",
    )
    page.headers["Content-Security-Policy"] = docs_csp(bytes(page.body).decode())
    return page


def metrics_text(request: Request) -> Response:
    """The control plane's metrics (``adapters.control_metrics``), in Prometheus text. Open to anyone, as the runtimes'
    ``/metrics``: Prometheus scrapes without a token, and no metric carries a secret."""
    metrics: ControlMetrics = request.app.state.metrics
    return Response(metrics.exposition(), media_type=METRICS_CONTENT_TYPE)


def create_app(
    *,
    engine: Engine,
    tokens: Authenticator | None = None,
    runtime_client: RuntimeHttpClient | None,
    state_dir: Path | None = None,
    metrics: ControlMetrics | None = None,
    incidents: IncidentService | None = None,
    authenticator: Authenticator | None = None,
    data: AdminData | None = None,
    tuning_dir: Path | None = None,
    hardening: AdminApiSettings | None = None,
    postmortems: PostmortemArchive | None = None,
) -> FastAPI:
    """``engine``: the database of the audit trail and the refused-request counts (locally the supervisor's store,
    which also holds the objects; on a cluster a file in the operator's state folder). ``authenticator`` (or
    ``tokens``, its older name): who sent a request, ``TokenRegistry`` locally. ``data``: the objects the routes read
    and change; the local store (``SqlAdminData`` over ``engine``, ``runtime_client`` and ``state_dir``) when not
    given. ``state_dir``: the supervisor's state folder, to read a down runtime's orders from its state file (and to
    keep post-mortem bundles); ``tuning_dir``: where tuning reports are (``state_dir/tuning`` when not given).
    ``metrics``: the control plane's metrics, served at ``/metrics``. ``incidents``: the incidents service (the
    routes share its lock); one over the same database when not given. ``hardening``: rate limit, lockout, CORS and
    body limit (``hardening.py``); the defaults of ``AdminApiSettings`` when not given. ``postmortems``: where the
    incidents' post-mortem bundles are kept and read (on a cluster, ``KubernetesPostmortems``); files under
    ``state_dir`` when not given."""
    authenticator = authenticator or tokens
    if authenticator is None:
        raise ValueError("create_app needs an authenticator: a TokenRegistry, or KubernetesAuthenticator on a cluster")
    app = FastAPI(
        title="slsbot admin API",
        version="v1",
        description="The strategies, their orders, the experiments, events, incidents and the audit trail, of the "
        "local supervisor (slsbot up) or of a cluster (slsbot operator --admin-api-port). "
        "Bearer tokens: a viewer reads, an operator also pauses and resumes (and steers A/B rollouts), an admin may "
        "do everything; on a cluster the token is a Kubernetes one, checked by TokenReview, and the role is what "
        "RBAC allows on the slsbot resources (SubjectAccessReview: get/list, patch, *). "
        'Every error is JSON: {"detail": "what went wrong and what to do", "error": "the error class"}.',
        docs_url=None,  # served below from the package's own copy of Swagger UI, not from a CDN
        redoc_url=None,  # ReDoc loads from a CDN; Swagger UI is enough
        swagger_ui_oauth2_redirect_url=None,
        responses=protection_responses(),  # 413 and 429, which any route may get from the protections
    )
    app.state.engine = engine
    app.state.authenticator = authenticator
    app.state.runtime_client = runtime_client
    app.state.state_dir = state_dir
    app.state.tuning_dir = tuning_dir if tuning_dir is not None else (state_dir / "tuning" if state_dir else None)
    app.state.data = data if data is not None else SqlAdminData(engine, runtime_client, state_dir)
    app.state.metrics = metrics if metrics is not None else ControlMetrics()
    postmortems = postmortems if postmortems is not None else LocalPostmortems(engine, state_dir)
    app.state.postmortems = postmortems
    app.state.incidents = incidents or IncidentService(
        SqlIncidentStore(engine), None, postmortems=postmortems, events=app.state.metrics.incidents
    )
    app.add_exception_handler(SlsbotError, slsbot_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.middleware("http")(audit_mutations)
    install_hardening(
        app, settings=hardening if hardening is not None else AdminApiSettings(), metrics=app.state.metrics.admin_api
    )
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=SWAGGER_UI_ASSETS), name="swagger-ui-assets")
    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
    app.add_api_route("/metrics", metrics_text, methods=["GET"], include_in_schema=False)
    app.include_router(health_router)
    app.include_router(router)
    app.include_router(experiment_reports_router)
    app.include_router(experiments_router)
    app.include_router(incidents_router)
    app.include_router(overview_router)
    app.include_router(fleet_router)
    app.include_router(risk_policies_router)
    install_control_center(app)
    return app
