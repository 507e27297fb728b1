"""The admin API's incident routes: list and read incidents (viewer), acknowledge and resolve them (operator,
audited like pause and resume), and download an incident's post-mortem bundle (one JSON file).

The routes go through the same ``IncidentService`` as the supervisor's passes (``app.state.incidents``), whose lock
keeps a pass from overwriting a person's acknowledgement.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from slsbot.api.incident import IncidentState
from slsbot.domain.incidents import Incident
from slsbot.interfaces.admin_api.deps import OperatorDep, ViewerDep, known_query_parameters
from slsbot.interfaces.admin_api.schemas import error_responses
from slsbot.services.incidents import IncidentService

router = APIRouter(
    prefix="/api/v1",
    tags=["incidents"],
    responses=error_responses(400, 401),
    dependencies=[Depends(known_query_parameters)],
)


async def get_incidents(request: Request) -> IncidentService:
    return request.app.state.incidents


IncidentsDep = Annotated[IncidentService, Depends(get_incidents)]


def incident_audit_target(request: Request, incident_id: str) -> None:
    """The audit trail's target, known before the token is checked (a refused request names it too)."""
    request.state.audit_target = f"Incident {incident_id[:128]}"


Note = Annotated[str, Query(max_length=1024, description="A note for the incident's timeline.")]


@router.get("/incidents", response_model=list[Incident])
async def list_incidents(
    incidents: IncidentsDep,
    _: ViewerDep,
    state: IncidentState | None = Query(default=None, description="open, acknowledged or resolved."),
    severity: int | None = Query(default=None, ge=1, le=3, description="1 critical, 2 high, 3 medium."),
    namespace: str | None = Query(default=None, description="Only this namespace. Empty: any."),
    limit: int = Query(default=500, ge=1, le=10_000),
) -> list[Incident]:
    """Newest first."""
    return await asyncio.to_thread(  # a cluster's store asks the API server: off the event loop
        incidents.store.list_incidents,
        state=None if state is None else state.value,
        severity=severity,
        namespace=namespace or None,
        limit=limit,
    )


@router.get("/incidents/{incident_id}", response_model=Incident, responses=error_responses(404))
async def get_incident(incidents: IncidentsDep, _: ViewerDep, incident_id: str) -> Incident:
    return await asyncio.to_thread(incidents.store.get_incident, incident_id)


@router.post(
    "/incidents/{incident_id}/acknowledge",
    response_model=Incident,
    responses=error_responses(403, 404, 409),
    dependencies=[Depends(incident_audit_target)],
)
def acknowledge_incident(
    incidents: IncidentsDep, principal: OperatorDep, incident_id: str, note: Note = ""
) -> Incident:
    """A person is on it. Acknowledging twice changes nothing; a resolved incident answers 409. Audited."""
    return incidents.acknowledge(incident_id, principal.actor, datetime.now(UTC), note)


@router.post(
    "/incidents/{incident_id}/resolve",
    response_model=Incident,
    responses=error_responses(403, 404),
    dependencies=[Depends(incident_audit_target)],
)
def resolve_incident(incidents: IncidentsDep, principal: OperatorDep, incident_id: str, note: Note = "") -> Incident:
    """Resolved by a person; a severity 1 or 2 incident's post-mortem bundle is written. Audited."""
    return incidents.resolve(incident_id, principal.actor, datetime.now(UTC), note)


@router.get(
    "/incidents/{incident_id}/postmortem",
    responses={
        200: {"content": {"application/json": {}}, "description": "The bundle, as a file download."},
        **error_responses(404),
    },
)
def get_postmortem(request: Request, incidents: IncidentsDep, _: ViewerDep, incident_id: str) -> Response:
    """The post-mortem bundle, one JSON file: the incident and its timeline, each runtime's last status and risk
    decisions, its recent orders and the Events of the incident's objects. Stored when the incident was resolved
    (severity 1 and 2), else built now. Fill in runbooks/postmortem-template.md from it."""
    incident = incidents.store.get_incident(incident_id)
    archive = request.app.state.postmortems
    bundle = archive.read(incident)
    return Response(
        content=json.dumps(bundle, indent=2, sort_keys=True, default=str),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="postmortem-{incident.id}.json"'},
    )
