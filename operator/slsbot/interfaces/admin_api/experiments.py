"""The admin API's Experiment routes: read them with their rollout's status (viewer), and steer an A/B rollout by
hand (operator): promote, abort, pause, resume.

The controls do not call anything: they set ``spec.promote``, ``spec.abort`` or ``spec.paused`` through the
``AdminData`` port (locally an override on the YAML spec that survives restarts, as a Strategy's pause; on a cluster
a patch of the Experiment's spec), and the controller's next pass hands them to the rollout controller, which acts
and records the decision in the Experiment's status. Each request is audited (``app.audit_mutations``), refused or
not.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from slsbot.api import ExperimentType
from slsbot.domain.admin_data import AdminObject
from slsbot.domain.errors import ConflictError, InvalidSpecError
from slsbot.domain.ports import AdminData
from slsbot.domain.rollout_plan import FINISHED, RolloutPhase
from slsbot.interfaces.admin_api.deps import (
    DataDep,
    Namespace,
    OperatorDep,
    ViewerDep,
    find_object,
    known_query_parameters,
)
from slsbot.interfaces.admin_api.schemas import ExperimentView, error_responses

router = APIRouter(
    prefix="/api/v1",
    tags=["experiments"],
    responses=error_responses(400, 401),
    dependencies=[Depends(known_query_parameters)],
)


def experiment_audit_target(request: Request, name: str, namespace: Namespace) -> None:
    """The audit trail's target, known before the token is checked (a refused request names it too)."""
    request.state.audit_target = f"Experiment {namespace or '*'}/{name}"


async def find_experiment(data: AdminData, *, name: str, namespace: str | None) -> AdminObject:
    return await find_object(data, "Experiment", name=name, namespace=namespace)


@router.get("/experiments", response_model=list[ExperimentView])
async def list_experiments(data: DataDep, _: ViewerDep, namespace: Namespace) -> list[ExperimentView]:
    """Every Experiment with its phase; an A/B rollout's step, allocations, test statistic and decisions."""
    return [ExperimentView.build(row) for row in await data.objects("Experiment", namespace=namespace)]


@router.get("/experiments/{name}", response_model=ExperimentView, responses=error_responses(400, 404))
async def get_experiment(data: DataDep, _: ViewerDep, name: str, namespace: Namespace) -> ExperimentView:
    return ExperimentView.build(await find_experiment(data, name=name, namespace=namespace))


async def _control(
    request: Request, data: AdminData, *, name: str, namespace: str | None, control: str, value: bool
) -> ExperimentView:
    row = await find_experiment(data, name=name, namespace=namespace)
    request.state.audit_target = f"Experiment {row.namespace}/{row.name}"
    kind = (row.document.get("spec") or {}).get("type")
    if kind != ExperimentType.AB:
        raise InvalidSpecError(
            f"Experiment {row.namespace}/{row.name} is type {kind}: promote, abort, pause and resume steer an A/B "
            "rollout (type ab)"
        )
    phase = (row.status or {}).get("phase")
    if phase in FINISHED:
        raise ConflictError(
            f"Experiment {row.namespace}/{row.name} has finished ({phase}); nothing is left to steer. Delete it "
            "and apply it again to run another rollout"
        )
    if phase == RolloutPhase.PROMOTING and control != "promote":
        raise ConflictError(
            f"Experiment {row.namespace}/{row.name} is promoting its candidate; a promotion under way is not undone"
        )
    return ExperimentView.build(await data.set_experiment_control(row, control, value))


_MUTATING = {"responses": error_responses(400, 403, 404, 409), "dependencies": [Depends(experiment_audit_target)]}


@router.post("/experiments/{name}/promote", response_model=ExperimentView, **_MUTATING)
async def promote_experiment(
    request: Request, data: DataDep, _: OperatorDep, name: str, namespace: Namespace
) -> ExperimentView:
    """Promote the candidate now, whatever the test says (spec.promote). Audited."""
    return await _control(request, data, name=name, namespace=namespace, control="promote", value=True)


@router.post("/experiments/{name}/abort", response_model=ExperimentView, **_MUTATING)
async def abort_experiment(
    request: Request, data: DataDep, _: OperatorDep, name: str, namespace: Namespace
) -> ExperimentView:
    """Roll back now: the candidate to zero capital, the baseline back to its share (spec.abort). Audited."""
    return await _control(request, data, name=name, namespace=namespace, control="abort", value=True)


@router.post("/experiments/{name}/pause", response_model=ExperimentView, **_MUTATING)
async def pause_experiment(
    request: Request, data: DataDep, _: OperatorDep, name: str, namespace: Namespace
) -> ExperimentView:
    """Hold the current step: no step moves and nothing is promoted; a rollback still happens (spec.paused).
    Survives restarts; audited."""
    return await _control(request, data, name=name, namespace=namespace, control="paused", value=True)


@router.post("/experiments/{name}/resume", response_model=ExperimentView, **_MUTATING)
async def resume_experiment(
    request: Request, data: DataDep, _: OperatorDep, name: str, namespace: Namespace
) -> ExperimentView:
    """Let the rollout move on again. Audited."""
    return await _control(request, data, name=name, namespace=namespace, control="paused", value=False)
