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
