"""A tuning Experiment under a real ``slsbot up``: real worker processes (the engine's ``slsbot_runtime.tuning``
worker) on the repository's recorded candles, stopped with the supervisor and resumed on the same study when it
starts again; the finalize step's proposal, DSR and PBO in the status, and the report through the admin API."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path

from slsbot_runtime.tuning.summary import study_summary

pytestmark = [
    pytest.mark.long,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        importlib.util.find_spec("slsbot_runtime.tuning") is None,
        reason="needs the tuning engine (slsbot_runtime.tuning: its worker, finalize and study_summary), which "
        "this branch does not have yet",
    ),
]

REPO = Path(__file__).resolve().parents[3]
VIEWER_TOKEN = test_secrets.SUPERVISOR_VIEWER_TOKEN
MAX_TRIALS = 200

EXPERIMENT = """\
apiVersion: slsbot.io/v1alpha1
kind: Experiment
metadata: {name: btc-tuning}
spec:
  type: tuning
  strategyRef: {name: btc-trend}
  searchSpace:
    - {name: sma.fast, type: int, low: 5, high: 20}
    - {name: sma.slow, type: int, low: 30, high: 80, step: 10}
  budget: {maxTrials: %(trials)d, maxDuration: 30m, parallelism: 2}
  schedule:
    walkForward: {trainDays: 60, testDays: 30, folds: 2}
"""


def experiment_status(state_dir: Path) -> dict[str, Any]:
    """The Experiment's status as the supervisor stored it (read-only)."""
    database = sqlite3.connect(f"file:{state_dir / 'supervisor.db'}?mode=ro", uri=True, timeout=5)
    try:
        row = database.execute(
            "SELECT status FROM stored_object WHERE kind = 'Experiment' AND name = 'btc-tuning'"
        ).fetchone()
    except sqlite3.OperationalError:
        return {}
    finally:
        database.close()
    return (json.loads(row[0]) if row and row[0] else None) or {}


def finished(status: dict[str, Any]) -> int:
    trials = (status.get("tuning") or {}).get("trials") or {}
    return sum(int(trials.get(key) or 0) for key in ("complete", "pruned", "failed"))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def test_a_tuning_run_survives_a_supervisor_restart_and_completes_with_its_report(tmp_path: Path, kit) -> None:
    folder = kit.write_manifests(tmp_path / "manifests")
    (folder / "30-eth-trend.yaml").unlink()  # one runtime is enough beside the workers
    (folder / "40-experiment.yaml").write_text(EXPERIMENT % {"trials": MAX_TRIALS})
    state = tmp_path / "state"
    env = kit.environment(SLSBOT_VIEWER_TOKEN=VIEWER_TOKEN)

    first = kit.start(folder, state, env)
    try:
        started = kit.wait_for(
            lambda: (s := experiment_status(state)).get("phase") == "Tuning" and s,
            timeout=60,
            what="the run to start",
        )
        study = started["tuning"]["study"]
        journal = state / "tuning" / "default" / "btc-tuning" / "r1" / "study.log"

        def finished_in_study() -> int:  # the study itself: the status is written only when the run is looked at
            summary = study_summary(f"journal://{journal}", study) if journal.exists() else None
            return summary.finished if summary is not None else 0

        kit.wait_for(lambda: finished_in_study() >= 3, timeout=240, interval=0.2, what="three finished trials")
    finally:
        assert first.stop(signal.SIGINT) == 0
    stopped_at = finished_in_study()
    assert stopped_at < MAX_TRIALS, "the run finished before the restart: nothing to resume"
    records = json.loads((state / "tuning" / "default" / "btc-tuning" / "r1" / "processes.json").read_text())
    workers = [r for r in records if r["role"] == "worker"]
    assert len(workers) >= 2 and not [r["pid"] for r in workers if pid_alive(r["pid"])]  # stopped with slsbot up

    second = kit.start(folder, state, env)
    try:
        done = kit.wait_for(
            lambda: (s := experiment_status(state)).get("phase") in ("Completed", "Failed") and s,
            timeout=420,
            interval=1.0,
            what="the run to complete",
        )
        assert done["phase"] == "Completed", done
        tuning = done["tuning"]
        assert tuning["study"] == study and tuning["run"] == 1  # the same study, resumed
        assert finished(done) == MAX_TRIALS
        assert finished(done) >= stopped_at  # no finished trial lost
        proposal = tuning["proposal"]
        assert set(proposal["params"]) == {"sma.fast", "sma.slow"}
        assert proposal["deflatedSharpe"] is not None and proposal["pbo"] is not None
        assert proposal["reason"].startswith(("accepted", "rejected"))
        assert tuning["bestValue"] is not None and tuning["report"].startswith("/api/v1/experiments/btc-tuning/report")
        with second.client(VIEWER_TOKEN) as client:
            page = client.get("/api/v1/experiments/btc-tuning/report")
            assert page.status_code == 200 and "<img" in page.text
            picture = client.get("/api/v1/experiments/btc-tuning/report/history.png")
            assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
            events = client.get("/api/v1/events", params={"name": "btc-tuning"}).json()
        reasons = [event["reason"] for event in events]
        assert {"TuningStarted", "Finalizing", "TuningCompleted"} <= set(reasons), reasons
        assert "ProposalAccepted" in reasons or "ProposalRejected" in reasons
    finally:
        assert second.stop(signal.SIGINT) == 0


def test_the_local_tuning_example_runs_as_written(tmp_path: Path, kit) -> None:
    """examples/local/40-experiment-btc-tuning.yaml, with the policy, account and Strategy it needs, byte for byte
    (its Strategy's dataDir is relative to the folder: the copy keeps the repository's layout around it)."""
    folder = tmp_path / "examples" / "local"
    folder.mkdir(parents=True)
    (tmp_path / "data").symlink_to(REPO / "data")
    for name in (
        "10-riskpolicy-local-risk.yaml",
        "20-tradingaccount-paper-binance.yaml",
        "30-strategy-btc-trend.yaml",
        "40-experiment-btc-tuning.yaml",
    ):
        (folder / name).write_bytes((REPO / "examples" / "local" / name).read_bytes())
    example = (folder / "40-experiment-btc-tuning.yaml").read_text()
    max_trials = int(example.split("maxTrials:")[1].split()[0])
    state = tmp_path / "state"
    running = kit.start(folder, state, kit.environment(SLSBOT_VIEWER_TOKEN=VIEWER_TOKEN))
    try:
        done = kit.wait_for(
            lambda: (s := experiment_status(state)).get("phase") in ("Completed", "Failed") and s,
            timeout=480,
            interval=1.0,
            what="the example's run to complete",
        )
        assert done["phase"] == "Completed", done
        assert finished(done) == max_trials
        assert done["tuning"]["proposal"]["deflatedSharpe"] is not None
        with running.client(VIEWER_TOKEN) as client:
            assert client.get("/api/v1/experiments/btc-tuning/report").status_code == 200
    finally:
        assert running.stop(signal.SIGINT) == 0
    # what `make run` shows on its console: the run's course and its proposal's verdict, as the Events give them
    console = running.log_path.read_text()
    verdict = "ProposalAccepted" if done["tuning"]["proposal"]["reason"].startswith("accepted") else "ProposalRejected"
    for reason in ("TuningStarted", "Finalizing", verdict, "TuningCompleted"):
        assert f"experiment default/btc-tuning: {reason}: " in console, reason


def stored(state_dir: Path, kind: str, name: str) -> dict[str, Any] | None:
    database = sqlite3.connect(f"file:{state_dir / 'supervisor.db'}?mode=ro", uri=True, timeout=5)
    try:
        row = database.execute(
            "SELECT document FROM stored_object WHERE kind = ? AND name = ?", (kind, name)
        ).fetchone()
    finally:
        database.close()
    return json.loads(row[0]) if row else None


def test_an_accepted_proposal_with_promotion_ab_becomes_a_candidate_and_an_ab_experiment(
    tmp_path: Path, kit, secret_scan
) -> None:
    folder = kit.write_manifests(tmp_path / "manifests")
    (folder / "30-eth-trend.yaml").unlink()
    promoted = (EXPERIMENT % {"trials": 6}).replace(
        "  budget:", "  promotion: ab\n  acceptance: {minDeflatedSharpe: 0, maxPbo: 1}\n  budget:"
    )
    (folder / "40-experiment.yaml").write_text(promoted)
    state = tmp_path / "state"
    tuned_before = (folder / "30-btc-trend.yaml").read_text()
    running = kit.start(folder, state, kit.environment())
    secret_scan.register(running.token, name="generated admin token")
    try:
        done = kit.wait_for(
            lambda: (s := experiment_status(state)).get("tuning", {}).get("rollout") and s,
            timeout=300,
            interval=1.0,
            what="the promotion",
        )
        assert done["tuning"]["proposal"]["accepted"]
        candidate = stored(state, "Strategy", "btc-trend-btc-tuning-r1")
        rollout = stored(state, "Experiment", "btc-tuning-r1-ab")
        assert candidate is not None and rollout is not None
        params = candidate["spec"]["ensemble"]["members"][0]["params"]
        proposal = done["tuning"]["proposal"]["params"]
        assert (params["fast"], params["slow"]) == (proposal["sma.fast"], proposal["sma.slow"])
        assert rollout["spec"]["type"] == "ab" and rollout["spec"]["strategyRef"] == {"name": "btc-trend"}
        tuned = stored(state, "Strategy", "btc-trend")
        assert tuned["spec"]["ensemble"]["members"][0]["params"] == {"fast": 5, "slow": 15}  # never rewritten
        assert (folder / "30-btc-trend.yaml").read_text() == tuned_before
    finally:
        assert running.stop(signal.SIGINT) == 0
