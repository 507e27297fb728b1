"""The control plane's metrics, every name and label in this one module (``slsbot_*``). Each family is a small
class over a ``CollectorRegistry`` passed in, so tests and processes hold their own registry, never a global one.

Incidents and notifications (issue 9 section 3); the healing ladder's families join this module from its own part.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


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
