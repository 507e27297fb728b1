"""Every metric the control plane exports (the supervisor's admin API ``/metrics``, the operator's metrics port), with
its name and labels, in this one module.

``ControlMetrics(registry)`` registers them on the registry it is given (never the global default one), so two
supervisors in one process, or a test, never collide. Label values are bounded sets: the failure classes
(``FailureClass``) and the incident rules that put a runtime on the healing ladder, and the ladder's rungs.

Healing (docs/concepts/healing.md): ``slsbot_heal_detection_seconds{failure_class}`` is the time from a fault (as the
runtime reports its start: the missing candle's due time, the exchange's ``failing_since``, the exit) to the
control plane seeing it; ``slsbot_heal_recovery_seconds{failure_class}`` from detection to the runtime being healthy
again (the MTTR's repair part); ``slsbot_heal_rungs_total{failure_class, rung}`` counts the ladder's steps.
``ControlMetrics`` implements the services' ``HealingMetrics`` port.

Incidents and notifications (docs/concepts/incidents.md): ``ControlMetrics.incidents`` (``IncidentMetrics``, the
incidents service's ``IncidentEvents``): ``slsbot_incidents_open{severity}``, ``slsbot_incidents_opened_total{severity,
rule}``, ``slsbot_incidents_resolved_total{severity, how}``, ``slsbot_notifications_sent_total{type}`` and
``slsbot_notifications_failed_total{type, retried}``.

The admin API's protections (docs/concepts/admin-api-security.md): ``ControlMetrics.admin_api`` (``AdminApiMetrics``):
``slsbot_admin_requests_refused_total{reason}`` and ``slsbot_admin_lockouts_total``.
Backups (docs/concepts/backups.md): ``ControlMetrics.backups`` (``BackupMetrics``): per BackupSchedule (labels
``namespace``, ``schedule``) and job kind (backup, check, prune, drill),
``slsbot_backup_last_success_timestamp_seconds{namespace, schedule, kind}``,
``slsbot_backup_last_duration_seconds{namespace, schedule, kind}``, ``slsbot_backup_runs_total{namespace, schedule,
kind, outcome}``, ``slsbot_backup_last_size_bytes{namespace, schedule}`` (what the newest backup added) and
``slsbot_backup_drill_passed{namespace, schedule}`` (1 when the newest drill passed, 0 when it failed; no series before
the first drill). The job kind's label is ``kind``, not ``job``: Prometheus gives every scraped series its own ``job``
label (the scrape job's), and would rename a ``job`` label of the target's to ``exported_job``. ``namespace`` is the
BackupSchedule's: scrape the operator with ``honorLabels: true`` (the chart's ServiceMonitor does), as
kube-state-metrics is, or Prometheus renames it ``exported_namespace``.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from slsbot.api.health import FailureClass, HealingRung

PREFIX = "slsbot"
#: Seconds: from a killed runtime's few seconds to an exchange outage of many minutes.
HEAL_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class ControlMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.heal_detection = Histogram(
            f"{PREFIX}_heal_detection_seconds",
            "From a runtime's fault (as it reports the fault's start) to the control plane detecting it.",
            ["failure_class"],
            buckets=HEAL_BUCKETS,
            registry=self.registry,
        )
        self.heal_recovery = Histogram(
            f"{PREFIX}_heal_recovery_seconds",
            "From detecting a runtime's fault to the runtime being healthy again.",
            ["failure_class"],
            buckets=HEAL_BUCKETS,
            registry=self.registry,
        )
        self.heal_rungs = Counter(
            f"{PREFIX}_heal_rungs",
            "Steps of the healing ladder: a runtime entered this rung for this failure class.",
            ["failure_class", "rung"],
            registry=self.registry,
        )
        for failure_class in FailureClass:
            for rung in HealingRung:
                self.heal_rungs.labels(failure_class=str(failure_class), rung=str(rung))
        self.incidents = IncidentMetrics(self.registry)
        self.admin_api = AdminApiMetrics(self.registry)
        self.backups = BackupMetrics(self.registry)
        self.tuning = TuningMetrics(self.registry)

    # --- HealingMetrics (slsbot.domain.ports) -------------------------------------------------------------

    def detected(self, cause: str, seconds: float) -> None:
        self.heal_detection.labels(failure_class=cause).observe(seconds)

    def recovered(self, cause: str, seconds: float) -> None:
        self.heal_recovery.labels(failure_class=cause).observe(seconds)

    def rung_entered(self, cause: str, rung: str) -> None:
        self.heal_rungs.labels(failure_class=cause, rung=rung).inc()

    # --- exposition -----------------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text of every control-plane metric."""
        return generate_latest(self.registry)


class IncidentMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge(
            "slsbot_incidents_open", "Open or acknowledged incidents, per severity.", ["severity"], registry=registry
        )
        self.opened = Counter(
            "slsbot_incidents_opened",
            "Incidents opened, per severity and rule.",
            ["severity", "rule"],
            registry=registry,
        )
        self.resolved = Counter(
            "slsbot_incidents_resolved",
            "Incidents resolved, per severity and how (automatic or person).",
            ["severity", "how"],
            registry=registry,
        )
        self.notifications_sent = Counter(
            "slsbot_notifications_sent",
            "Notification messages delivered, per receiver type.",
            ["type"],
            registry=registry,
        )
        self.notifications_failed = Counter(
            "slsbot_notifications_failed",
            "Notification attempts that failed, per receiver type and whether they are retried.",
            ["type", "retried"],
            registry=registry,
        )

    # ``services.incidents.IncidentEvents``: what the incidents service reports.
    def set_open(self, counts: dict[int, int]) -> None:
        for severity in (1, 2, 3):
            self.open.labels(severity=str(severity)).set(counts.get(severity, 0))

    def incident_opened(self, severity: int, rule: str) -> None:
        self.opened.labels(severity=str(severity), rule=rule).inc()

    def incident_resolved(self, severity: int, automatic: bool) -> None:
        self.resolved.labels(severity=str(severity), how="automatic" if automatic else "person").inc()

    def notification_sent(self, receiver_type: str) -> None:
        self.notifications_sent.labels(type=receiver_type).inc()

    def notification_failed(self, receiver_type: str, retried: bool) -> None:
        self.notifications_failed.labels(type=receiver_type, retried=str(retried).lower()).inc()


class AdminApiMetrics:
    """The admin API's protections (``interfaces.admin_api.hardening``): ``slsbot_admin_requests_refused_total{reason}``
    (``rate_limited``, ``locked_out``, ``too_large``) and ``slsbot_admin_lockouts_total``, the lockouts imposed after
    repeated failed authentications (one per failure past the threshold: each one lengthens the lock)."""

    REASONS = ("rate_limited", "locked_out", "too_large")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.refused_requests = Counter(
            "slsbot_admin_requests_refused",
            "Requests the admin API refused before they reached a route, per reason.",
            ["reason"],
            registry=registry,
        )
        self.lockouts = Counter(
            "slsbot_admin_lockouts",
            "Lockouts of a client address after repeated failed authentications (each further failure locks longer).",
            registry=registry,
        )
        for reason in self.REASONS:
            self.refused_requests.labels(reason=reason)

    def refused(self, reason: str) -> None:
        self.refused_requests.labels(reason=reason).inc()

    def locked_out(self) -> None:
        self.lockouts.inc()


class BackupMetrics:
    """The newest result of each BackupSchedule's jobs, labelled by the schedule's namespace and name and the job
    kind. Under ``slsbot up`` the backups service's ``report`` calls ``job_finished`` as each run ends; on a cluster
    the operator calls it for each new result it reads in a schedule's status (written by the CronJob's pod), and
    ``forget`` when the schedule goes."""

    LABELS = ("namespace", "schedule")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.last_success = Gauge(
            f"{PREFIX}_backup_last_success_timestamp_seconds",
            "When the newest successful run of this job kind started (Unix time).",
            [*self.LABELS, "kind"],
            registry=registry,
        )
        self.last_duration = Gauge(
            f"{PREFIX}_backup_last_duration_seconds",
            "How long the newest run took.",
            [*self.LABELS, "kind"],
            registry=registry,
        )
        self.runs = Counter(
            f"{PREFIX}_backup_runs_total",
            "Runs of backup jobs by outcome.",
            [*self.LABELS, "kind", "outcome"],
            registry=registry,
        )
        self.last_size = Gauge(
            f"{PREFIX}_backup_last_size_bytes",
            "Bytes the newest successful backup added to the repository.",
            list(self.LABELS),
            registry=registry,
        )
        self.drill_passed = Gauge(
            f"{PREFIX}_backup_drill_passed",
            "1 when the newest restore drill passed, 0 when it failed (no series before the first drill).",
            list(self.LABELS),
            registry=registry,
        )

    def job_finished(
        self,
        job: str,
        *,
        succeeded: bool,
        started_at: float,
        duration: float,
        size: int | None,
        namespace: str,
        schedule: str,
    ) -> None:
        where = {"namespace": namespace, "schedule": schedule}
        self.runs.labels(**where, kind=job, outcome="succeeded" if succeeded else "failed").inc()
        self.last_duration.labels(**where, kind=job).set(duration)
        if succeeded:
            self.last_success.labels(**where, kind=job).set(started_at)
            if job == "backup" and size is not None:
                self.last_size.labels(**where).set(size)
        if job == "drill":
            self.drill_passed.labels(**where).set(1 if succeeded else 0)

    def forget(self, namespace: str, schedule: str) -> None:
        """Drop a deleted schedule's series."""
        for metric in (self.last_success, self.last_duration, self.runs, self.last_size, self.drill_passed):
            for labels in [k for k in _label_sets(metric) if k[:2] == (namespace, schedule)]:
                metric.remove(*labels)


def _label_sets(metric: Gauge | Counter) -> list[tuple[str, ...]]:
    return list(metric._metrics)  # prometheus_client keeps its children here, by label values


class TuningMetrics:
    """Tuning Experiments' runs (``services.reconcile``'s ``TuningMetrics`` port): ``slsbot_tuning_runs_failed_total
    {reason}``, counted when a run's phase turns Failed. ``REASONS`` are created at 0."""

    REASONS = ("WorkerFailed", "FinalizeFailed")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.failed = Counter(
            f"{PREFIX}_tuning_runs_failed",
            "Runs of tuning Experiments that ended Failed, per reason (WorkerFailed, FinalizeFailed).",
            ["reason"],
            registry=registry,
        )
        for reason in self.REASONS:
            self.failed.labels(reason=reason)

    def run_failed(self, reason: str) -> None:
        self.failed.labels(reason=reason).inc()
