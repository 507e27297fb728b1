"""The admin API's routes. Thin: read or write the store, or ask a runtime, and shape the answer.

Routes that only read the local SQLite store are ``async def``: they run on the event loop, a read of a few
milliseconds, instead of hopping to a worker thread and back (and FastAPI serialising the answer on another hop),
which costs far more while the supervisor's loop keeps the interpreter busy. Routes that call a runtime over HTTP or
write stay plain functions, in the thread pool.

Pause and resume do not call the runtime: they set the desired ``paused`` flag in the store (an override on the
YAML spec that survives restarts), and the supervisor's next pass sends it to the runtime.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError
from sqlmodel import Session

from slsbot.adapters.processes import RuntimePaths
from slsbot.adapters.runtime_state import read_orders
from slsbot.adapters.store import (
    AuditPublic,
    EventPublic,
    RefusedRequestPublic,
    StoredObject,
    get_runtime_record,
    list_audit,
    list_events,
    list_refused_requests,
    list_runtime_records,
    list_stored_objects,
    set_paused_override,
)
from slsbot.domain.errors import InvalidSpecError, NotFoundError, RuntimeUnreachable
from slsbot.interfaces.admin_api.deps import (
    OperatorDep,
    RuntimeClientDep,
    SessionDep,
    ViewerDep,
    known_query_parameters,
)
from slsbot.interfaces.admin_api.schemas import HealthView, OrderView, StrategyView, error_responses

health_router = APIRouter(tags=["health"])
router = APIRouter(
    prefix="/api/v1", responses=error_responses(400, 401), dependencies=[Depends(known_query_parameters)]
)


def namespace_query(
    namespace: str | None = Query(
        default=None, description="Only this namespace; needed only when a name exists in several. Empty: any."
    ),
) -> str | None:
    """``?namespace=`` with nothing after it means no namespace was chosen, as if it were absent."""
    return namespace or None


Namespace = Annotated[str | None, Depends(namespace_query)]


def strategy_audit_target(request: Request, name: str, namespace: Namespace) -> None:
    """The audit trail's target: the Strategy asked for, known before the token is checked (a denied or a failed
    request names it too); the route replaces it with the one found."""
    request.state.audit_target = f"Strategy {namespace or '*'}/{name}"


@health_router.get("/healthz", response_model=HealthView)
async def healthz() -> HealthView:
    return HealthView()


def find_strategy(session: Session, *, name: str, namespace: str | None) -> StoredObject:
    rows = list_stored_objects(session, kind="Strategy", namespace=namespace, name=name)
    if not rows:
        where = f"namespace {namespace!r}" if namespace else "any namespace"
        raise NotFoundError(f"Strategy {name!r} does not exist in {where}")
    if len(rows) > 1:
        namespaces = ", ".join(row.namespace for row in rows)
        raise InvalidSpecError(f"Strategy {name!r} exists in namespaces {namespaces}; add ?namespace=<one of them>")
    return rows[0]


def _view(session: Session, row: StoredObject) -> StrategyView:
    return StrategyView.build(row, get_runtime_record(session, namespace=row.namespace, name=row.name))


@router.get("/strategies", response_model=list[StrategyView], tags=["strategies"])
async def list_strategies(session: SessionDep, _: ViewerDep, namespace: Namespace) -> list[StrategyView]:
    """Every strategy with its phase, Ready condition and profit at a glance (return, PnL, win rate, drawdown)."""
    runtimes = {(r.namespace, r.name): r for r in list_runtime_records(session)}
    rows = list_stored_objects(session, kind="Strategy", namespace=namespace)
    return [StrategyView.build(row, runtimes.get((row.namespace, row.name))) for row in rows]


@router.get("/strategies/{name}", response_model=StrategyView, tags=["strategies"], responses=error_responses(400, 404))
async def get_strategy(session: SessionDep, _: ViewerDep, name: str, namespace: Namespace) -> StrategyView:
    return _view(session, find_strategy(session, name=name, namespace=namespace))


ORDERS_SOURCE_HEADER = {
    "X-Slsbot-Orders-Source": {
        "description": "state-file when the runtime is down and the orders were read from its state file.",
        "schema": {"type": "string", "enum": ["state-file"]},
    }
}


@router.get(
    "/strategies/{name}/orders",
    response_model=list[OrderView],
    tags=["strategies"],
    responses={200: {"headers": ORDERS_SOURCE_HEADER}, **error_responses(400, 404, 503)},
)
def get_strategy_orders(
    request: Request,
    response: Response,
    session: SessionDep,
    _: ViewerDep,
    client: RuntimeClientDep,
    name: str,
    namespace: Namespace,
    limit: int = Query(default=100, ge=1, le=1000, description="Newest first; the runtime serves at most 1000."),
) -> list[OrderView]:
    """Served by the running runtime; while it is down, read from its state file (header
    ``X-Slsbot-Orders-Source: state-file``), so the orders are there when they matter most."""
    row = find_strategy(session, name=name, namespace=namespace)
    runtime = get_runtime_record(session, namespace=row.namespace, name=row.name)
    items: list[Any] | None = None
    if runtime is not None and runtime.pid is not None and runtime.port is not None:
        try:
            items = client.orders(f"http://127.0.0.1:{runtime.port}", limit=limit)
        except RuntimeUnreachable:
            items = None
    if items is None:
        state_dir: Path | None = request.app.state.state_dir
        if state_dir is None:
            phase = (row.status or {}).get("phase", "Pending")
            raise RuntimeUnreachable(
                f"the runtime of Strategy {row.namespace}/{row.name} is not running (phase {phase}); "
                "try again once the strategy is Running"
            )
        items = read_orders(RuntimePaths(state_dir / row.namespace / row.name).state, limit=limit)
        response.headers["X-Slsbot-Orders-Source"] = "state-file"
    try:
        return [OrderView.from_runtime(item) for item in items if isinstance(item, dict)]
    except ValidationError as exc:
        raise RuntimeUnreachable(
            f"the runtime of Strategy {row.namespace}/{row.name} answered orders "
            f"this API does not understand: {exc.error_count()} error(s)"
        ) from exc


def _set_paused(request: Request, session: Session, *, name: str, namespace: str | None, paused: bool) -> StrategyView:
    row = find_strategy(session, name=name, namespace=namespace)
    request.state.audit_target = f"Strategy {row.namespace}/{row.name}"
    row = set_paused_override(session, namespace=row.namespace, name=row.name, paused=paused, now=datetime.now(UTC))
    return _view(session, row)


@router.post(
    "/strategies/{name}/pause",
    response_model=StrategyView,
    tags=["strategies"],
    responses=error_responses(400, 403, 404),
    dependencies=[Depends(strategy_audit_target)],
)
def pause_strategy(
    request: Request, session: SessionDep, _: OperatorDep, name: str, namespace: Namespace
) -> StrategyView:
    """Stop opening positions (open orders and positions are kept). Survives restarts; audited."""
    return _set_paused(request, session, name=name, namespace=namespace, paused=True)


@router.post(
    "/strategies/{name}/resume",
    response_model=StrategyView,
    tags=["strategies"],
    responses=error_responses(400, 403, 404),
    dependencies=[Depends(strategy_audit_target)],
)
def resume_strategy(
    request: Request, session: SessionDep, _: OperatorDep, name: str, namespace: Namespace
) -> StrategyView:
    """Trade again. Survives restarts; audited."""
    return _set_paused(request, session, name=name, namespace=namespace, paused=False)


@router.get("/events", response_model=list[EventPublic], tags=["events"])
async def get_events(
    session: SessionDep,
    _: ViewerDep,
    namespace: Namespace,
    name: str | None = Query(default=None, description="Only this object's events."),
    limit: int = Query(default=100, ge=1, le=10_000),
) -> list[EventPublic]:
    rows = list_events(session, namespace=namespace, name=name or None, limit=limit)
    return [EventPublic.model_validate(row, from_attributes=True) for row in rows]


@router.get("/audit", response_model=list[AuditPublic], tags=["audit"])
async def get_audit(
    session: SessionDep, _: ViewerDep, limit: int = Query(default=100, ge=1, le=10_000)
) -> list[AuditPublic]:
    """Authenticated mutating requests (pause, resume...), newest first, whatever their outcome."""
    return [AuditPublic.model_validate(row, from_attributes=True) for row in list_audit(session, limit=limit)]


@router.get("/audit/refused", response_model=list[RefusedRequestPublic], tags=["audit"])
async def get_refused_requests(session: SessionDep, _: ViewerDep) -> list[RefusedRequestPublic]:
    """Requests refused before anyone was known (401, or a mutating request to no route), counted per method,
    route template and status, most frequent first. Their paths, tokens and bodies are never stored."""
    return [RefusedRequestPublic.model_validate(row, from_attributes=True) for row in list_refused_requests(session)]
