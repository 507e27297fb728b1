"""The incidents service over the real local store (SQLite in a temporary folder)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from slsbot.adapters.control_metrics import IncidentMetrics
from slsbot.adapters.store import create_store_engine
from slsbot.adapters.supervisor_store import SqlIncidentStore
from slsbot.api.health import Notifications
from slsbot.domain.errors import ConflictError, NotFoundError, NotificationFailed
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.incidents import Incident
from slsbot.domain.notification_plan import Message
from slsbot.services.incidents import IncidentService, RetryPolicy, StrategySignals

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOTIFY = Notifications.model_validate(
    {
        "receivers": [
            {"name": "pager", "type": "webhook", "urlSecretRef": {"name": "h", "key": "u"}, "minSeverity": 2}
        ],
        "groupWait": "10s",
    }
)


def signal(name: str = "btc", severity: int = 1, rule: str = "StateMismatch") -> IncidentSignal:
    return IncidentSignal(
        cause=f"{rule}:trading/{name}",
        severity=severity,
        rule=rule,
        namespace="trading",
        objects=(f"Strategy/{name}",),
        message="position 0.1 BTC, exchange 0",
        runbook="runbooks/state-mismatch.md",
        detected_at=T0,
        actions=("CancelOrders", "Flatten", "Halt"),
    )


class Receiver:
    """Stands in for the far end of a webhook (the HTTP senders have their own tests against real servers)."""

    def __init__(self, failures: list[NotificationFailed] | None = None) -> None:
        self.failures = list(failures or [])
        self.got: list[Message] = []
        self.attempts = 0

    def send(self, message: Message) -> None:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.got.append(message)


class Archive:
    def __init__(self) -> None:
        self.written: list[str] = []

    def write(self, incident: Incident) -> None:
        self.written.append(incident.id)


@pytest.fixture
def store(tmp_path: Path) -> SqlIncidentStore:
    return SqlIncidentStore(create_store_engine(tmp_path / "supervisor.db"))


def test_signals_open_persist_and_auto_resolve_with_a_postmortem(store: SqlIncidentStore) -> None:
    registry = CollectorRegistry()
    archive = Archive()
    service = IncidentService(store, Receiver(), postmortems=archive, events=IncidentMetrics(registry))
    service.record_signals([signal(), signal("eth", severity=3, rule="Slippage")], T0)
    assert registry.get_sample_value("slsbot_incidents_open", {"severity": "1"}) == 1
    # A fresh store object on the same database sees them (they survive a restart).
    again = SqlIncidentStore(store._engine)
    assert {i.spec.rule for i in again.active_incidents()} == {"StateMismatch", "Slippage"}
    assert [i.spec.rule for i in again.list_incidents(severity=1)] == ["StateMismatch"]
    assert again.list_incidents(namespace="elsewhere") == []
    # Both causes gone: cleared, then resolved after recoverAfter (1 minute here).
    causes = {"StateMismatch:trading/btc": timedelta(minutes=1), "Slippage:trading/eth": timedelta(minutes=1)}
    service.record_signals([], T0 + timedelta(seconds=5), recover_after=causes, evaluated=["rules"])
    service.record_signals([], T0 + timedelta(seconds=65), recover_after=causes, evaluated=["rules"])
    assert store.active_incidents() == []
    resolved = store.list_incidents(state="resolved")
    assert len(resolved) == 2
    critical = next(i for i in resolved if i.spec.severity == 1)
    assert archive.written == [critical.id]  # only severity 1 and 2 get a bundle
    assert registry.get_sample_value("slsbot_incidents_resolved_total", {"severity": "1", "how": "automatic"}) == 1
    assert registry.get_sample_value("slsbot_incidents_open", {"severity": "1"}) == 0


def test_acknowledge_and_resolve_by_a_person(store: SqlIncidentStore) -> None:
    archive = Archive()
    service = IncidentService(store, Receiver(), postmortems=archive)
    (change,) = service.record_signals([signal()], T0)
    incident_id = change.incident.id
    acked = service.acknowledge(incident_id, "operator:ab12", T0 + timedelta(minutes=1), "on it")
    assert store.get_incident(incident_id).status.state == "acknowledged"
    # A pass that still sees the cause keeps the acknowledgement.
    service.record_signals([signal()], T0 + timedelta(minutes=2))
    assert store.get_incident(incident_id) == acked
    done = service.resolve(incident_id, "operator:ab12", T0 + timedelta(minutes=3), "reconciled by hand")
    assert done.status.timeline[-1].actor == "operator:ab12"
    assert archive.written == [incident_id]
    with pytest.raises(ConflictError):
        service.acknowledge(incident_id, "operator:ab12", T0 + timedelta(minutes=4))
    assert store.get_incident(incident_id) == done
    with pytest.raises(NotFoundError, match="does not exist"):
        service.resolve("nope", "operator:ab12", T0)


class SlowArchive(Archive):
    """Building a bundle asks the runtimes: this one waits until ``release``, as a runtime that does not answer would
    keep the build waiting for its timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.building = threading.Event()
        self.release = threading.Event()

    def write(self, incident: Incident) -> None:
        self.building.set()
        assert self.release.wait(20), "the test never released the bundle"
        super().write(incident)


def test_a_slow_bundle_does_not_hold_up_the_passes_or_the_people(store: SqlIncidentStore) -> None:
    archive = SlowArchive()
    service = IncidentService(store, Receiver(), postmortems=archive)
    (first,) = service.record_signals([signal("btc")], T0)
    (second,) = service.record_signals([signal("eth")], T0)
    with ThreadPoolExecutor(1) as pool:
        resolving = pool.submit(service.resolve, first.incident.id, "operator:ab12", T0 + timedelta(minutes=1))
        assert archive.building.wait(20), "the bundle was never built"
        # while the bundle of btc's incident is being built, the service answers the rest at once
        acked = service.acknowledge(second.incident.id, "operator:ab12", T0 + timedelta(minutes=1))
        assert acked.status.state == "acknowledged"
        (opened,) = service.record_signals([signal("sol")], T0 + timedelta(minutes=1), objects=["Strategy/sol"])
        assert list(opened.incident.spec.objects) == ["Strategy/sol"]
        assert not resolving.done() and store.get_incident(first.incident.id).status.state == "resolved"
        archive.release.set()
        assert resolving.result(timeout=20).status.state == "resolved"
    assert archive.written == [first.incident.id]


def test_notifications_are_grouped_sent_once_and_noted_on_the_timeline(store: SqlIncidentStore) -> None:
    receiver = Receiver()
    service = IncidentService(store, receiver, notifications_for=lambda _ns: NOTIFY)
    service.record_signals([signal(f"bot-{i}") for i in range(10)], T0)
    assert service.notify(T0 + timedelta(seconds=9)) == 0
    assert service.notify(T0 + timedelta(seconds=10)) == 1
    assert service.notify(T0 + timedelta(seconds=11)) == 0
    (message,) = receiver.got
    assert len(message.firing) == 10
    incident = store.active_incidents()[0]
    assert incident.status.timeline[-1].kind == "Notified" and incident.status.timeline[-1].message == "sent to pager"


def test_a_failed_delivery_is_retried_with_backoff_and_honours_retry_after(store: SqlIncidentStore) -> None:
    registry = CollectorRegistry()
    receiver = Receiver(
        [
            NotificationFailed("pager: HTTP 503", retryable=True),
            NotificationFailed("pager: 429", retryable=True, retry_after=30),
        ]
    )
    retry = RetryPolicy(base=timedelta(seconds=2), cap=timedelta(minutes=1), attempts=5)
    service = IncidentService(
        store, receiver, notifications_for=lambda _ns: NOTIFY, retry=retry, events=IncidentMetrics(registry)
    )
    service.record_signals([signal()], T0)
    at = T0 + timedelta(seconds=10)
    assert service.notify(at) == 0  # 503: next try 2 s later
    assert service.notify(at + timedelta(seconds=1)) == 0 and receiver.attempts == 1
    assert service.notify(at + timedelta(seconds=2)) == 0  # 429 Retry-After 30 s (longer than the 4 s backoff)
    assert receiver.attempts == 2
    assert service.notify(at + timedelta(seconds=31)) == 0 and receiver.attempts == 2
    assert service.notify(at + timedelta(seconds=32)) == 1 and receiver.attempts == 3
    assert len(receiver.got) == 1 and service.pending_deliveries() == 0
    assert registry.get_sample_value("slsbot_notifications_failed_total", {"type": "webhook", "retried": "true"}) == 2
    assert registry.get_sample_value("slsbot_notifications_sent_total", {"type": "webhook"}) == 1


def test_a_permanent_failure_or_too_many_attempts_drops_the_message(store: SqlIncidentStore) -> None:
    receiver = Receiver([NotificationFailed("pager: HTTP 404", retryable=False)])
    service = IncidentService(store, receiver, notifications_for=lambda _ns: NOTIFY)
    service.record_signals([signal()], T0)
    service.notify(T0 + timedelta(seconds=10))
    assert service.pending_deliveries() == 0 and receiver.got == []

    receiver = Receiver([NotificationFailed("down", retryable=True) for _ in range(3)])
    service = IncidentService(
        store, receiver, notifications_for=lambda _ns: NOTIFY, retry=RetryPolicy(base=timedelta(seconds=1), attempts=3)
    )
    for second in range(10, 40):
        service.notify(T0 + timedelta(seconds=second))
    assert receiver.attempts == 3 and receiver.got == [] and service.pending_deliveries() == 0


def test_the_healing_ladders_call_clears_only_its_own_incidents_and_only_for_the_objects_it_covers(store) -> None:
    service = IncidentService(store, None)
    service.record_signals(
        [signal("btc"), signal("eth", rule="HealingCrashed", severity=2)], T0, evaluated=["rules", "healing"]
    )
    # The ladder's call as the contract writes it: record_signals(signals, now); nothing from it now.
    service.record_signals([], T0 + timedelta(seconds=1))
    states = {i.spec.rule: i.status.clear_since for i in store.active_incidents()}
    assert states["StateMismatch"] is None  # a rules incident: not the ladder's to clear
    assert states["HealingCrashed"] is not None
    # A call about another Strategy leaves eth's alone.
    service.record_signals([signal("eth", rule="HealingCrashed", severity=2)], T0 + timedelta(seconds=2))
    service.record_signals([], T0 + timedelta(seconds=3), objects=["Strategy/btc"])
    assert all(i.status.clear_since is None for i in store.active_incidents())


def test_the_ladder_acts_on_rule_incidents_in_force_naming_a_strategy_first(store: SqlIncidentStore) -> None:
    """What ``StrategySignals`` hands the healing ladder: severity 1-2 rule incidents whose cause still stands, under
    the first Strategy they name (an account's drawdown names its worst contributor first: only that bot is paused);
    not severity 3, not the ladder's own Healing<Class> incidents, not an incident whose cause cleared."""
    service = IncidentService(store, None)
    drawdown = IncidentSignal(
        cause="Drawdown:trading/binance",
        severity=2,
        rule="Drawdown",
        namespace="trading",
        objects=("Strategy/eth", "TradingAccount/binance"),
        message="account drawdown 12% > 10%",
        runbook="runbooks/drawdown.md",
        detected_at=T0,
    )
    signals = [
        signal("btc", 1, "StateMismatch"),
        drawdown,
        signal("sol", 3, "Slippage"),
        signal("ada", 1, "HealingStaleData"),
    ]
    service.record_signals(signals, T0, evaluated=("rules", "healing"))
    lookups = StrategySignals(store, ttl=60, clock=lambda: 0.0)

    def of(name: str) -> list[str]:
        return [s.rule for s in lookups(_strategy(name))]

    assert (of("btc"), of("eth"), of("sol"), of("ada")) == (["StateMismatch"], ["Drawdown"], [], [])
    # the state mismatch clears: from the next read on, the ladder no longer sees it
    service.record_signals([drawdown], T0 + timedelta(seconds=5), evaluated=("rules",))
    assert of("btc") == ["StateMismatch"]  # read once per ttl
    fresh = StrategySignals(store, ttl=60, clock=lambda: 0.0)
    assert [s.rule for s in fresh(_strategy("btc"))] == []
    assert [s.rule for s in fresh(_strategy("eth"))] == ["Drawdown"]


def _strategy(name: str) -> Any:
    return SimpleNamespace(namespace="trading", name=name)  # all StrategySignals reads of a Strategy
