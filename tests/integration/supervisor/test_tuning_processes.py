"""``TuningProcesses`` and ``LocalTuningRunner`` with real processes: a stand-in engine (a module written here that
does what the test tells it through its plan) plays the worker and the finalize commands; the adapter is under test:
how it starts, watches, stops and adopts them, and what it reports."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from slsbot.adapters.tuning_processes import LocalTuningRunner, Role, TuningProcesses
from slsbot.api.strategy import RuntimeSettings
from slsbot.domain.tuning_plan import FinalizeState, StudySummary, TuningRun

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# The stand-in engine: --plan PLAN ...; the plan says what to do: {"behaviour": "exit:N" | "sleep" | "result"}.
ENGINE = """
import json, sys, time
from pathlib import Path
args = sys.argv[1:]
plan = json.loads(Path(args[args.index("--plan") + 1]).read_text())
behaviour = plan["behaviour"]
print("started", " ".join(args), flush=True)
if behaviour.startswith("exit:"):
    code = int(behaviour.split(":")[1])
    if code:
        print("Traceback (most recent call last):", flush=True)
        print("slsbot_runtime.domain.errors.DataError: no candles for BTC/USDT 1h", flush=True)
    sys.exit(code)
if behaviour == "result":
    out = Path(args[args.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.html").write_text("<html></html>")
    (out / "result.json").write_text(json.dumps({"dsr": 0.9, "pbo": 0.1, "proposal": {"params": {"a.b": 1}}}))
    sys.exit(0)
while True:
    time.sleep(0.1)
"""


CREATED: list[TuningProcesses] = []


@pytest.fixture
def engine_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    (tmp_path / "fake_engine.py").write_text(ENGINE)
    yield {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    while CREATED:  # whatever a failed test left running
        CREATED.pop().stop_all()


def processes(root: Path, env: dict[str, str]) -> TuningProcesses:
    created = TuningProcesses(
        root,
        python=[sys.executable],
        environ=env,
        stop_timeout=5,
        modules={Role.WORKER: "fake_engine", Role.FINALIZE: "fake_engine"},
    )
    CREATED.append(created)
    return created


def local(tuning: TuningProcesses) -> LocalTuningRunner:
    """The runner, reading studies from a stand-in: the stand-in engine keeps none."""
    return LocalTuningRunner(tuning, study_reader=no_study)


def no_study(storage: str, study: str) -> StudySummary | None:
    assert storage.startswith("journal:///") and storage.endswith(".log")
    return None


def run(behaviour: str, number: int = 1) -> TuningRun:
    return TuningRun(
        namespace="default",
        experiment="btc-tuning",
        experiment_uid=None,
        run=number,
        study=f"default.btc-tuning.r{number}-0000abcd",
        plan={"behaviour": behaviour},
        parallelism=2,
        runtime=RuntimeSettings(),
    )


def until(check, *, within: float = 30.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {within}s")


def test_workers_that_exit_are_seen_with_how_they_ended(tmp_path: Path, engine_env) -> None:
    runner = local(processes(tmp_path / "tuning", engine_env))
    failing = run("exit:2")
    runner.start_workers(failing, 2)
    observed = until(lambda: (o := runner.observe(failing)).workers.failed == 2 and o)
    assert observed.workers.running == 0 and observed.workers.succeeded == 0
    assert observed.workers.last_error == "exit code 2: DataError: no candles for BTC/USDT 1h"
    log = (tmp_path / "tuning/default/btc-tuning/r1/worker-1.log").read_text()
    assert "--storage journal:///" in log and "--study default.btc-tuning.r1-0000abcd --worker-index 1" in log
    done = run("exit:0", 2)
    runner.start_workers(done, 1)
    assert until(lambda: runner.observe(done).workers.succeeded == 1)


def test_a_finalize_step_is_succeeded_once_its_result_is_there(tmp_path: Path, engine_env) -> None:
    runner = local(processes(tmp_path / "tuning", engine_env))
    broken = run("exit:1")
    runner.start_finalize(broken)
    final = until(lambda: (o := runner.observe(broken).finalize).state is FinalizeState.FAILED and o)
    assert final.failures == 1 and "DataError" in final.last_error
    good = run("result", 2)
    runner.start_finalize(good)
    final = until(lambda: (o := runner.observe(good).finalize).state is FinalizeState.SUCCEEDED and o)
    assert final.result == {"dsr": 0.9, "pbo": 0.1, "proposal": {"params": {"a.b": 1}}}
    assert final.report == "/api/v1/experiments/btc-tuning/report?namespace=default"


def test_stopped_workers_count_as_stopped_and_a_new_supervisor_adopts_running_ones(tmp_path: Path, engine_env) -> None:
    first = processes(tmp_path / "tuning", engine_env)
    runner = local(first)
    busy = run("sleep")
    runner.start_workers(busy, 2)
    assert until(lambda: runner.observe(busy).workers.running == 2)
    records = json.loads((tmp_path / "tuning/default/btc-tuning/r1/processes.json").read_text())
    pids = [r["pid"] for r in records]

    # A supervisor killed without stopping them: the next one adopts them by their command line.
    adopting = local(processes(tmp_path / "tuning", engine_env))
    assert adopting.observe(busy).workers.running == 2
    adopting.stop_workers(busy)
    observed = until(lambda: (o := adopting.observe(busy).workers).running == 0 and o)
    assert observed.failed == 0 and observed.succeeded == 0  # stopped, not failed
    for pid in pids:
        until(lambda pid=pid: not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text())


def test_stop_all_stops_every_run_and_retain_stops_the_runs_of_deleted_experiments(tmp_path: Path, engine_env) -> None:
    tuning = processes(tmp_path / "tuning", engine_env)
    runner = local(tuning)
    kept, gone = run("sleep"), replace(run("sleep"), experiment="old")
    runner.start_workers(kept, 1)
    runner.start_workers(gone, 1)
    runner.retain([("default", "btc-tuning")])
    assert until(lambda: runner.observe(gone).workers.running == 0)
    assert runner.observe(kept).workers.running == 1
    runner.stop_all()
    records = json.loads((tmp_path / "tuning/default/btc-tuning/r1/processes.json").read_text())
    assert [r["ending"] for r in records] == ["stopped"]
