"""The operator against kmock, with the REAL bot runtime playing the pod: the test does what the kubelet would,
it starts ``slsbot runtime --config <the ConfigMap's runtime.yaml>`` and reports the pod ready once ``/readyz``
answers. This checks the contract end to end: the config the operator renders is one the runtime accepts, the
token the operator writes into the control Secret is the one it sends, the operator reads the runtime's own
``/status``, pauses it, and drains it on deletion: the runtime reports ``drained`` and stays up, the operator
deletes its objects only then, and the runtime exits 0 on the SIGTERM the kubelet would send. Between, the
operator's control key rotates: the operator restarts with a new key (the old one as the previous), rewrites the
control Secret, and the same runtime process, whose mounted token file the test refreshes as the kubelet would,
takes the commands signed with the new key.

Two liberties, both the kubelet's business rather than the operator's: the runtime binds 127.0.0.1 instead of
the pod's 0.0.0.0, and its state file goes to a temporary folder instead of the pod's volume.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.fakes.test_secrets import REAL_RUNTIME_NEW_CONTROL_KEY as NEW_CONTROL_KEY

from slsbot.adapters.control_tokens import ControlKey

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "market" / "binance-spot-1h-2024"
RUNTIME = "slsbot-runtime-btc-trend"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def condition(body: dict[str, Any] | None, type: str) -> dict[str, Any]:
    for cond in ((body or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type:
            return cond
    return {}


async def test_the_real_runtime_runs_the_rendered_config_reports_pauses_and_drains(kube, start_operator, tmp_path):
    port = free_port()
    stop_first = await start_operator(runtime_url="http://127.0.0.1:{port}", default_data_dir=str(DATA))
    await kube.apply(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "RiskPolicy",
            "metadata": {"name": "standard-risk"},
            "spec": {"perTrade": {"minPercent": 1, "maxPercent": 10}},
        }
    )
    await kube.apply(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": "paper-binance"},
            "spec": {"exchange": "binance", "mode": "paper", "riskPolicyRef": {"name": "standard-risk"}},
        }
    )
    await kube.apply(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "btc-trend"},
            "spec": {
                "accountRef": {"name": "paper-binance"},
                "symbols": ["BTC/USDT"],
                "timeframe": "1h",
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 5, "slow": 20}}]},
                "marketData": {"source": "replay", "secondsPerCandle": 0.01, "loop": True, "warmupCandles": 30},
                "runtime": {"port": port},
                "onDelete": {"cancelOrders": True, "flatten": True},
            },
        }
    )
    config_map = await kube.eventually(lambda: kube.get("configmaps", RUNTIME), what="the runtime's ConfigMap")
    deployment = await kube.eventually(lambda: kube.get("deployments", RUNTIME), what="the runtime's Deployment")
    # The kubelet's part: the Secret volume the container mounts, holding the token file it names.
    pod = deployment["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "control"]
    (variable,) = [e for e in pod["containers"][0]["env"] if e["name"] == "SLSBOT_RUNTIME_TOKEN_FILE"]
    token_file = tmp_path / "control" / "token"
    token_file.parent.mkdir()

    async def mount_control_secret() -> str:
        """Copy the Secret's token file to the mounted path, whole, as the kubelet's volume update does."""
        secret = await kube.get("secrets", volume["secret"]["secretName"])
        staging = token_file.with_name(".token")
        staging.write_text(base64.b64decode(secret["data"]["token"]).decode())
        os.replace(staging, token_file)
        return token_file.read_text()

    assert variable["value"] == "/var/run/slsbot/control/token"
    assert await mount_control_secret() == f"{kube.runtime_token('btc-trend')}\n"
    token = kube.runtime_token("btc-trend")

    # The kubelet's part: run the container's command on the mounted config.
    config = yaml.safe_load(config_map["data"]["runtime.yaml"])
    assert config["marketData"]["dataDir"] == str(DATA)
    config["server"]["host"] = "127.0.0.1"
    config_file = tmp_path / "runtime.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log = (tmp_path / "runtime.log").open("w")
    state = tmp_path / "state.db"
    command = ["-m", "slsbot.interfaces.cli", "runtime", "--config", str(config_file), "--state", str(state)]
    env = {**os.environ, "SLSBOT_RUNTIME_TOKEN_FILE": str(token_file)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=REPO, env=env
    )
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2, headers=headers) as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    assert process.returncode is None, (tmp_path / "runtime.log").read_text()
                    return False

            await kube.eventually(ready, within=60, what="the runtime's /readyz")
            await kube.mark_runtime_ready("btc-trend")

            running = await kube.eventually(
                lambda: _ready_strategy(kube), within=30, what="Ready=True from the real runtime's /status"
            )
            assert running["status"]["phase"] == "Running"
            assert running["status"]["equity"] > 0 and running["status"]["lastHeartbeat"]

            # The control key rotates: the operator restarts with the new key, the old one valid for an hour.
            await stop_first()
            await start_operator(
                runtime_url="http://127.0.0.1:{port}",
                default_data_dir=str(DATA),
                control_key=NEW_CONTROL_KEY,
                control_key_previous=kube.control_key,
                control_key_grace_until=datetime.now(UTC) + timedelta(hours=1),
            )
            new_token = ControlKey(NEW_CONTROL_KEY, source="test").token_for("trading", "btc-trend")

            async def rewritten() -> bool:
                secret = await kube.get("secrets", volume["secret"]["secretName"])
                return base64.b64decode(secret["data"]["token"]).decode().startswith(new_token)

            await kube.eventually(rewritten, within=30, what="the control Secret rewritten with the new token")
            mounted = await mount_control_secret()  # the kubelet refreshes the volume
            assert mounted.startswith(f"{new_token}\n{token} ")  # the old token stays until the grace ends
            client.headers["Authorization"] = f"Bearer {new_token}"
            assert (await client.get("/status")).status_code == 200  # the same process, read again
            template = (await kube.get("deployments", RUNTIME))["spec"]["template"]
            assert template == deployment["spec"]["template"]  # no rollout: the pod was never replaced

            await kube.patch("strategies", "btc-trend", {"spec": {"paused": True}})

            async def runtime_paused() -> bool:
                return (await client.get("/status")).json()["paused"] is True

            await kube.eventually(runtime_paused, within=30, what="the runtime paused through POST /pause")
            await kube.eventually(
                lambda: _phase(kube, "Paused"), within=30, what="phase Paused, as the runtime reports it"
            )

            await kube.delete("strategies", "btc-trend")

            async def drained() -> bool:
                return (await client.get("/status")).json()["phase"] == "drained"

            await kube.eventually(drained, within=60, what="the runtime reporting drained")
            assert process.returncode is None  # a drained runtime stays up until it is stopped
            await kube.eventually(
                lambda: _deployment_gone(kube), within=30, what="the Deployment deleted once the drain completed"
            )
            final = (await client.get("/status")).json()
            assert final["open_orders"] == 0 and final["open_positions"] == 0
            process.send_signal(signal.SIGTERM)  # the kubelet's part once the Deployment is gone
            exit_code = await asyncio.wait_for(process.wait(), timeout=60)
            assert exit_code == 0, (tmp_path / "runtime.log").read_text()
        await kube.eventually(lambda: _gone(kube), within=30, what="the Strategy gone after drain and delete")
        reasons = await kube.event_reasons("btc-trend")
        assert "Draining" in reasons and "Deleting" in reasons and "DeletedWithoutDrain" not in reasons
        assert await kube.get("secrets", "slsbot-runtime-btc-trend-control") is None
        runtime_log = (tmp_path / "runtime.log").read_text()
        assert "shutdown" in runtime_log.lower() and "drained" in runtime_log
        assert token not in runtime_log and new_token not in runtime_log
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()


async def _ready_strategy(kube: Any) -> dict[str, Any] | None:
    body = await kube.get("strategies", "btc-trend")
    return body if condition(body, "Ready").get("status") == "True" else None


async def _phase(kube: Any, phase: str) -> bool:
    body = await kube.get("strategies", "btc-trend")
    return bool(body) and (body.get("status") or {}).get("phase") == phase


async def _deployment_gone(kube: Any) -> bool:
    return await kube.get("deployments", RUNTIME) is None


async def _gone(kube: Any) -> bool:
    return await kube.get("strategies", "btc-trend") is None
