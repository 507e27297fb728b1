"""``KubernetesTuningRunner``: a tuning run's workers as an indexed Job in the Experiment's namespace, its finalize
step as a process of the operator itself.

Implements ``slsbot.domain.ports.TuningRunner``. Every worker pod and the operator reach the study through one
storage URL (``SLSBOT_OPERATOR_STUDY_STORAGE``, a PostgreSQL URL on a cluster); without it no run starts and the
Experiment says which setting is missing. The URL reaches the pods through a Secret of the Experiment's own
(``tuning_manifests``); it is never logged, and a message that must name the storage shows it without its password.

The finalize step runs in the operator's pod (``adapters.tuning_processes``, under ``SLSBOT_OPERATOR_TUNING_DIR``):
its result is read from there into the Experiment's status, and its report stays there. It backtests the proposal
on the plan's data folder, so that folder must exist in the operator's pod too (the candles bundled with the image
do; a folder mounted into the workers must be mounted into the operator as well).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import SecretStr

from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.adapters.kubernetes.tuning_manifests import (
    ANNOTATION_STUDY,
    LABEL_STORAGE,
    build_tuning_job,
    build_tuning_plan_configmap,
    build_tuning_storage_secret,
    storage_fingerprint,
    storage_secret_name,
    tuning_object_name,
)
from slsbot.adapters.tuning_processes import (
    Role,
    TuningProcesses,
    engine_plan_problems,
    observed_finalize,
    read_study,
    without_password,
)
from slsbot.domain.errors import ConflictError, InvalidSpecError
from slsbot.domain.runtime_errors import last_error_line
from slsbot.domain.tuning_plan import ObservedTuning, ObservedWorkers, TuningPolicy, TuningRun

log = logging.getLogger(__name__)

STORAGE_SETTING = "SLSBOT_OPERATOR_STUDY_STORAGE"


class KubernetesTuningRunner:
    def __init__(
        self,
        api: KubernetesApi,
        processes: TuningProcesses,
        *,
        storage_url: SecretStr | None,
        default_data_dir: str | None,
        policy: TuningPolicy | None = None,
    ) -> None:
        self._api = api
        self._processes = processes
        self._storage = storage_url
        self._default_data_dir = default_data_dir
        self._policy = policy or TuningPolicy()

    # --- TuningRunner -------------------------------------------------------------------------------------------

    def storage_problem(self) -> str | None:
        if self._storage is None or not self._storage.get_secret_value().strip():
            return (
                f"{STORAGE_SETTING} is not set, so tuning workers have no study storage to share; set it on the "
                "operator to a database every worker pod and the operator reach, e.g. "
                "postgresql://slsbot@postgres.slsbot-system.svc/optuna (see docs/concepts/experiments.md)"
            )
        return None

    def default_data_dir(self) -> str | None:
        return self._default_data_dir

    def plan_problems(self, plan: dict[str, Any]) -> list[str]:
        return engine_plan_problems(plan)

    def start_workers(self, run: TuningRun, count: int) -> None:
        """The storage Secret, the plan's ConfigMap and the Job (``count`` is the Job's business)."""
        owner = self._owner_uid(run)
        self._ensure_storage_secret(run, owner)
        configmap = build_tuning_plan_configmap(run, owner_uid=owner)
        name = configmap["metadata"]["name"]
        path = resource_path("", "v1", "configmaps", namespace=run.namespace)
        try:
            self._api.create(path, configmap)
        except ConflictError:
            self._api.patch(f"{path}/{name}", {"metadata": configmap["metadata"], "data": configmap["data"]})
        job = build_tuning_job(run, owner_uid=owner, worker_failures=self._policy.worker_failures)
        jobs = resource_path("batch", "v1", "jobs", namespace=run.namespace)
        try:
            self._api.create(jobs, job)
        except ConflictError:
            existing = self._api.find(f"{jobs}/{name}") or {}
            study = ((existing.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_STUDY)
            if study not in (None, run.study):
                raise ConflictError(
                    f"Job {run.namespace}/{name} runs study {study}, not {run.study}: an earlier Experiment of the "
                    "same name left it; it goes with that Experiment's garbage collection"
                ) from None
        log.info("experiment %s/%s: Job %s runs study %s", run.namespace, run.experiment, name, run.study)

    def stop_workers(self, run: TuningRun) -> None:
        name = tuning_object_name(run.experiment, run.run)
        path = resource_path("batch", "v1", "jobs", namespace=run.namespace, name=name)
        if self._api.delete(path, propagation="Background"):
            log.info("experiment %s/%s: deleted Job %s", run.namespace, run.experiment, name)

    def start_finalize(self, run: TuningRun) -> None:
        out = str(self._processes.paths(run).result_dir)
        self._processes.start(run, Role.FINALIZE, 1, ["--storage", self._url(), "--study", run.study, "--out", out])

    def observe(self, run: TuningRun) -> ObservedTuning:
        paths = self._processes.paths(run)
        report = f"{paths.report} (in the operator's pod)"
        final = observed_finalize(self._processes.observe(run, Role.FINALIZE), paths, report)
        return ObservedTuning(read_study(self._url(), run.study), self._workers(run), final)

    # --- internals ----------------------------------------------------------------------------------------------

    def _url(self) -> str:
        if self._storage is None:
            raise InvalidSpecError(f"{STORAGE_SETTING} is not set")
        return self._storage.get_secret_value()

    def _owner_uid(self, run: TuningRun) -> str:
        if not run.experiment_uid:
            raise ConflictError(f"Experiment {run.namespace}/{run.experiment} has no uid yet; trying again")
        return run.experiment_uid

    def _ensure_storage_secret(self, run: TuningRun, owner: str) -> None:
        """Create the storage Secret, or replace it when it holds another URL (it is immutable: never patched)."""
        url = self._url()
        secrets = resource_path("", "v1", "secrets", namespace=run.namespace)
        name = storage_secret_name(run.experiment)
        seen = self._api.find_metadata(f"{secrets}/{name}")
        if seen is not None and (seen.get("labels") or {}).get(LABEL_STORAGE) == storage_fingerprint(url):
            return
        if seen is not None:
            self._api.delete(f"{secrets}/{name}")
        try:
            self._api.create(secrets, build_tuning_storage_secret(run, url, owner_uid=owner))
        except ConflictError:
            raise ConflictError(f"Secret {run.namespace}/{name} is being replaced; trying again") from None

    def _workers(self, run: TuningRun) -> ObservedWorkers:
        name = tuning_object_name(run.experiment, run.run)
        job = self._api.find(resource_path("batch", "v1", "jobs", namespace=run.namespace, name=name))
        if job is None:
            return ObservedWorkers(restarts_itself=True, present=False)
        annotations = (job.get("metadata") or {}).get("annotations") or {}
        if annotations.get(ANNOTATION_STUDY) not in (None, run.study):
            return ObservedWorkers(restarts_itself=True, present=True)  # an old one, on its way out
        status = job.get("status") or {}
        failed = int(status.get("failed") or 0)
        return ObservedWorkers(
            running=int(status.get("active") or 0),
            succeeded=int(status.get("succeeded") or 0),
            failed=failed,
            last_error=without_password(self._last_error(run, name, job), self._url()) if failed else "",
            restarts_itself=True,
            present=True,
        )

    def _last_error(self, run: TuningRun, name: str, job: dict[str, Any]) -> str:
        """Why a worker pod failed: its termination message (its last log lines), else the Job's condition."""
        pods = self._api.list(
            resource_path("", "v1", "pods", namespace=run.namespace), label_selector={"job-name": name}
        )
        for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or "")):
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                for state in (container.get("state") or {}, container.get("lastState") or {}):
                    terminated = state.get("terminated") or {}
                    if terminated and terminated.get("exitCode") not in (None, 0):
                        words = last_error_line(str(terminated.get("message") or ""))
                        return f"exit code {terminated['exitCode']}" + (f": {words}" if words else "")
        for condition in (job.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Failed" and condition.get("status") == "True":
                return f"{condition.get('reason', 'Failed')}: {condition.get('message', '')}".strip(": ")
        return ""
