from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slsbot.api.health import Notifications
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.incidents import Incident, fold_signals
from slsbot.domain.notification_plan import NotificationState, plan_notifications

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = Notifications.model_validate(
    {
        "receivers": [
            {"name": "pager", "type": "alertmanager", "urlSecretRef": {"name": "hooks", "key": "am"}, "minSeverity": 1},
            {"name": "chat", "type": "slack", "urlSecretRef": {"name": "hooks", "key": "slack"}, "minSeverity": 3},
        ],
        "groupWait": "30s",
        "groupInterval": "5m",
        "repeatInterval": "4h",
        "maxPerHour": 20,
    }
)


def down(bot: int, at: datetime, severity: int = 1) -> IncidentSignal:
    rule = "ConnectionLost" if severity == 1 else "Slippage"
    return IncidentSignal(
        cause=f"{rule}:trading/bot-{bot}",
        severity=severity,
        rule=rule,
        namespace="trading",
        objects=(f"Strategy/bot-{bot}",),
        message="exchange connection lost",
        runbook="runbooks/connection-lost.md",
        detected_at=at,
    )


def simulate(seconds: int, signals_at, settings: Notifications = SETTINGS):
    """One pass a second: fold the signals into incidents, then plan the messages."""
    incidents: dict[str, Incident] = {}
    state = NotificationState()
    sent = []
    for second in range(seconds):
        now = T0 + timedelta(seconds=second)
        active = [i for i in incidents.values() if i.active]
        for change in fold_signals(active, signals_at(second, now), now, recover_after={}):
            incidents[change.incident.id] = change.incident
        state, messages = plan_notifications(state, list(incidents.values()), lambda _ns: settings, now)
        sent.extend((second, m) for m in messages)
    return sent, incidents


def test_an_outage_of_50_bots_sends_a_handful_of_messages() -> None:
    # 50 bots lose the exchange within 90 s (one more every 1.8 s), stay down 20 minutes, then recover; 5 of them
    # also slip (severity 3). Two hours are simulated, one pass a second.
    def signals_at(second: int, now: datetime) -> list[IncidentSignal]:
        if second >= 20 * 60 + 90:
            return []
        out = [down(b, now) for b in range(50) if second >= b * 1.8]
        out += [down(b, now, severity=3) for b in range(5) if second >= b * 1.8]
        return out

    sent, incidents = simulate(2 * 3600, signals_at)
    print(f"\n50-bot outage: {len(incidents)} incidents, {len(sent)} messages:")
    for second, m in sent:
        print(f"  t={second:>5}s {m.receiver.name:<6} {m.title} resolved={len(m.resolved_ids)} repeat={m.repeat}")
    assert len(incidents) == 55
    # pager (severity 1 only): first batch after groupWait, the rest after groupInterval, resolved after the
    # outage: 3. chat (all severities): the same 3 for severity 1, and for severity 3 (all 5 down within groupWait)
    # one batch and one resolved: 5. 8 messages for 55 incidents.
    assert len(sent) == 8
    assert [second for second, m in sent if m.receiver.name == "pager"] == [30, 330, 20 * 60 + 90 + 120]
    first = sent[0][1]
    assert len(first.firing) == 17  # bots 0..16 were down by t=30 s
    second_batch = next(m for second, m in sent if second == 330 and m.receiver.name == "pager")
    assert len(second_batch.firing) == 50
    resolved = next(m for second, m in sent if m.receiver.name == "pager" and not m.firing)
    assert len(resolved.resolved_ids) == 50
    assert all(i.status.state == "resolved" for i in incidents.values())


def test_a_group_still_open_repeats_after_repeat_interval() -> None:
    sent, _ = simulate(5 * 3600, lambda second, now: [down(1, now)])
    pager = [(second, m.repeat) for second, m in sent if m.receiver.name == "pager"]
    assert pager == [(30, False), (30 + 4 * 3600, True)]


def test_the_hourly_limit_holds_messages_back_until_it_allows() -> None:
    tight = SETTINGS.model_copy(update={"max_per_hour": 2, "group_interval": "1m"})

    # A new severity-1 incident every 2 minutes in a new namespace: each is its own group.
    def signals_at(second: int, now: datetime) -> list[IncidentSignal]:
        return [
            IncidentSignal(
                cause=f"StateMismatch:ns-{k}/bot",
                severity=1,
                rule="StateMismatch",
                namespace=f"ns-{k}",
                objects=("Strategy/bot",),
                message="m",
                runbook="runbooks/state-mismatch.md",
                detected_at=now,
            )
            for k in range(second // 120 + 1)
        ]

    sent, _ = simulate(3 * 3600, signals_at, tight)
    times = sorted(second for second, _ in sent)
    for i, t in enumerate(times):
        assert sum(1 for other in times[: i + 1] if t - other < 3600) <= 2
    assert len(times) >= 4  # it keeps sending as the window moves on
