"""The operator at scale: ``slsbot operator`` as a child process against the Kubernetes API emulator of the tests
(kmock, ``slsbot.testing.kube_emulator``, served by this process on 127.0.0.1), with ``STRATEGIES`` Strategies.

One RiskPolicy and one paper TradingAccount are applied, then ``STRATEGIES`` Strategies as fast as the emulator
takes them. A Strategy counts as **reconciled** once its runtime Deployment exists and its status was written for
its current spec (``status.observedGeneration == metadata.generation``). The emulator runs no Deployment
controller, so the runtimes stay in ``Starting`` and the operator keeps looking at them every few seconds, as it
would while a cluster pulls images. Figures:

* ``operator_seconds_to_all_reconciled``: from the first Strategy sent until every one is reconciled;
* ``operator_peak_rss_mb``: the operator process's peak resident memory (``VmHWM`` in ``/proc/<pid>/status``);
* ``operator_dependency_lists``: how many times the operator listed TradingAccounts or RiskPolicies meanwhile
  (kopf's first listing of each kind included), which a Strategy pass must not need.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from slsbot.adapters.kubernetes.manifests import runtime_object_name
from slsbot.bench.fleet import proc_kib
from slsbot.testing.kube_emulator import ClusterEmulator, emulated_cluster, write_kubeconfig
from slsbot_runtime.bench import report

STRATEGIES = 1000
NAMESPACE = "bench"
DEADLINE_S = float(os.environ.get("SLSBOT_BENCH_DEADLINE", 600))
APPLY_CONCURRENCY = 20
CONTROL_KEY = "bench-operator-control-key-5d1c7a9e3b8f40e2a6c4"  # a throwaway key for a local benchmark
TARGETS = {
    "operator_seconds_to_all_reconciled": ("<=", 60.0),
    "operator_peak_rss_mb": ("<=", 300.0),
}
DEPENDENCIES = ("tradingaccounts", "riskpolicies")


def _documents(count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    group = "slsbot.io/v1alpha1"
    meta = {"namespace": NAMESPACE}
    setup = [
        {"apiVersion": group, "kind": "RiskPolicy", "metadata": {"name": "bench-risk", **meta}, "spec": {}},
        {
            "apiVersion": group,
            "kind": "TradingAccount",
            "metadata": {"name": "paper-binance", **meta},
            "spec": {"exchange": "binance", "mode": "paper", "riskPolicyRef": {"name": "bench-risk"}},
        },
    ]
    strategies = [
        {
            "apiVersion": group,
            "kind": "Strategy",
            "metadata": {"name": f"bot-{index:04d}", **meta},
            "spec": {
                "accountRef": {"name": "paper-binance"},
                # the Strategies of one account may claim 100% of it in sum: each takes an equal share
                "allocationPercent": 100 / count,
                "symbols": ["BTC/USDT"],
                "timeframe": "1h",
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]},
            },
        }
        for index in range(count)
    ]
    return setup, strategies


async def _post(emulator: ClusterEmulator, document: dict[str, Any]) -> None:
    plural = {"RiskPolicy": "riskpolicies", "TradingAccount": "tradingaccounts", "Strategy": "strategies"}
    path = f"/apis/slsbot.io/v1alpha1/namespaces/{NAMESPACE}/{plural[document['kind']]}"
    async with emulator.request("POST", path, json=document) as response:
        if response.status >= 300:
            raise RuntimeError(f"POST {path} answered {response.status}: {await response.text()}")


def _unreconciled(emulator: ClusterEmulator, names: list[str]) -> int:
    """How many of ``names`` lack their Deployment or a status written for their current generation."""
    strategies: dict[str, dict[str, Any]] = {}
    deployments: set[str] = set()
    for (resource, namespace, name), stored in emulator.objects.items():
        if namespace != NAMESPACE or stored.deleted:
            continue
        if resource.plural == "strategies":
            strategies[name] = stored.raw
        elif resource.plural == "deployments":
            deployments.add(name)
    waiting = 0
    for name in names:
        body = strategies.get(name) or {}
        generation = (body.get("metadata") or {}).get("generation")
        observed = (body.get("status") or {}).get("observedGeneration")
        if generation is None or observed != generation or runtime_object_name(name) not in deployments:
            waiting += 1
    return waiting


def _dependency_lists(emulator: ClusterEmulator) -> int:
    return sum(emulator.calls[plural, "list"] for plural in DEPENDENCIES)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _until(check: Any, *, within: float, what: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if process.returncode is not None:
            raise RuntimeError(f"the operator exited with {process.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {within:.0f}s: {what}")
        await asyncio.sleep(0.2)


async def bench_operator(count: int = STRATEGIES) -> None:
    setup, strategies = _documents(count)
    names = [document["metadata"]["name"] for document in strategies]
    with tempfile.TemporaryDirectory(prefix="slsbot-bench-operator-") as scratch:
        root = Path(scratch)
        async with emulated_cluster([NAMESPACE]) as emulator:
            emulator.remember_requests = False
            kubeconfig = write_kubeconfig(root / "kubeconfig.yaml", emulator)
            liveness = f"http://127.0.0.1:{_free_port()}/healthz"
            env = {key: value for key, value in os.environ.items() if not key.startswith("SLSBOT_")}
            env["SLSBOT_OPERATOR_CONTROL_KEY"] = CONTROL_KEY
            command = [sys.executable, "-m", "slsbot.interfaces.cli", "operator", "--all-namespaces"]
            command += ["--kubeconfig", str(kubeconfig), "--liveness", liveness]
            with (root / "operator.log").open("wb") as log_file:
                operator = await asyncio.create_subprocess_exec(
                    *command, stdout=log_file, stderr=subprocess.STDOUT, env=env
                )
            try:
                await _measure(emulator, operator, liveness, setup, strategies, names)
            except BaseException:
                print(f"# the operator's log ends:\n{(root / 'operator.log').read_text()[-3000:]}", file=sys.stderr)
                raise
            finally:
                operator.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(operator.wait(), 60)
                except TimeoutError:
                    operator.kill()
                    await operator.wait()


async def _measure(
    emulator: ClusterEmulator,
    operator: asyncio.subprocess.Process,
    liveness: str,
    setup: list[dict[str, Any]],
    strategies: list[dict[str, Any]],
    names: list[str],
) -> None:
    async def live() -> bool:
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
                return (await client.get(liveness)).status_code == 200
        except httpx.HTTPError:
            return False

    await _until(live, within=120, what="the operator's liveness endpoint", process=operator)
    for document in setup:
        await _post(emulator, document)
    started = time.perf_counter()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for document in strategies:
        queue.put_nowait(document)

    async def sender() -> None:
        while not queue.empty():
            await _post(emulator, queue.get_nowait())

    await asyncio.gather(*(sender() for _ in range(APPLY_CONCURRENCY)))
    applied = time.perf_counter() - started

    last_report = [time.monotonic()]

    async def reconciled() -> bool:
        waiting = _unreconciled(emulator, names)
        if os.environ.get("SLSBOT_BENCH_VERBOSE") and time.monotonic() - last_report[0] > 5:
            last_report[0] = time.monotonic()
            print(f"# {time.perf_counter() - started:.0f}s: {waiting} not reconciled yet", file=sys.stderr, flush=True)
        return waiting == 0

    await _until(reconciled, within=DEADLINE_S, what=f"all {len(names)} Strategies reconciled", process=operator)
    elapsed = time.perf_counter() - started
    peak = proc_kib(operator.pid, "VmHWM") / 1024
    print(
        f"# operator: {len(names)} Strategies (one account, one policy) applied in {applied:.1f}s to kmock; "
        "reconciled = runtime Deployment created and status.observedGeneration == metadata.generation",
        flush=True,
    )
    report("operator_seconds_to_all_reconciled", elapsed, TARGETS["operator_seconds_to_all_reconciled"])
    report("operator_peak_rss_mb", peak, TARGETS["operator_peak_rss_mb"])
    report("operator_dependency_lists", float(_dependency_lists(emulator)))


def main() -> int:
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    asyncio.run(bench_operator(int(sys.argv[1]) if len(sys.argv) > 1 else STRATEGIES))
    print(f"# load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
