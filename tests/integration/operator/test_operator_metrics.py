"""The operator's metrics port: the control plane's metrics served by ``slsbot operator`` on a real port."""

from __future__ import annotations

import socket

import httpx
import pytest

from slsbot.adapters.control_metrics import ControlMetrics
from slsbot.interfaces.commands.operator import start_metrics_server
from slsbot.interfaces.operator_settings import OperatorSettings

pytestmark = [pytest.mark.integration]


def test_the_operator_serves_its_metrics_on_the_metrics_port_and_none_when_it_is_off():
    metrics = ControlMetrics()
    metrics.recovered("Crashed", 1.5)
    server = start_metrics_server(OperatorSettings(metrics_port=0, metrics_address="127.0.0.1"), metrics)
    assert server is not None
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5, trust_env=False)
        assert response.status_code == 200
        assert 'slsbot_heal_recovery_seconds_count{failure_class="Crashed"} 1.0' in response.text
    finally:
        server.close()
    assert start_metrics_server(OperatorSettings(metrics_port="off"), metrics) is None


def test_a_metrics_port_taken_by_another_process_is_logged_and_the_operator_goes_on(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = OperatorSettings(metrics_port=port, metrics_address="127.0.0.1")
        assert start_metrics_server(settings, ControlMetrics()) is None
    assert f"cannot serve metrics on 127.0.0.1:{port}" in caplog.text
