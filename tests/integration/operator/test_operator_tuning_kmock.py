"""A tuning Experiment under the real operator against kmock: the operator creates the run's storage Secret, plan
ConfigMap and indexed Job, all owned by the Experiment; the test plays the Job (kmock runs no pods) by running the
Job's own worker command on 127.0.0.1 against the SQLite study storage it gave the operator as
SLSBOT_OPERATOR_STUDY_STORAGE, marks the Job complete, and the operator finalizes in its own process and reports the
proposal, its DSR and PBO."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        importlib.util.find_spec("slsbot_runtime.tuning") is None,
        reason="needs the tuning engine (slsbot_runtime.tuning: its worker, finalize and study_summary), which "
        "this branch does not have yet",
    ),
]

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "market" / "binance-spot-1h-2024"
JOB = "slsbot-tune-btc-tuning-r1"
MAX_TRIALS = 6


def objects(port: int) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "slsbot.io/v1alpha1", "kind": "RiskPolicy", "metadata": {"name": "standard-risk"}, "spec": {}},
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": "paper-binance"},
            "spec": {"exchange": "binance", "mode": "paper", "riskPolicyRef": {"name": "standard-risk"}},
        },
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "btc-trend"},
            "spec": {
                "accountRef": {"name": "paper-binance"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]},
                "marketData": {"source": "replay", "dataDir": str(DATA)},
                "runtime": {"port": port},
            },
        },
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": "btc-tuning"},
            "spec": {
                "type": "tuning",
                "strategyRef": {"name": "btc-trend"},
                "searchSpace": [
                    {"name": "sma.fast", "type": "int", "low": 5, "high": 20},
                    {"name": "sma.slow", "type": "int", "low": 30, "high": 80, "step": 10},
                ],
                "budget": {"maxTrials": MAX_TRIALS, "maxDuration": "30m", "parallelism": 2},
                "schedule": {"walkForward": {"trainDays": 60, "testDays": 30, "folds": 2}},
            },
        },
    ]


def worker_command(job: dict[str, Any], plan: Path, storage: str, index: int) -> list[str]:
    """The Job's container command as the kubelet would run it: its variables expanded, its plan at ``plan``."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "slsbot_runtime.tuning.worker"]
    values = {
        "$(SLSBOT_STUDY_STORAGE)": storage,
        "$(JOB_COMPLETION_INDEX)": str(index),
        "/etc/slsbot-tuning/plan.json": str(plan),
    }
    return [sys.executable, "-m", "slsbot_runtime.tuning.worker", *(values.get(a, a) for a in container["args"])]


def start_pod(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.long  # about 20-30 s: in make test-long, to keep make test under 15 minutes
async def test_the_operator_runs_a_tuning_experiment_as_a_job_and_finalizes_it(
    kube, start_operator, runtime_stub, tmp_path: Path
):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # The database exists before anyone opens it, as a cluster's PostgreSQL does: its schema is made once here (two
    # first openers of an empty SQLite file, say the operator looking and a worker starting, can collide making it).
    optuna.storages.RDBStorage(storage)
    await start_operator(
        runtime_url="http://127.0.0.1:{port}",
        study_storage=storage,
        tuning_dir=tmp_path / "operator-tuning",
        experiment_interval_seconds=1.0,
    )
    for document in objects(runtime_stub.port):
        await kube.apply(document)

    job = await kube.eventually(lambda: kube.get("jobs", JOB), what="the run's Job", within=30)
    experiment = await kube.get("experiments", "btc-tuning")
    owner = {"apiVersion": "slsbot.io/v1alpha1", "kind": "Experiment", "name": "btc-tuning"}
    spec = job["spec"]
    assert (spec["parallelism"], spec["completions"], spec["completionMode"]) == (2, 2, "Indexed")
    assert spec["backoffLimit"] == 2
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/slsbot/runtime:0.1.0"
    env = {item["name"]: item for item in container["env"]}
    assert env["SLSBOT_STUDY_STORAGE"]["valueFrom"]["secretKeyRef"] == {
        "name": "slsbot-tune-btc-tuning-storage",
        "key": "url",
    }
    assert storage not in json.dumps(job)  # the URL (a password, on a cluster) is only in the Secret
    secret = await kube.get("secrets", "slsbot-tune-btc-tuning-storage")
    assert base64.b64decode(secret["data"]["url"]).decode() == storage and secret["immutable"] is True
    config_map = await kube.get("configmaps", JOB)
    plan = json.loads(config_map["data"]["plan.json"])
    assert plan["maxTrials"] == MAX_TRIALS and plan["dataDir"] == str(DATA)
    for body in (job, secret, config_map):
        reference = body["metadata"]["ownerReferences"][0]
        assert {k: reference[k] for k in owner} == owner and reference["uid"] == experiment["metadata"]["uid"]
        assert reference["controller"] is True

    # Play the Job: its two indexed pods, as the kubelet would run them, on the study storage the operator names.
    study = container["args"][container["args"].index("--study") + 1]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(config_map["data"]["plan.json"])
    await kube.patch("jobs", JOB, {"status": {"active": 2}}, subresource="status")
    workers = [start_pod(worker_command(job, plan_file, storage, index)) for index in range(2)]
    outputs = await asyncio.gather(*(asyncio.to_thread(w.communicate, timeout=180) for w in workers))
    assert [w.returncode for w in workers] == [0, 0], [o[0].decode()[-2000:] for o in outputs]
    complete = {
        "type": "Complete",
        "status": "True",
        "reason": "CompletionsReached",
        "message": "Reached expected number of succeeded pods",
    }
    await kube.patch(
        "jobs", JOB, {"status": {"active": 0, "succeeded": 2, "conditions": [complete]}}, subresource="status"
    )

    async def completed() -> dict[str, Any] | None:
        body = await kube.get("experiments", "btc-tuning")
        return body if (body or {}).get("status", {}).get("phase") in ("Completed", "Failed") else None

    done = await kube.eventually(completed, within=180, what="the operator to finalize the run")
    status = done["status"]
    assert status["phase"] == "Completed", status
    tuning = status["tuning"]
    assert tuning["study"] == study and tuning["run"] == 1
    trials = tuning["trials"]
    assert trials["complete"] + trials["pruned"] + trials["failed"] == MAX_TRIALS
    proposal = tuning["proposal"]
    assert set(proposal["params"]) == {"sma.fast", "sma.slow"}
    assert proposal["deflatedSharpe"] is not None and proposal["pbo"] is not None
    report = Path(tuning["report"].removesuffix(" (in the operator's pod)"))
    assert await asyncio.to_thread(report.is_file) and report.is_relative_to(tmp_path / "operator-tuning")
    assert storage not in json.dumps(status)

    async def reported() -> list[str]:
        reasons = await kube.event_reasons("btc-tuning")
        judged = "ProposalAccepted" in reasons or "ProposalRejected" in reasons
        return reasons if "TuningCompleted" in reasons and judged else []

    reasons = await kube.eventually(reported, what="the completion and verdict events")
    assert "TuningStarted" in reasons and "Finalizing" in reasons
    assert not any(storage in event.get("message", "") for event in await kube.events("btc-tuning"))
