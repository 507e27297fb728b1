from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slsbot.domain.errors import ConflictError
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.incidents import (
    AUTOMATIC,
    HEALING_FAMILY,
    RULES_FAMILY,
    Change,
    Incident,
    acknowledge,
    fold_signals,
    needs_postmortem,
    resolve,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def signal(rule: str = "StateMismatch", name: str = "btc", severity: int = 1, at: datetime = T0) -> IncidentSignal:
    return IncidentSignal(
        cause=f"{rule}:trading/{name}",
        severity=severity,
        rule=rule,
        namespace="trading",
        objects=(f"Strategy/{name}",),
        message=f"{rule} on {name}",
        runbook="runbooks/state-mismatch.md",
        detected_at=at,
        actions=("CancelOrders", "Flatten", "Halt") if severity == 1 else (),
    )


class Book:
    """The active incidents as a store would keep them, for driving passes."""

    def __init__(self) -> None:
        self.items: dict[str, Incident] = {}

    def run(self, signals, now, **kwargs) -> list[tuple[str, Change]]:
        changes = fold_signals([i for i in self.items.values() if i.active], signals, now, **kwargs)
        for change in changes:
            self.items[change.incident.id] = change.incident
        return [(c.incident.spec.cause, c.change) for c in changes]


def test_one_incident_per_cause_with_a_timeline_of_detection_and_actions() -> None:
    book = Book()
    assert book.run([signal(), signal(), signal(name="eth")], T0) == [
        ("StateMismatch:trading/btc", Change.OPENED),
        ("StateMismatch:trading/eth", Change.OPENED),
    ]
    # Seen again while open: nothing to write.
    assert book.run([signal(), signal(name="eth")], T0 + timedelta(seconds=5)) == []
    incident = next(i for i in book.items.values() if i.spec.cause.endswith("/btc"))
    assert incident.status.state == "open" and incident.status.count == 1
    assert [(e.kind, e.message) for e in incident.status.timeline] == [
        ("Detected", "StateMismatch on btc"),
        ("Action", "automatic: CancelOrders, Flatten, Halt"),
    ]
    assert incident.spec.runbook == "runbooks/state-mismatch.md"


def test_a_cause_that_returns_before_recovering_bumps_the_count() -> None:
    book = Book()
    book.run([signal()], T0)
    assert book.run([], T0 + timedelta(seconds=10)) == [("StateMismatch:trading/btc", Change.CLEARED)]
    assert book.run([signal()], T0 + timedelta(seconds=20)) == [("StateMismatch:trading/btc", Change.DETECTED_AGAIN)]
    (incident,) = book.items.values()
    assert incident.status.count == 2 and incident.status.clear_since is None
    assert [e.kind for e in incident.status.timeline] == ["Detected", "Action", "Cleared", "Detected"]


def test_auto_resolve_after_recover_after_and_the_timeline_says_it_was_automatic() -> None:
    book = Book()
    cause = "StateMismatch:trading/btc"
    book.run([signal()], T0, recover_after={cause: timedelta(minutes=2)})
    book.run([], T0 + timedelta(seconds=1))
    assert book.run([], T0 + timedelta(seconds=120)) == []  # absent 119 s
    assert book.run([], T0 + timedelta(seconds=121)) == [(cause, Change.RESOLVED)]
    (incident,) = book.items.values()
    assert incident.status.state == "resolved"
    last = incident.status.timeline[-1]
    assert last.kind == "Resolved" and last.actor == AUTOMATIC and "automatically" in last.message
    assert needs_postmortem(incident)
    # The same cause later is a new incident.
    assert book.run([signal()], T0 + timedelta(minutes=10)) == [(cause, Change.OPENED)]
    assert len(book.items) == 2


def test_a_family_not_evaluated_in_a_pass_is_left_alone() -> None:
    book = Book()
    book.run([signal("HealingCrashed", severity=2)], T0, evaluated=[HEALING_FAMILY])
    assert book.run([], T0 + timedelta(seconds=1), evaluated=[RULES_FAMILY]) == []
    assert book.run([], T0 + timedelta(seconds=2), evaluated=[HEALING_FAMILY]) == [
        ("HealingCrashed:trading/btc", Change.CLEARED)
    ]


def test_the_most_severe_signal_of_a_cause_wins() -> None:
    book = Book()
    book.run([signal(severity=3), signal(severity=1)], T0)
    (incident,) = book.items.values()
    assert incident.spec.severity == 1


def test_acknowledge_and_resolve_by_a_person() -> None:
    book = Book()
    book.run([signal(severity=3)], T0)
    (incident,) = book.items.values()
    acked = acknowledge(incident, "operator:abc", T0 + timedelta(minutes=1), "looking")
    assert acked.status.state == "acknowledged" and acked.status.acknowledged_at == T0 + timedelta(minutes=1)
    assert acknowledge(acked, "operator:abc", T0 + timedelta(minutes=2)) == acked
    done = resolve(acked, "operator:abc", T0 + timedelta(minutes=3), "fixed the key")
    assert done.status.state == "resolved"
    assert (done.status.timeline[-1].actor, done.status.timeline[-1].message) == ("operator:abc", "fixed the key")
    assert not needs_postmortem(done)  # severity 3
    with pytest.raises(ConflictError, match="resolved already"):
        acknowledge(done, "operator:abc", T0 + timedelta(minutes=4))
    assert resolve(done, "operator:abc", T0 + timedelta(minutes=5)) == done
    # An acknowledged incident still clears and auto-resolves.
    book.items[acked.id] = acked
    book.run([], T0 + timedelta(minutes=6))
    assert book.run([], T0 + timedelta(minutes=9))[0][1] == Change.RESOLVED


def test_timeline_stays_bounded_and_keeps_the_first_entry() -> None:
    book = Book()
    book.run([signal()], T0)
    for i in range(1, 100):
        book.run([] if i % 2 else [signal()], T0 + timedelta(seconds=i))
    (incident,) = book.items.values()
    assert len(incident.status.timeline) == 64
    assert incident.status.timeline[0].message == "StateMismatch on btc"
    assert incident.status.count == 50


def test_a_recover_after_of_zero_resolves_in_the_pass_the_cause_is_gone() -> None:
    book = Book()
    cause = "StateMismatch:trading/btc"
    book.run([signal()], T0)  # opened with the default 2m
    assert book.run([], T0 + timedelta(seconds=1), recover_after={cause: timedelta(0)}) == [(cause, Change.RESOLVED)]


def test_a_pass_over_one_namespace_leaves_the_others_alone() -> None:
    book = Book()
    other = IncidentSignal(
        cause="StateMismatch:prod/btc",
        severity=1,
        rule="StateMismatch",
        namespace="prod",
        objects=("Strategy/btc",),
        message="m",
        runbook="runbooks/state-mismatch.md",
        detected_at=T0,
    )
    book.run([signal(), other], T0)
    assert book.run([], T0 + timedelta(seconds=1), namespaces=["trading"]) == [
        ("StateMismatch:trading/btc", Change.CLEARED)
    ]
