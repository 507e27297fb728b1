"""Kubernetes Events about slsbot objects (``kubectl describe strategy X`` shows them).

``build_event`` is pure. ``KubernetesEventRecorder`` posts them, leaving out an event that repeats the last one
posted for the same object within a window: a strategy waiting for its account every 10 s says so once, not
every 10 s. Messages come from the domain, which never puts a secret in one.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.domain.errors import SlsbotError

log = logging.getLogger(__name__)

COMPONENT = "slsbot-operator"
_MESSAGE_LIMIT = 1024


class EventLike(Protocol):
    type: str
    reason: str
    message: str


def build_event(
    involved: Mapping[str, Any], *, type: str, reason: str, message: str, now: datetime, sequence: int = 0
) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (a whole object as read from the API); ``sequence`` keeps the names of
    events built in the same nanosecond apart."""
    meta = involved["metadata"]
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{int(now.timestamp() * 1e9):x}{sequence:04x}",
            "namespace": meta["namespace"],
        },
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "type": type,
        "reason": reason,
        "message": message[:_MESSAGE_LIMIT],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class KubernetesEventRecorder:
    def __init__(
        self,
        api: KubernetesApi,
        *,
        repeat_after: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._repeat_after = repeat_after
        self._clock = clock
        self._last: dict[tuple[str, str, str], tuple[tuple[str, str, str], datetime]] = {}
        self._lock = threading.Lock()
        self._sequence = itertools.count()

    def record(self, involved: Mapping[str, Any], events: Iterable[EventLike]) -> int:
        """Post each event unless it repeats the previous one; returns how many were posted."""
        meta = involved["metadata"]
        key = (involved["kind"], meta["namespace"], meta["name"])
        posted = 0
        for event in events:
            now = self._clock()
            what = (event.type, event.reason, event.message)
            with self._lock:
                last = self._last.get(key)
                if last is not None and last[0] == what and now - last[1] < self._repeat_after:
                    continue
                self._last[key] = (what, now)
            body = build_event(
                involved,
                type=event.type,
                reason=event.reason,
                message=event.message,
                now=now,
                sequence=next(self._sequence) % 0x10000,
            )
            try:
                self._api.create(resource_path("", "v1", "events", namespace=meta["namespace"]), body)
                posted += 1
            except SlsbotError as exc:  # an event is worth a log line, never a failed reconcile
                log.warning("could not post event %s on %s %s/%s: %s", event.reason, *key, exc)
        return posted

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._last.pop((kind, namespace, name), None)
