"""Who runs a retrain: a separate training process for a runtime, the caller itself for fast mode.

``WorkerTrainer`` starts one process (``spawn``: a clean interpreter, not a fork of the threaded runtime) on the
first job and keeps it for the next ones. In it: the BLAS and OpenMP threads limited to ``ml.worker.threads``,
niceness ``ml.worker.nice`` (the loop keeps its core), and an address-space bound of ``ml.worker.memoryMiB``
(a job that needs more fails with a MemoryError, or the process dies and the job is failed). A job running longer
than ``ml.worker.timeout`` is killed and failed; the next job starts a new process. The loop only ever polls a
pipe (``poll``), so it never waits on the training's GIL; a replay waits for the result on purpose (``wait``).

The process stores each candidate in the registry (``complete_job``) and sends back the compiled models and the
figures, over the pipe between the two processes of the runtime (the one place models cross without skops: both
ends are this code). ``InProcessTrainer`` runs ``complete_job`` in the caller, for fast mode and tests: the same
candles give the same models (training is single-threaded and seeded).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from slsbot_runtime.ml.training import Outcome, TrainingJob, run_training, with_version

log = logging.getLogger(__name__)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class VersionStore(Protocol):
    def save(self, outcome: Outcome, *, approved: bool, inputs: dict[str, int] | None = None) -> int: ...

    def record_decision(self, name: str, decision: dict[str, Any]) -> None: ...


class CountingStore:
    """Versions counted per model in memory, decisions kept in a list: fast mode's registry."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.decisions: list[dict[str, Any]] = []

    def save(self, outcome: Outcome, *, approved: bool, inputs: dict[str, int] | None = None) -> int:
        self.counts[outcome.name] = self.counts.get(outcome.name, 0) + 1
        return self.counts[outcome.name]

    def record_decision(self, name: str, decision: dict[str, Any]) -> None:
        self.decisions.append({"name": name, **decision})


def complete_job(job: TrainingJob, store: VersionStore) -> list[Outcome]:
    """Train the job's models, store every candidate (approved when it replaces the current model), record each
    decision, and return the outcomes with their versions (without the scikit-learn objects)."""
    inputs_of = {spec.name: spec.inputs for spec in job.models}
    stored: dict[str, int] = {}
    result = []
    for outcome in run_training(job):
        if outcome.ok:
            inputs = {name: stored[name] for name in inputs_of[outcome.name] if name in stored}
            version = store.save(outcome, approved=outcome.replaces, inputs=inputs)
            stored[outcome.name] = version
            outcome = with_version(outcome, version, inputs)
        store.record_decision(outcome.name, decision_record(outcome))
        result.append(replace(outcome, fitted=None))
    return result


def decision_record(outcome: Outcome) -> dict[str, Any]:
    return {
        "point_ms": outcome.point,
        "reason": outcome.reason,
        "version": outcome.version,
        "replaces": outcome.replaces,
        "decision": outcome.decision if outcome.ok else f"failed: {outcome.error}",
        "metrics": dict(outcome.metrics),
        "incumbent_version": outcome.incumbent_version,
        "incumbent_metrics": None if outcome.incumbent_metrics is None else dict(outcome.incumbent_metrics),
        "error": outcome.error,
    }


def failed_outcomes(job: TrainingJob, message: str) -> list[Outcome]:
    return [Outcome(spec.name, job.point, job.reason, error=message) for spec in job.models]


class InProcessTrainer:
    """Runs each job at once in the caller (fast mode, tests)."""

    def __init__(self, store: VersionStore | None = None) -> None:
        self.store = store or CountingStore()
        self._done: list[Outcome] | None = None

    @property
    def busy(self) -> bool:
        return False

    def submit(self, job: TrainingJob) -> None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            self._done = complete_job(job, self.store)

    def poll(self) -> list[Outcome] | None:
        done, self._done = self._done, None
        return done

    def wait(self, on_tick: Callable[[], None] | None = None) -> list[Outcome]:
        done = self.poll()
        assert done is not None, "no job submitted"
        return done

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class WorkerBounds:
    memory_mib: int = 2048
    threads: int = 1
    nice: int = 10
    timeout_s: float = 1800.0


class WorkerTrainer:
    """Jobs run in a separate, bounded training process (see the module doc)."""

    def __init__(
        self, registry_root: str | Path, bounds: WorkerBounds = WorkerBounds(), *, owns_root: bool = False
    ) -> None:
        self.registry_root = Path(registry_root)
        self.owns_root = owns_root  # a throwaway registry (a step backtest's): removed on close
        self.bounds = bounds
        self._process: Any = None
        self._conn: Any = None
        self._job: TrainingJob | None = None
        self._started_at = 0.0
        self._refused: list[Outcome] | None = None
        self.pid: int | None = None

    @property
    def busy(self) -> bool:
        return self._job is not None

    def submit(self, job: TrainingJob) -> None:
        if self._job is not None:
            raise RuntimeError("a training job is already running")
        self._job = job
        self._started_at = time.monotonic()
        try:
            self._ensure_process()
            self._conn.send(job)
        except Exception as error:  # the process could not start or died at once: the job fails, the loop goes on
            self._stop_process()
            self._refused = failed_outcomes(job, f"could not hand the job to the training process: {error}"[:300])

    def poll(self) -> list[Outcome] | None:
        """The finished job's outcomes, or None while it runs (never blocks)."""
        if self._job is None:
            return None
        return self._check(0.0)

    def wait(self, on_tick: Callable[[], None] | None = None) -> list[Outcome]:
        """Block until the job ends (or times out), calling ``on_tick`` about every 0.2 s meanwhile."""
        while True:
            done = self._check(0.2)
            if done is not None:
                return done
            if on_tick is not None:
                on_tick()

    def close(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is not None:
            with contextlib.suppress(Exception):
                conn.send(None)
            process.join(2.0)
            if process.is_alive():
                process.kill()
                process.join(2.0)
            conn.close()
        if self.owns_root:
            shutil.rmtree(self.registry_root, ignore_errors=True)

    def _check(self, timeout: float) -> list[Outcome] | None:
        job = self._job
        assert job is not None
        if self._refused is not None:
            refused, self._refused, self._job = self._refused, None, None
            return refused
        try:
            if self._conn.poll(timeout):
                outcomes = self._conn.recv()
                self._job = None
                return outcomes
        except (EOFError, OSError):
            pass
        else:
            if self._process.is_alive():
                if time.monotonic() - self._started_at <= self.bounds.timeout_s:
                    return None
                self._stop_process()
                self._job = None
                limit = f"{self.bounds.timeout_s:g} s"
                return failed_outcomes(job, f"training took longer than ml.worker.timeout ({limit})")
        code = self._process.exitcode
        self._stop_process()
        self._job = None
        return failed_outcomes(
            job, f"the training process died (exit code {code}); it may need more than ml.worker.memoryMiB"
        )

    def _ensure_process(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        self._stop_process()
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        bounds = self.bounds
        process = context.Process(
            target=serve,
            args=(child, str(self.registry_root), bounds.memory_mib, bounds.threads, bounds.nice),
            name="slsbot-training",
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._conn, self.pid = process, parent, process.pid

    def _stop_process(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is not None and process.is_alive():
            process.kill()
            process.join(5.0)
        if conn is not None:
            conn.close()


def serve(conn: Any, registry_root: str, memory_mib: int, threads: int, nice: int) -> None:
    """The training process: bound itself, then run jobs from ``conn`` until it reads None."""
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    import resource

    limit = memory_mib * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with contextlib.suppress(OSError):
        os.nice(nice)
    from threadpoolctl import threadpool_limits

    from slsbot_runtime.ml.registry import ModelRegistry

    registry = ModelRegistry(registry_root)
    with threadpool_limits(limits=threads):
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return
            if job is None:
                return
            try:
                outcomes = complete_job(job, registry)
            except BaseException as error:  # MemoryError included: the job fails, the process goes on
                outcomes = failed_outcomes(job, f"{type(error).__name__}: {error}"[:300])
            conn.send(outcomes)
