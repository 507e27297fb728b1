"""Which notification messages to send now: Alertmanager's grouping, pure.

Incidents are grouped by namespace and severity. A new group waits ``groupWait`` for more incidents before its first
message; after that a group sends at most once per ``groupInterval`` when its incidents changed (new ones, resolved
ones), and repeats itself every ``repeatInterval`` while it stays open. All messages together stay under
``maxPerHour``; what the limit holds back goes out when it allows. A receiver gets a group only when the group's
severity is at least its ``minSeverity`` (1 is the most severe). So an outage of 50 bots at once sends a message per
receiver and group, not 50.

``plan_notifications(state, incidents, settings, now)`` returns the messages and the state to pass next time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from slsbot.api.base import parse_duration
from slsbot.api.health import NotificationReceiver, Notifications
from slsbot.domain.incidents import Incident

GroupKey = tuple[str, int]  # (namespace, severity)


@dataclass(frozen=True, slots=True)
class GroupState:
    first_seen: datetime
    last_sent: datetime | None = None
    last_change_sent: datetime | None = None
    sent_ids: frozenset[str] = frozenset()  # the active incidents the last message listed


@dataclass(frozen=True, slots=True)
class NotificationState:
    groups: Mapping[GroupKey, GroupState] = field(default_factory=dict)
    sent_at: tuple[datetime, ...] = ()  # every message of the last hour


@dataclass(frozen=True, slots=True)
class Message:
    receiver: NotificationReceiver
    namespace: str
    severity: int
    firing: tuple[Incident, ...]
    resolved_ids: tuple[str, ...] = ()
    repeat: bool = False

    @property
    def title(self) -> str:
        label = {1: "critical", 2: "high", 3: "medium"}.get(self.severity, str(self.severity))
        if not self.firing:
            return f"[slsbot] {self.namespace}: severity {self.severity} ({label}) resolved"
        return f"[slsbot] {self.namespace}: {len(self.firing)} open severity {self.severity} ({label}) incident(s)"


def plan_notifications(
    state: NotificationState,
    incidents: Sequence[Incident],
    settings_for: Callable[[str], Notifications],
    now: datetime,
) -> tuple[NotificationState, list[Message]]:
    """The messages due ``now`` for the active ``incidents``, and the next state. ``settings_for(namespace)`` is the
    notifications config that covers a namespace (its RiskPolicies')."""
    firing: dict[GroupKey, list[Incident]] = {}
    for incident in incidents:
        if incident.active:
            firing.setdefault((incident.namespace, incident.spec.severity), []).append(incident)
    groups = dict(state.groups)
    sent_at = [t for t in state.sent_at if now - t < timedelta(hours=1)]
    messages: list[Message] = []
    for key in sorted(set(firing) | set(groups)):
        namespace, severity = key
        settings = settings_for(namespace)
        members = sorted(firing.get(key, []), key=lambda i: i.id)
        ids = frozenset(i.id for i in members)
        group = groups.get(key)
        if group is None:
            if not members:
                continue
            group = GroupState(first_seen=min(i.status.opened_at for i in members))
            groups[key] = group
        receivers = [r for r in settings.receivers if severity <= r.min_severity]
        due, repeat = _due(group, ids, settings, now)
        if not due:
            continue
        if not receivers:  # nobody to tell: the group is settled as if sent
            groups[key] = replace(group, last_sent=now, last_change_sent=now, sent_ids=ids)
        elif len(sent_at) + len(receivers) > settings.max_per_hour:
            continue  # held back by the hourly limit; goes out once it allows
        else:
            resolved = tuple(sorted(group.sent_ids - ids))
            for receiver in receivers:
                messages.append(Message(receiver, namespace, severity, tuple(members), resolved, repeat))
                sent_at.append(now)
            groups[key] = replace(
                group, last_sent=now, last_change_sent=group.last_change_sent if repeat else now, sent_ids=ids
            )
        if not members:
            del groups[key]
    return NotificationState(groups=groups, sent_at=tuple(sent_at)), messages


def _due(group: GroupState, ids: frozenset[str], settings: Notifications, now: datetime) -> tuple[bool, bool]:
    """(whether the group sends now, whether as a repeat)."""
    if group.last_sent is None:
        return bool(ids) and now - group.first_seen >= parse_duration(settings.group_wait), False
    if ids != group.sent_ids:
        changed_at = group.last_change_sent or group.last_sent
        return now - changed_at >= parse_duration(settings.group_interval), False
    if ids and now - group.last_sent >= parse_duration(settings.repeat_interval):
        return True, True
    return False, False


def merge_notifications(configs: Sequence[Notifications]) -> Notifications:
    """One namespace's notifications from its RiskPolicies' (in name order): every receiver once (the first of a
    name wins), the timings and the hourly limit of the first policy that has receivers."""
    receivers: dict[str, NotificationReceiver] = {}
    first: Notifications | None = None
    for config in configs:
        if config.receivers and first is None:
            first = config
        for receiver in config.receivers:
            receivers.setdefault(receiver.name, receiver)
    if first is None:
        return Notifications()
    return first.model_copy(update={"receivers": list(receivers.values())})
