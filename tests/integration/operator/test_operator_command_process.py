"""``slsbot operator`` as a process, as deploy/operator runs it: KUBECONFIG honoured, the liveness endpoint served,
objects reconciled, and SIGTERM a clean exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_the_command_serves_liveness_reconciles_and_stops_cleanly_on_sigterm(kube, kubeconfig, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "SLSBOT_OPERATOR_VALIDATION_RESYNC_SECONDS": "2",
        "SLSBOT_OPERATOR_CONTROL_KEY": kube.control_key,
    }
    log_path = tmp_path / "operator.log"
    with log_path.open("w") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "slsbot.interfaces.cli",
            "operator",
            "--all-namespaces",
            "--liveness",
            f"http://127.0.0.1:{port}/healthz",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )
        try:
            async with httpx.AsyncClient(timeout=2) as client:

                async def alive() -> bool:
                    assert process.returncode is None, log_path.read_text()
                    try:
                        return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
                    except httpx.HTTPError:
                        return False

                await kube.eventually(alive, within=60, what="kopf's liveness endpoint")

            await kube.apply(
                {
                    "apiVersion": "slsbot.io/v1alpha1",
                    "kind": "TradingAccount",
                    "metadata": {"name": "paper"},
                    "spec": {"exchange": "binance", "mode": "paper"},
                }
            )

            async def validated() -> bool:
                body = await kube.get("tradingaccounts", "paper")
                return bool(body) and (body.get("status") or {}).get("phase") == "Ready"

            await kube.eventually(validated, within=30, what="the account validated by the operator process")

            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=30) == 0, log_path.read_text()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    log_text = log_path.read_text()
    assert "kmock-token" not in log_text and kube.control_key not in log_text  # secrets never reach the log


async def test_the_command_refuses_to_start_without_its_control_key(kubeconfig, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLSBOT_")}
    env["KUBECONFIG"] = str(kubeconfig)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "slsbot.interfaces.cli",
        "operator",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        env=env,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert "SLSBOT_OPERATOR_CONTROL_KEY is not set" in err.decode()


@pytest.mark.long  # about 20-30 s: in make test-long, to keep make test under 15 minutes
async def test_the_health_endpoint_answers_only_once_the_slsbot_kinds_are_served(kube, kubeconfig, tmp_path):
    """What the readiness probe of deploy/operator means: kopf has started, and it starts only once the API server
    serves the slsbot CRDs (kopf does not watch for CRDs that appear later)."""
    emulator = kube.emulator
    kinds = {resource: emulator.resources[resource] for resource in list(emulator.resources)}
    kinds = {resource: info for resource, info in kinds.items() if resource.group == "slsbot.io"}
    for resource in kinds:
        del emulator.resources[resource]  # as before `kubectl apply -f crds/`
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "SLSBOT_OPERATOR_CONTROL_KEY": kube.control_key}
    log_path = tmp_path / "operator.log"
    with log_path.open("w") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "slsbot.interfaces.cli", "operator", "--all-namespaces",
            "--liveness", f"http://127.0.0.1:{port}/healthz",
            stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=REPO, env=env,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(timeout=2) as client:

                async def health() -> int | None:
                    assert process.returncode is None, log_path.read_text()
                    try:
                        return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code
                    except httpx.HTTPError:
                        return None

                async def waiting_for_crds() -> bool:
                    assert process.returncode is None, log_path.read_text()
                    return "install the CRDs (kubectl apply -f crds/)" in log_path.read_text()

                await kube.eventually(waiting_for_crds, within=60, what="start-up waiting for the CRDs, saying so")
                text = log_path.read_text()
                assert "strategies.slsbot.io" in text and "tradingaccounts.slsbot.io" in text
                assert await health() is None  # kopf has not started: nothing answers the probes

                for resource, info in kinds.items():
                    emulator.resources[resource] = info
                await kube.eventually(
                    lambda: _equals(health(), 200), within=60, what="the health endpoint, once the CRDs are served"
                )
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()


async def _equals(value, expected) -> bool:
    return await value == expected
