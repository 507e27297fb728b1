"""The admin API's routes. Thin: read or change objects through the ``AdminData`` port (``app.state.data``: the
local store, or a cluster's objects), and shape the answer.

The routes are ``async def`` over the port's coroutines: a read of the local SQLite store runs on the event loop, a
read of a few milliseconds, instead of hopping to a worker thread and back (which costs far more while the
supervisor's loop keeps the interpreter busy); the port runs what waits (a write, a runtime, the Kubernetes API) in
a worker thread.

Pause and resume do not call the runtime: they set the desired ``paused`` flag (locally an override on the YAML spec
that survives restarts; on a cluster the Strategy's ``spec.paused``), and the controller hands it to the runtime.
The audit trail and the refused-request counts stay in a SQLite database (``app.state.engine``) in both modes.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError

from slsbot.adapters.store import (
    AuditPublic,
    EventPublic,
    RefusedRequestPublic,
    list_audit,
    list_refused_requests,
)
from slsbot.domain.admin_data import AdminObject
from slsbot.domain.errors import RuntimeUnreachable
from slsbot.domain.ports import AdminData
from slsbot.interfaces.admin_api.deps import (
    DataDep,
    Namespace,
    OperatorDep,
    SessionDep,
    ViewerDep,
    find_object,
    known_query_parameters,
)
from slsbot.interfaces.admin_api.schemas import ActivityView, HealthView, OrderView, StrategyView, error_responses

health_router = APIRouter(tags=["health"])
router = APIRouter(
    prefix="/api/v1", responses=error_responses(400, 401), dependencies=[Depends(known_query_parameters)]
)


def strategy_audit_target(request: Request, name: str, namespace: Namespace) -> None:
    """The audit trail's target: the Strategy asked for, known before the token is checked (a denied or a failed
    request names it too); the route replaces it with the one found."""
    request.state.audit_target = f"Strategy {namespace or '*'}/{name}"


@health_router.get("/healthz", response_model=HealthView)
async def healthz() -> HealthView:
    return HealthView()


async def find_strategy(data: AdminData, *, name: str, namespace: str | None) -> AdminObject:
    return await find_object(data, "Strategy", name=name, namespace=namespace)


async def _view(data: AdminData, row: AdminObject) -> StrategyView:
    runtimes = await data.runtimes([row])
    return StrategyView.build(row, runtimes.get((row.namespace, row.name)))


@router.get("/strategies", response_model=list[StrategyView], tags=["strategies"])
async def list_strategies(data: DataDep, _: ViewerDep, namespace: Namespace) -> list[StrategyView]:
    """Every strategy with its phase, Ready condition and profit at a glance (return, PnL, win rate, drawdown)."""
    rows = await data.objects("Strategy", namespace=namespace)
    runtimes = await data.runtimes(rows)
    return [StrategyView.build(row, runtimes.get((row.namespace, row.name))) for row in rows]


@router.get("/strategies/{name}", response_model=StrategyView, tags=["strategies"], responses=error_responses(400, 404))
async def get_strategy(data: DataDep, _: ViewerDep, name: str, namespace: Namespace) -> StrategyView:
    return await _view(data, await find_strategy(data, name=name, namespace=namespace))


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
async def get_strategy_orders(
    response: Response,
    data: DataDep,
    _: ViewerDep,
    name: str,
    namespace: Namespace,
    limit: int = Query(default=100, ge=1, le=1000, description="Newest first; the runtime serves at most 1000."),
) -> list[OrderView]:
    """Served by the running runtime; while it is down, read from its state file (header
    ``X-Slsbot-Orders-Source: state-file``), so the orders are there when they matter most."""
    row = await find_strategy(data, name=name, namespace=namespace)
    orders = await data.orders(row, limit=limit)
    if orders.from_state_file:
        response.headers["X-Slsbot-Orders-Source"] = "state-file"
    try:
        return [OrderView.from_runtime(item) for item in orders.items if isinstance(item, dict)]
    except ValidationError as exc:
        raise RuntimeUnreachable(
            f"the runtime of Strategy {row.namespace}/{row.name} answered orders "
            f"this API does not understand: {exc.error_count()} error(s)"
        ) from exc


@router.get(
    "/strategies/{name}/activity",
    response_model=ActivityView,
    tags=["strategies"],
    responses={200: {"headers": ORDERS_SOURCE_HEADER}, **error_responses(400, 404, 503)},
)
async def get_strategy_activity(
    response: Response,
    data: DataDep,
    _: ViewerDep,
    name: str,
    namespace: Namespace,
    limit: int = Query(default=50, ge=1, le=1000, description="Trades and risk decisions, newest first."),
) -> ActivityView:
    """The equity curve (one point per candle, at most 500), the newest trades (round trips) and risk decisions, and
    the circuit breaker: the runtime's ``/activity``; while it is down, read from its state file (header
    ``X-Slsbot-Orders-Source: state-file``)."""
    row = await find_strategy(data, name=name, namespace=namespace)
    activity = await data.activity(row, limit=limit)
    if activity.from_state_file:
        response.headers["X-Slsbot-Orders-Source"] = "state-file"
    try:
        return ActivityView.from_runtime(activity.body)
    except ValidationError as exc:
        raise RuntimeUnreachable(
            f"the runtime of Strategy {row.namespace}/{row.name} answered an activity "
            f"this API does not understand: {exc.error_count()} error(s)"
        ) from exc


async def _set_paused(
    request: Request, data: AdminData, *, name: str, namespace: str | None, paused: bool
) -> StrategyView:
    row = await find_strategy(data, name=name, namespace=namespace)
    request.state.audit_target = f"Strategy {row.namespace}/{row.name}"
    return await _view(data, await data.set_paused(row, paused))


@router.post(
    "/strategies/{name}/pause",
    response_model=StrategyView,
    tags=["strategies"],
    responses=error_responses(400, 403, 404),
    dependencies=[Depends(strategy_audit_target)],
)
async def pause_strategy(
    request: Request, data: DataDep, _: OperatorDep, name: str, namespace: Namespace
) -> StrategyView:
    """Stop opening positions (open orders and positions are kept). Survives restarts; audited."""
    return await _set_paused(request, data, name=name, namespace=namespace, paused=True)


@router.post(
    "/strategies/{name}/resume",
    response_model=StrategyView,
    tags=["strategies"],
    responses=error_responses(400, 403, 404),
    dependencies=[Depends(strategy_audit_target)],
)
async def resume_strategy(
    request: Request, data: DataDep, _: OperatorDep, name: str, namespace: Namespace
) -> StrategyView:
    """Trade again. Survives restarts; audited."""
    return await _set_paused(request, data, name=name, namespace=namespace, paused=False)


@router.get("/events", response_model=list[EventPublic], tags=["events"])
async def get_events(
    data: DataDep,
    _: ViewerDep,
    namespace: Namespace,
    name: str | None = Query(default=None, description="Only this object's events."),
    limit: int = Query(default=100, ge=1, le=10_000),
) -> list[EventPublic]:
    """Events about slsbot objects, newest first (on a cluster: core/v1 Events involving slsbot objects)."""
    rows = await data.events(namespace=namespace, name=name or None, limit=limit)
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
