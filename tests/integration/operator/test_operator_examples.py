"""Every manifest in examples/cluster, applied as written, reconciles: the operator makes a runtime for each Strategy
whose rendered config the REAL runtime accepts and runs, and no object ends up invalid or waiting.

kmock stands in for the API server; the test plays the kubelet for each Strategy as test_operator_real_runtime does
(it runs ``slsbot runtime`` on the ConfigMap's runtime.yaml), with the candles of data/market as the image's.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from slsbot.api import KINDS

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long, pytest.mark.timeout(360)]  # a minute

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "cluster"
DATA = REPO / "data" / "market" / "binance-spot-1h-2024"
PLURALS = {cls.kind_info.kind: cls.kind_info.plural for cls in KINDS.values()}


def _documents() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def _ready(body: dict[str, Any] | None) -> dict[str, Any]:
    return next((c for c in ((body or {}).get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})


async def test_every_cluster_example_reconciles_into_a_runtime_that_runs(kube, cluster, start_operator, tmp_path):
    documents = _documents()
    namespace = next(doc["metadata"]["name"] for doc in documents if doc["kind"] == "Namespace")
    cluster.objects["v1/namespaces", None, namespace] = {"metadata": {"name": namespace}}
    await start_operator(runtime_url="http://127.0.0.1:{port}", default_data_dir=str(DATA))
    for doc in documents:
        if doc["kind"] == "Namespace":
            continue
        status, body = await kube._call("POST", kube.path(PLURALS[doc["kind"]], namespace=namespace), doc)
        assert status < 300, (doc["metadata"]["name"], body)

    async def get(plural: str, name: str) -> dict[str, Any] | None:
        status, body = await kube._call("GET", kube.path(plural, name, namespace=namespace))
        return body if status == 200 else None

    strategies = [doc["metadata"]["name"] for doc in documents if doc["kind"] == "Strategy"]
    assert len(strategies) >= 3
    configs = {}
    for name in strategies:
        config_map = await kube.eventually(
            lambda n=name: get("configmaps", f"slsbot-runtime-{n}"), within=60, what=f"{name}'s ConfigMap"
        )
        assert await kube.eventually(lambda n=name: get("deployments", f"slsbot-runtime-{n}"), what=f"{name} runs")
        configs[name] = yaml.safe_load(config_map["data"]["runtime.yaml"])

    # Nothing the examples declare is refused or left waiting.
    for doc in documents:
        if doc["kind"] in ("Namespace", "Strategy"):
            continue
        body = await kube.eventually(
            lambda d=doc: _with_status(get(PLURALS[d["kind"]], d["metadata"]["name"])),
            what=f"{doc['kind']} {doc['metadata']['name']} status",
        )
        assert _ready(body).get("reason") not in ("InvalidSpec", "WaitingForDependency"), (doc["kind"], body)
    for name in strategies:
        body = await get("strategies", name)
        assert body["status"]["phase"] not in ("Failed", "Pending"), (name, body["status"])

    # The kubelet's part: the real runtime on each rendered config, on a free port and a temporary state file.
    processes = []
    try:
        for name, config in configs.items():
            config["server"].update(host="127.0.0.1", port=0)
            path = tmp_path / f"{name}.yaml"
            path.write_text(yaml.safe_dump(config))
            log = (tmp_path / f"{name}.log").open("w")
            command = ["-m", "slsbot.interfaces.cli", "runtime", "--config", str(path)]
            command += ["--state", str(tmp_path / f"{name}.db"), "--insecure-control"]
            env = {k: v for k, v in os.environ.items() if not k.startswith("SLSBOT_")}
            process = await asyncio.create_subprocess_exec(
                sys.executable, *command, stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=REPO, env=env
            )
            processes.append((name, process, tmp_path / f"{name}.log"))
        for name, process, log_path in processes:
            status = await kube.eventually(
                lambda p=process, lp=log_path: _trading(p, lp), within=90, what=f"{name}'s runtime trading"
            )
            assert status["error"] is None, (name, status)
        # a Strategy with spec.ml: its models train in the runtime's training process and join the vote
        with_models = [
            name
            for name, config in configs.items()
            if any(m.get("role", "signal") == "signal" for m in (config.get("ml") or {}).get("models", []))
        ]
        assert with_models == ["eth-trend"]
        log_path = tmp_path / "eth-trend.log"
        models = await kube.eventually(
            lambda: _models_in_vote(log_path), within=150, what="eth-trend's models trained and in the vote"
        )
        assert set(models) == {"logit", "gbm"}
    finally:
        for _, process, _ in processes:
            if process.returncode is None:
                process.terminate()
                await process.wait()


async def _with_status(fetch: Any) -> dict[str, Any] | None:
    body = await fetch
    return body if body and _ready(body) else None


async def _trading(process: Any, log_path: Path) -> dict[str, Any] | None:
    """The runtime's /status once it warms up or trades; fails at once if the process died."""
    text = await asyncio.to_thread(log_path.read_text)
    assert process.returncode is None, text[-2000:]
    ports = [line.rsplit(":", 1)[-1] for line in text.splitlines() if "listening on http://" in line]
    if not ports:
        return None
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
        try:
            status = (await client.get(f"http://127.0.0.1:{ports[0]}/status")).json()
        except httpx.HTTPError:
            return None
    return status if status["phase"] in ("warming_up", "running") else None


async def _models_in_vote(log_path: Path) -> dict[str, Any] | None:
    """The runtime's /status models once every model has a version in the vote."""
    text = await asyncio.to_thread(log_path.read_text)
    port = next(line.rsplit(":", 1)[-1] for line in text.splitlines() if "listening on http://" in line)
    async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
        try:
            models = (await client.get(f"http://127.0.0.1:{port}/status")).json().get("models") or {}
        except httpx.HTTPError:
            return None
    done = models and all(m["version"] and m["in_vote"] for m in models.values())
    return models if done else None
