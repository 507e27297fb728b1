"""The admin API's ``/metrics``: the control plane's metrics (``adapters.control_metrics``) that the supervisor
records, in Prometheus text, open to a scraper without a token."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from slsbot.adapters.control_metrics import ControlMetrics
from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import create_store_engine
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_healing_measurements_are_served_without_a_token(tmp_path: Path) -> None:
    engine = create_store_engine(tmp_path / "supervisor.db")
    metrics = ControlMetrics()
    tokens = TokenRegistry.from_tokens(operator=SecretStr("op-7Qx2v9LkT3mN8pR5sW1yZ4bC6dF0gH"))
    client = TestClient(
        create_app(engine=engine, tokens=tokens, runtime_client=RuntimeHttpClient(timeout=1.0), metrics=metrics)
    )
    metrics.detected("StaleData", 7.5)
    metrics.rung_entered("StaleData", "Restart")
    metrics.rung_entered("StaleData", "SafeMode")
    metrics.recovered("StaleData", 42.0)

    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    label = (("failure_class", "StaleData"),)
    assert samples[("slsbot_heal_detection_seconds_count", label)] == 1
    assert samples[("slsbot_heal_detection_seconds_sum", label)] == 7.5
    assert samples[("slsbot_heal_detection_seconds_bucket", (("failure_class", "StaleData"), ("le", "10.0")))] == 1
    assert samples[("slsbot_heal_detection_seconds_bucket", (("failure_class", "StaleData"), ("le", "5.0")))] == 0
    assert samples[("slsbot_heal_recovery_seconds_sum", label)] == 42.0
    assert samples[("slsbot_heal_rungs_total", (("failure_class", "StaleData"), ("rung", "SafeMode")))] == 1
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]  # a scrape target, not an API route
    engine.dispose()
