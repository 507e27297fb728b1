"""The tuning report of an Experiment, as the finalize step wrote it: ``report.html`` and its pictures (viewer role).

``GET /api/v1/experiments/{name}/report`` serves the page of the Experiment's latest completed run, with a
``<base>`` so that its pictures (``<img src="history.png">``) load from ``.../report/{file}``; the pictures are served
by name from the run's result folder and nothing else (no path in a name). Read from the supervisor's state folder
(``<state_dir>/tuning/<namespace>/<experiment>/r<run>/result``), or on a cluster from the operator's tuning folder
(``SLSBOT_OPERATOR_TUNING_DIR``), where its finalize step ran.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from slsbot.adapters.tuning_processes import RunPaths, run_paths
from slsbot.domain.admin_data import AdminObject
from slsbot.domain.errors import NotFoundError
from slsbot.interfaces.admin_api.deps import DataDep, Namespace, ViewerDep, find_object, known_query_parameters
from slsbot.interfaces.admin_api.schemas import error_responses

TUNING_FOLDER = "tuning"  # under the state folder, as ControlPlaneSettings.tuning_dir
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}\.(png|svg|json)$")
_MEDIA = {"png": "image/png", "svg": "image/svg+xml", "json": "application/json"}

router = APIRouter(
    prefix="/api/v1",
    tags=["experiments"],
    responses=error_responses(400, 401, 404),
    dependencies=[Depends(known_query_parameters)],
)


def report_folder(request: Request, row: AdminObject) -> RunPaths:
    """The result folder of the Experiment's latest completed run; NotFoundError saying why there is none."""
    status = row.status or {}
    tuning = status.get("tuning") or {}
    tuning_dir: Path | None = request.app.state.tuning_dir
    if row.document.get("spec", {}).get("type") != "tuning":
        raise NotFoundError(f"Experiment {row.namespace}/{row.name} is not a tuning Experiment: it has no report")
    if tuning_dir is None or not tuning.get("report"):
        phase = status.get("phase", "Pending")
        raise NotFoundError(
            f"Experiment {row.namespace}/{row.name} has no report yet (phase {phase}); one is written when a run "
            "completes"
        )
    return run_paths(tuning_dir, row.namespace, row.name, int(tuning.get("run") or 0))


@router.get(
    "/experiments/{name}/report",
    responses={200: {"description": "The report page.", "content": {"text/html": {"schema": {"type": "string"}}}}},
)
async def get_experiment_report(
    request: Request, data: DataDep, _: ViewerDep, name: str, namespace: Namespace
) -> Response:
    """The tuning report of the latest completed run: optimisation history, parameter importances and the
    out-of-sample equity of the proposal."""
    row = await find_object(data, "Experiment", name=name, namespace=namespace)
    paths = report_folder(request, row)
    try:
        page = paths.report.read_text(encoding="utf-8")
    except OSError as exc:
        raise NotFoundError(f"the report of Experiment {row.namespace}/{row.name} is gone: {exc.strerror}") from exc
    base = f'<base href="/api/v1/experiments/{row.name}/report/">'
    page = re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + base, page, count=1, flags=re.IGNORECASE)
    return HTMLResponse(page)


@router.get(
    "/experiments/{name}/report/{file}",
    responses={
        200: {
            "description": "A picture (or file) of the report.",
            "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in _MEDIA.values()},
        }
    },
)
async def get_experiment_report_file(
    request: Request, data: DataDep, _: ViewerDep, name: str, file: str, namespace: Namespace
) -> Response:
    """A picture of the report, by its file name (``history.png``, ``importances.png``, ``equity.png``...)."""
    match = _FILE.match(file)
    if match is None:
        raise NotFoundError(f"{file[:64]!r} is not a file of a report (pictures such as history.png)")
    row = await find_object(data, "Experiment", name=name, namespace=namespace)
    path = report_folder(request, row).result_dir / file
    if not path.is_file():
        raise NotFoundError(f"the report of Experiment {row.namespace}/{row.name} has no {file}")
    return FileResponse(path, media_type=_MEDIA[match.group(1)])
