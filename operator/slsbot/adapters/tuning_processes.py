"""Tuning runs as local processes: the engine's worker and finalize commands (``python -m
slsbot_runtime.tuning.worker`` / ``.finalize``), started, watched and stopped the way ``processes`` runs runtimes.

Layout, per run, under the root folder (``<state_dir>/tuning`` for ``slsbot up``)::

    <namespace>/<experiment>/r<run>/plan.json        the TuningPlan every process of the run reads
                                    study.log        the study (an Optuna journal: journal:///...), under ``slsbot up``
                                    worker-<i>.log   each worker's output
                                    finalize-<i>.log
                                    result/          result.json, report.html and its pictures
                                    processes.json   what was started: pid, role, how it ended

The study lives in its storage, not in the processes: a worker that is stopped or dies leaves its finished trials
there, and the workers started next resume the same study. What this module knows of the processes survives a
restart of the supervisor in ``processes.json``; a process still running from an earlier supervisor is adopted when
its command line names the run's plan (its exit code is then unknown: it is only "gone").

Each process runs in its own process group (a Ctrl-C in the supervisor's terminal does not reach it), niced below
the supervisor, with the environment of the runtimes (no admin tokens or control secrets). ``stop_all`` stops them
when the supervisor stops: SIGTERM, then SIGKILL after ``stop_timeout``; a supervisor that is killed leaves them
running, and the next one adopts them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from slsbot.adapters.process_table import AdoptedProcess, ChildProcess, command_line, pid_runs, signal_group
from slsbot.adapters.processes import runtime_environment
from slsbot.domain.errors import BackendUnavailable
from slsbot.domain.runtime_errors import last_error_line
from slsbot.domain.tuning_plan import (
    FinalizeState,
    ObservedFinalize,
    ObservedTuning,
    ObservedWorkers,
    StudySummary,
    TuningRun,
)
from slsbot_runtime.domain.errors import ConfigError

log = logging.getLogger(__name__)

WORKER_MODULE = "slsbot_runtime.tuning.worker"
FINALIZE_MODULE = "slsbot_runtime.tuning.finalize"
LOG_TAIL_BYTES = 16_384
REPORT_ROUTE = "/api/v1/experiments/{name}/report?namespace={namespace}"


class Role(StrEnum):
    WORKER = "worker"
    FINALIZE = "finalize"


class Ending(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # exit code 0
    FAILED = "failed"  # any other exit code
    STOPPED = "stopped"  # stopped by us (a new run, or the supervisor stopping)
    GONE = "gone"  # adopted from an earlier supervisor and gone since: how it ended is unknown


@dataclass(frozen=True, slots=True)
class RunPaths:
    folder: Path

    @property
    def plan(self) -> Path:
        return self.folder / "plan.json"

    @property
    def journal(self) -> Path:
        return self.folder / "study.log"

    @property
    def result_dir(self) -> Path:
        return self.folder / "result"

    @property
    def result(self) -> Path:
        return self.result_dir / "result.json"

    @property
    def report(self) -> Path:
        return self.result_dir / "report.html"

    @property
    def records(self) -> Path:
        return self.folder / "processes.json"

    def log(self, role: Role, index: int) -> Path:
        return self.folder / f"{role}-{index}.log"


def run_paths(root: Path, namespace: str, experiment: str, run: int) -> RunPaths:
    return RunPaths(root / namespace / experiment / f"r{run}")


@dataclass(slots=True)
class ProcessRecord:
    role: str
    index: int
    pid: int
    started_at: str
    ending: str = Ending.RUNNING
    exit_code: int | None = None
    error: str = ""
    stop_requested_at: float | None = None  # monotonic: SIGKILL after stop_timeout


@dataclass(slots=True)
class _Run:
    paths: RunPaths
    records: list[ProcessRecord] = field(default_factory=list)
    handles: dict[int, ChildProcess | AdoptedProcess] = field(default_factory=dict)  # by pid


class TuningProcesses:
    """The processes of every tuning run under ``root``. Used by one thread at a time (the supervisor's loop, or
    one operator step at a time per Experiment)."""

    def __init__(
        self,
        root: Path,
        *,
        python: Sequence[str] | None = None,
        environ: Mapping[str, str] | None = None,
        nice: int = 0,
        stop_timeout: float = 10.0,
        bytecode_cache: Path | None = None,
        modules: Mapping[Role, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._root = root.resolve()
        self._modules = dict(modules or {Role.WORKER: WORKER_MODULE, Role.FINALIZE: FINALIZE_MODULE})
        self._python = list(python or [sys.executable])
        self._environ = runtime_environment(
            os.environ if environ is None else environ, bytecode_cache=bytecode_cache or self._root / ".pycache"
        )
        self._nice = nice
        self._stop_timeout = stop_timeout
        self._clock = clock
        self._runs: dict[tuple[str, str, int], _Run] = {}

    @property
    def root(self) -> Path:
        return self._root

    def paths(self, run: TuningRun) -> RunPaths:
        return run_paths(self._root, run.namespace, run.experiment, run.run)

    def write_plan(self, run: TuningRun) -> Path:
        """The run's plan as ``plan.json`` (written once per content, atomically)."""
        paths = self.paths(run)
        text = json.dumps(run.plan, indent=1, sort_keys=True)
        try:
            paths.folder.mkdir(parents=True, exist_ok=True)
            if not paths.plan.exists() or paths.plan.read_text() != text:
                staging = paths.plan.with_suffix(".json.tmp")
                staging.write_text(text)
                os.replace(staging, paths.plan)
        except OSError as exc:
            raise BackendUnavailable(f"cannot write the plan of run {run.run} to {paths.plan}: {exc}") from exc
        return paths.plan

    def start(self, run: TuningRun, role: Role, count: int, arguments: Sequence[str]) -> None:
        """Start ``count`` processes of ``role`` for ``run``: ``python -m <module> --plan PLAN <arguments>``."""
        state = self._load(run)
        plan = self.write_plan(run)
        module = self._modules[role]
        for _ in range(count):
            index = 1 + max((r.index for r in state.records if r.role == role), default=0)
            extra = ["--worker-index", str(index)] if role is Role.WORKER else []
            command = [*self._python, "-m", module, "--plan", str(plan), *arguments, *extra]
            log_path = state.paths.log(role, index)
            try:
                with log_path.open("ab") as output:
                    popen = subprocess.Popen(
                        command,
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        env=self._environ,
                        process_group=0,
                    )
            except OSError as exc:
                raise BackendUnavailable(f"cannot start a tuning {role} for run {run.run}: {exc}") from exc
            self._lower_priority(popen.pid)
            state.handles[popen.pid] = ChildProcess(popen)
            state.records.append(ProcessRecord(str(role), index, popen.pid, self._clock().isoformat()))
            log.info(
                "started tuning %s %d of %s/%s run %d as pid %s (log %s)",
                role,
                index,
                run.namespace,
                run.experiment,
                run.run,
                popen.pid,
                log_path,
            )
        self._save(state)

    def stop(self, run: TuningRun, role: Role | None = None) -> None:
        """SIGTERM the run's running processes (of ``role``); they count as stopped, not failed. Returns at once:
        ``observe`` escalates to SIGKILL past ``stop_timeout``."""
        state = self._load(run)
        self._poll(state)
        for record in state.records:
            wanted = role is None or record.role == role
            if record.ending == Ending.RUNNING and wanted and record.stop_requested_at is None:
                signal_group(record.pid, signal.SIGTERM)
                record.stop_requested_at = time.monotonic()
        self._save(state)

    def observe(self, run: TuningRun, role: Role) -> list[ProcessRecord]:
        """The run's processes of ``role``, each with how it ended so far."""
        state = self._load(run)
        self._poll(state)
        return [r for r in state.records if r.role == role]

    def stop_all(self) -> None:
        """Stop every process of every run: SIGTERM to all at once, SIGKILL to any left after ``stop_timeout``."""
        for state in self._runs.values():
            self._poll(state)
        running = [(s, r) for s in self._runs.values() for r in s.records if r.ending == Ending.RUNNING]
        for _, record in running:
            signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        while time.monotonic() < deadline and any(self._alive(s, r) for s, r in running):
            time.sleep(0.05)
        for state, record in running:
            if self._alive(state, record):
                log.warning("tuning %s pid %s ignored SIGTERM; killing it", record.role, record.pid)
                signal_group(record.pid, signal.SIGKILL)
        kill_deadline = time.monotonic() + 5
        while time.monotonic() < kill_deadline and any(self._alive(s, r) for s, r in running):
            time.sleep(0.05)
        for state, record in running:
            record.ending = Ending.STOPPED
            state.handles.pop(record.pid, None)
        for state in self._runs.values():
            self._save(state)

    def retain(self, experiments: Collection[tuple[str, str]]) -> None:
        """Stop the processes of runs whose Experiment (namespace, name) is not in ``experiments`` (it was
        deleted); their study and result stay on disk."""
        for (namespace, name, number), state in list(self._runs.items()):
            if (namespace, name) in experiments:
                continue
            self._poll(state)
            for record in state.records:
                if record.ending == Ending.RUNNING and record.stop_requested_at is None:
                    log.info("experiment %s/%s is gone: stopping its run %d's %s", namespace, name, number, record.role)
                    signal_group(record.pid, signal.SIGTERM)
                    record.stop_requested_at = time.monotonic()
            self._save(state)
            if all(r.ending != Ending.RUNNING for r in state.records):
                del self._runs[(namespace, name, number)]

    # --- internals ------------------------------------------------------------------------------------------

    def _load(self, run: TuningRun) -> _Run:
        key = (run.namespace, run.experiment, run.run)
        state = self._runs.get(key)
        if state is not None:
            return state
        paths = self.paths(run)
        state = _Run(paths)
        with contextlib.suppress(OSError, ValueError, TypeError):
            state.records = [ProcessRecord(**item) for item in json.loads(paths.records.read_text())]
        for record in state.records:
            if record.ending != Ending.RUNNING:
                continue
            record.stop_requested_at = None
            if pid_runs(record.pid) and str(paths.plan) in command_line(record.pid):
                log.info(
                    "adopting tuning %s pid %s of run %d from an earlier supervisor", record.role, record.pid, run.run
                )
                state.handles[record.pid] = AdoptedProcess(record.pid)
            else:
                record.ending = Ending.GONE
        self._runs[key] = state
        return state

    def _save(self, state: _Run) -> None:
        try:
            state.paths.folder.mkdir(parents=True, exist_ok=True)
            staging = state.paths.records.with_suffix(".json.tmp")
            staging.write_text(json.dumps([asdict(r) for r in state.records], indent=1))
            os.replace(staging, state.paths.records)
        except OSError as exc:
            log.warning("cannot record the tuning processes in %s: %s", state.paths.records, exc)

    def _alive(self, state: _Run, record: ProcessRecord) -> bool:
        handle = state.handles.get(record.pid)
        return handle is not None and handle.alive()

    def _poll(self, state: _Run) -> None:
        """Note every process that ended since the last look, and SIGKILL those past their stop deadline."""
        changed = False
        for record in state.records:
            if record.ending != Ending.RUNNING:
                continue
            handle = state.handles.get(record.pid)
            if handle is not None and handle.alive():
                started = record.stop_requested_at
                if started is not None and time.monotonic() - started > self._stop_timeout:
                    log.warning("tuning %s pid %s ignored SIGTERM; killing it", record.role, record.pid)
                    signal_group(record.pid, signal.SIGKILL)
                continue
            changed = True
            code = handle.exit_code if handle is not None else None
            record.exit_code = code
            state.handles.pop(record.pid, None)
            if record.stop_requested_at is not None:
                record.ending = Ending.STOPPED
            elif isinstance(handle, ChildProcess):
                record.ending = Ending.SUCCEEDED if code == 0 else Ending.FAILED
                if code != 0:
                    record.error = _exit_description(code, _tail(state.paths.log(Role(record.role), record.index)))
                    log.warning("tuning %s pid %s exited: %s", record.role, record.pid, record.error)
            else:
                record.ending = Ending.GONE
        if changed:
            self._save(state)

    def _lower_priority(self, pid: int) -> None:
        if self._nice <= 0:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, 0) + self._nice)
        except OSError as exc:
            log.warning("could not lower the priority of tuning pid %s: %s", pid, exc)


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _exit_description(code: int | None, log_tail: str) -> str:
    if code is None:
        how = "exited (exit code unknown)"
    elif code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    last = last_error_line(log_tail)
    return f"{how}: {last}" if last else how


def observed_workers(records: Sequence[ProcessRecord]) -> ObservedWorkers:
    failed = [r for r in records if r.ending == Ending.FAILED]
    running = sum(r.ending == Ending.RUNNING and r.stop_requested_at is None for r in records)
    return ObservedWorkers(
        running=running,
        succeeded=sum(r.ending == Ending.SUCCEEDED for r in records),
        failed=len(failed),
        last_error=failed[-1].error if failed else "",
        present=running > 0,
    )


def observed_finalize(records: Sequence[ProcessRecord], paths: RunPaths, report: str | None) -> ObservedFinalize:
    """SUCCEEDED once ``result.json`` is there (whoever wrote it), RUNNING while a finalize process runs, FAILED
    when the last one ended without a result, ABSENT before the first (or after a restart that lost it)."""
    failed = [r for r in records if r.ending in (Ending.FAILED, Ending.SUCCEEDED)]
    try:
        result = json.loads(paths.result.read_text())
    except FileNotFoundError:
        result = None
    except (OSError, ValueError) as exc:
        result = None
        failed.append(ProcessRecord(str(Role.FINALIZE), 0, 0, "", Ending.FAILED, error=f"unreadable result: {exc}"))
    if isinstance(result, dict):
        return ObservedFinalize(
            FinalizeState.SUCCEEDED, result=result, report=report if paths.report.exists() else None
        )
    if any(r.ending == Ending.RUNNING for r in records):
        return ObservedFinalize(FinalizeState.RUNNING)
    if failed:
        last = failed[-1]
        error = last.error or "it exited 0 without writing result.json"
        return ObservedFinalize(FinalizeState.FAILED, failures=len(failed), last_error=error)
    return ObservedFinalize()


def read_study(storage_url: str, study: str) -> StudySummary | None:
    """The engine's ``study_summary``, as the decision's StudySummary; None before the study exists."""
    try:
        from slsbot_runtime.tuning.summary import study_summary
    except ImportError as exc:  # pragma: no cover - the runtime ships with the control plane
        raise BackendUnavailable(f"the tuning engine is not installed: {exc}") from exc
    try:
        summary = study_summary(storage_url, study)
    except Exception as exc:  # the storage's edge: whatever the database driver raises, said without a password
        raise BackendUnavailable(f"cannot read study {study}: {without_password(str(exc), storage_url)}") from None
    if summary is None:
        return None
    return StudySummary(
        complete=summary.complete,
        pruned=summary.pruned,
        failed=summary.failed,
        running=summary.running,
        best_value=summary.best_value,
        best_params=summary.best_params,
    )


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def without_password(text: str, url: str) -> str:
    """``text`` with ``url``, and its password wherever it appears alone, shown without the password."""
    password = urlsplit(url).password
    text = text.replace(url, redacted(url))
    return text.replace(password, "***") if password else text


def engine_plan_problems(plan: dict[str, Any]) -> list[str]:
    """The engine's refusal of ``plan`` (``slsbot_runtime.tuning.plan.parse_plan``): one ``field: message`` text."""
    try:
        from slsbot_runtime.tuning.plan import parse_plan
    except ImportError:  # pragma: no cover - the runtime ships with the control plane
        return []
    try:
        parse_plan(plan)
    except ConfigError as exc:
        return [str(exc)]
    return []


class LocalTuningRunner:
    """``slsbot.domain.ports.TuningRunner`` for ``slsbot up``: workers and the finalize step are local processes,
    and each run's study is an Optuna journal file in its folder (``journal:///.../study.log``), which every
    worker on this machine reaches."""

    def __init__(
        self,
        processes: TuningProcesses,
        *,
        default_data_dir: str | None = None,
        study_reader: Callable[[str, str], StudySummary | None] | None = None,
    ) -> None:
        self._processes = processes
        self._default_data_dir = default_data_dir
        self._read_study = study_reader or read_study

    def storage_url(self, run: TuningRun) -> str:
        return f"journal://{self._processes.paths(run).journal}"

    def storage_problem(self) -> str | None:
        return None

    def default_data_dir(self) -> str | None:
        return self._default_data_dir

    def plan_problems(self, plan: dict[str, Any]) -> list[str]:
        return engine_plan_problems(plan)

    def start_workers(self, run: TuningRun, count: int) -> None:
        self._processes.start(run, Role.WORKER, count, ["--storage", self.storage_url(run), "--study", run.study])

    def stop_workers(self, run: TuningRun) -> None:
        self._processes.stop(run, Role.WORKER)

    def start_finalize(self, run: TuningRun) -> None:
        out = str(self._processes.paths(run).result_dir)
        self._processes.start(
            run, Role.FINALIZE, 1, ["--storage", self.storage_url(run), "--study", run.study, "--out", out]
        )

    def observe(self, run: TuningRun) -> ObservedTuning:
        paths = self._processes.paths(run)
        workers = observed_workers(self._processes.observe(run, Role.WORKER))
        report = REPORT_ROUTE.format(name=run.experiment, namespace=run.namespace)
        final = observed_finalize(self._processes.observe(run, Role.FINALIZE), paths, report)
        return ObservedTuning(self._read_study(self.storage_url(run), run.study), workers, final)

    def stop_all(self) -> None:
        self._processes.stop_all()

    def retain(self, experiments: Collection[tuple[str, str]]) -> None:
        self._processes.retain(experiments)
