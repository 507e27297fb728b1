"""The control plane's ``RuntimeHttpClient.set_allocation`` and ``.performance`` against a real runtime process."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.domain.errors import InvalidSpecError, RuntimeUnreachable
from slsbot.domain.runtime_performance import AllocationSetting

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_client_sets_the_allocation_reads_the_performance_and_converts_every_error(
    kit: Any, btc_slice_dir: Path, tmp_path: Path
) -> None:
    config = kit.runtime_config(btc_slice_dir, secondsPerCandle=0.004, loop=True)
    config["allocationPercent"] = 60
    runtime = kit.start(kit.write_config(tmp_path, config), tmp_path / "state.db")
    kit.wait_for(lambda: runtime.status()["trade_count"] >= 2, what="trades")
    client = RuntimeHttpClient(timeout=2.0)
    try:
        url, token = runtime.base_url, kit.token
        with pytest.raises(InvalidSpecError, match=r"refused: percent: 150 is outside 0\.\.100"):
            client.set_allocation(url, percent=150, token=token)
        assert client.set_allocation(url, percent=20, token=token) == AllocationSetting(20.0, "controller")
        assert runtime.status()["allocation"]["percent"] == 20

        kit.wait_for(lambda: len(client.performance(url, since=0, token=token).periods) > 50, what="periods")
        report = client.performance(url, since=0, token=token)
        assert report.allocation_percent == 20 and report.breaker_level == 0 and report.closed_trades >= 0
        assert report.last_candle_ts == report.periods[-1].ts
        assert report.periods[0].return_on_allocated is None  # nothing before the first candle
        assert all(p.allocated_capital > 0 for p in report.periods)
        newer = client.performance(url, since=report.last_candle_ts, token=token)
        assert all(p.ts > report.last_candle_ts for p in newer.periods)

        with pytest.raises(RuntimeUnreachable, match="answered 401") as refused:
            client.set_allocation(url, percent=10, token="not-the-runtime-token-at-all")
        assert "not-the-runtime-token" not in str(refused.value) and token not in str(refused.value)
        assert runtime.status()["allocation"]["percent"] == 20  # the refused call changed nothing

        assert client.set_allocation(url, percent=None, token=token) == AllocationSetting(60.0, "spec")
    finally:
        client.close()

    with socket.socket() as spare:  # a port nobody listens on
        spare.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{spare.getsockname()[1]}"
    nobody = RuntimeHttpClient(timeout=1.0)
    try:
        with pytest.raises(RuntimeUnreachable, match="ConnectError"):
            nobody.performance(closed, since=0, token=kit.token)
    finally:
        nobody.close()
