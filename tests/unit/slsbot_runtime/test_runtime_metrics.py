"""The runtime's metrics module: the phase gauge knows every phase a runtime can report, drained included."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from slsbot_runtime.drained import DRAINED_PHASE
from slsbot_runtime.engine.status import Phase
from slsbot_runtime.metrics import PHASES, RuntimeMetrics


def test_the_phase_gauge_has_every_loop_phase_and_drained() -> None:
    assert set(PHASES) == {str(p) for p in Phase} | {DRAINED_PHASE}


def test_drained_is_one_and_every_other_phase_zero() -> None:
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    metrics.set_phase("running")
    metrics.set_phase(DRAINED_PHASE)
    values = {p: registry.get_sample_value("slsbot_runtime_phase", {"phase": p}) for p in PHASES}
    assert values == {p: (1.0 if p == DRAINED_PHASE else 0.0) for p in PHASES}
    with pytest.raises(ValueError, match="phase: 'sleeping' is not one of"):
        metrics.set_phase("sleeping")


def test_the_model_state_gauges_know_every_state_and_count_models_out_of_the_vote() -> None:
    from slsbot_runtime.metrics import MODEL_STATES
    from slsbot_runtime.ml.schedule import STATES

    assert set(MODEL_STATES) == set(STATES)
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    metrics.set_model_state("gbm", "stale", False)
    metrics.set_model_state("forest", "missing", False)
    metrics.set_model_state("forest", "ready", True)
    assert registry.get_sample_value("slsbot_runtime_models_out_of_vote") == 1.0
    assert registry.get_sample_value("slsbot_runtime_model_in_vote", {"model": "gbm"}) == 0.0
    states = {s: registry.get_sample_value("slsbot_runtime_model_state", {"model": "gbm", "state": s}) for s in STATES}
    assert states == {s: (1.0 if s == "stale" else 0.0) for s in STATES}
    metrics.count_retrain("gbm", "kept", 0.6931)
    assert registry.get_sample_value("slsbot_runtime_model_retrains_total", {"model": "gbm", "result": "kept"}) == 1
    assert registry.get_sample_value("slsbot_runtime_model_holdout_log_loss", {"model": "gbm"}) == 0.6931
    with pytest.raises(ValueError, match="state: 'sleepy' is not one of"):
        metrics.set_model_state("gbm", "sleepy", False)


def test_the_model_accuracy_gauges_are_nan_until_measured() -> None:
    import math

    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    metrics.set_model_accuracy("gbm", None, 0.58)  # a new version: its baseline, nothing measured yet
    assert math.isnan(registry.get_sample_value("slsbot_runtime_model_accuracy", {"model": "gbm"}))
    assert registry.get_sample_value("slsbot_runtime_model_baseline_accuracy", {"model": "gbm"}) == 0.58
    metrics.set_model_accuracy("gbm", 0.43, 0.58)
    assert registry.get_sample_value("slsbot_runtime_model_accuracy", {"model": "gbm"}) == 0.43


def test_the_exchange_error_kinds_are_exported_at_zero_before_the_first_error() -> None:
    """An alert's increase() needs a sample before the first error: every kind exists at 0 from the start."""
    from slsbot_runtime.metrics import EXCHANGE_ERROR_KINDS

    registry = CollectorRegistry()
    RuntimeMetrics(registry)
    values = {
        k: registry.get_sample_value("slsbot_runtime_exchange_errors_total", {"kind": k}) for k in EXCHANGE_ERROR_KINDS
    }
    assert values == {"error": 0.0, "rate_limited": 0.0}


def test_the_drawdown_and_its_limit_are_nan_until_the_first_status() -> None:
    """0 of a limit of 0 would read as a drawdown at its limit (alert SlsbotDrawdownNearLimit) on a runtime that never
    publishes, as one started drained."""
    import math

    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    assert math.isnan(registry.get_sample_value("slsbot_runtime_drawdown_percent"))
    assert math.isnan(registry.get_sample_value("slsbot_runtime_drawdown_limit_percent"))
    metrics.set_risk(drawdown_percent=3.0, limit_percent=20.0, breaker_level=0, kill_switch=False)
    assert registry.get_sample_value("slsbot_runtime_drawdown_limit_percent") == 20.0
