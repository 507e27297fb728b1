"""``ControlMetrics``: the series the alerts read exist before their first event, with the labels the rules name."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from slsbot.adapters.control_metrics import ControlMetrics, TuningMetrics
from slsbot.api.health import FailureClass, HealingRung


def samples(metrics: ControlMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_every_failure_class_and_rung_is_exported_at_zero() -> None:
    exported = samples(ControlMetrics(CollectorRegistry()))
    for failure_class in FailureClass:
        for rung in HealingRung:
            key = ("slsbot_heal_rungs_total", (("failure_class", str(failure_class)), ("rung", str(rung))))
            assert exported[key] == 0.0


def test_a_failed_tuning_run_is_counted_by_reason_and_the_reasons_start_at_zero() -> None:
    metrics = ControlMetrics(CollectorRegistry())
    assert {
        r: samples(metrics)[("slsbot_tuning_runs_failed_total", (("reason", r),))] for r in TuningMetrics.REASONS
    } == {
        "WorkerFailed": 0.0,
        "FinalizeFailed": 0.0,
    }
    metrics.tuning.run_failed("FinalizeFailed")
    assert samples(metrics)[("slsbot_tuning_runs_failed_total", (("reason", "FinalizeFailed"),))] == 1.0


def test_the_backup_series_are_labelled_kind_not_job() -> None:
    """Prometheus's own ``job`` label (the scrape job) would rename a ``job`` label to ``exported_job``."""
    metrics = ControlMetrics(CollectorRegistry())
    where = {"namespace": "ops", "schedule": "hourly"}
    metrics.backups.job_finished("backup", succeeded=True, started_at=1_700_000_000.0, duration=2.5, size=1024, **where)
    metrics.backups.job_finished("drill", succeeded=False, started_at=1_700_000_100.0, duration=9.0, size=None, **where)
    exported = samples(metrics)
    schedule = (("namespace", "ops"), ("schedule", "hourly"))
    assert (
        exported[("slsbot_backup_last_success_timestamp_seconds", (("kind", "backup"), *schedule))] == 1_700_000_000.0
    )
    assert (
        exported[
            (
                "slsbot_backup_runs_total",
                (("kind", "drill"), ("namespace", "ops"), ("outcome", "failed"), ("schedule", "hourly")),
            )
        ]
        == 1.0
    )
    assert exported[("slsbot_backup_drill_passed", schedule)] == 0.0
    assert not any("job" in dict(labels) for _, labels in exported)


def test_no_drill_series_before_the_first_drill_rather_than_a_failure() -> None:
    """0 means a failed drill (alert SlsbotRestoreDrillFailed): a schedule that never ran one must not say 0."""
    metrics = ControlMetrics(CollectorRegistry())
    assert not any(name == "slsbot_backup_drill_passed" for name, _ in samples(metrics))
    metrics.backups.job_finished(
        "drill", succeeded=True, started_at=1_700_000_000.0, duration=9.0, size=None, namespace="ops", schedule="h"
    )
    assert samples(metrics)[("slsbot_backup_drill_passed", (("namespace", "ops"), ("schedule", "h")))] == 1.0
