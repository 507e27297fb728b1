"""The post-mortem bundle of an incident: one JSON document with everything a person needs to write the
post-mortem (runbooks/postmortem-template.md). Pure: the caller gathers the pieces.

``fit_bundle`` caps a bundle's size for a store that has a limit (a ConfigMap holds at most 1 MiB): the oldest
Events go first, then each runtime's oldest orders, then the runtimes' last statuses (their risk decisions are
kept), and the bundle's ``truncated`` block says what went and why."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from slsbot.domain.incidents import Incident

BUNDLE_VERSION = 1
#: Keys of a runtime's /status that describe its risk decisions.
RISK_KEYS = ("risk", "breaker", "breaker_level", "trading_mode", "trading_mode_reason", "headroom", "idle_reason")


def postmortem_bundle(
    incident: Incident,
    *,
    runtime_status: Mapping[str, Mapping[str, Any] | None],
    orders: Mapping[str, Sequence[Mapping[str, Any]]],
    events: Sequence[Mapping[str, Any]],
    generated_at: datetime,
    unreachable: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``runtime_status`` and ``orders`` are keyed by the incident's objects ("Strategy/name"); ``events`` are the
    Events of those objects, newest first. ``unreachable``: why a runtime's status or orders could not be read, by
    object (its ``lastStatus`` is then null and the reason is the runtime's ``unreachable``)."""
    unreachable = unreachable or {}
    return {
        "bundleVersion": BUNDLE_VERSION,
        "generatedAt": generated_at.isoformat(),
        "template": "runbooks/postmortem-template.md",
        "incident": incident.model_dump(mode="json", by_alias=True, exclude_none=True),
        "runtimes": {
            obj: {
                "lastStatus": dict(status) if status is not None else None,
                "riskDecisions": {k: status[k] for k in RISK_KEYS if status is not None and k in status},
                "recentOrders": [dict(o) for o in orders.get(obj, ())],
                **({"unreachable": unreachable[obj]} if obj in unreachable else {}),
            }
            for obj, status in runtime_status.items()
        },
        "events": [dict(e) for e in events],
    }


def bundle_text(bundle: Mapping[str, Any]) -> str:
    """The bundle as stored: compact JSON, keys sorted (anything JSON does not know, e.g. a datetime, as text)."""
    return json.dumps(bundle, sort_keys=True, separators=(",", ":"), default=str)


def fit_bundle(bundle: Mapping[str, Any], *, max_bytes: int) -> tuple[dict[str, Any], str]:
    """The bundle and its text (``bundle_text``), at most ``max_bytes`` UTF-8 bytes when it can be. Past the limit
    the oldest Events are left out first (the list is newest first), then each runtime's oldest orders, then the
    runtimes' last statuses, each as few as needed. A cut bundle says so in ``truncated``: the limit, its size
    before, how many Events and orders and which statuses were left out, and why. The incident itself is always
    kept whole: a bundle whose incident alone is past the limit comes back over it (the store refuses it)."""
    text = bundle_text(bundle)
    size = _size(text)
    if size <= max_bytes:
        return dict(bundle), text
    events = list(bundle.get("events") or [])
    runtimes = {obj: dict(runtime) for obj, runtime in (bundle.get("runtimes") or {}).items()}
    note: dict[str, Any] = {
        "limitBytes": max_bytes,
        "bytesBefore": size,
        "why": "the store holds at most limitBytes: the oldest Events were left out first, then each runtime's "
        "oldest orders, then the runtimes' last statuses (their riskDecisions are kept)",
        "eventsLeftOut": 0,
        "ordersLeftOut": {},
        "statusesLeftOut": [],
    }
    fitted: dict[str, Any] = {**bundle, "runtimes": runtimes, "truncated": note}

    def fits() -> bool:
        return _size(bundle_text(fitted)) <= max_bytes

    # Each count is searched at its widest value, so the final (smaller) one never makes the text longer.
    note["eventsLeftOut"] = len(events)
    note["eventsLeftOut"] = _keep_newest(events, partial(fitted.__setitem__, "events"), fits)
    for obj, runtime in runtimes.items():
        if fits():
            break
        orders = list(runtime.get("recentOrders") or [])
        note["ordersLeftOut"][obj] = len(orders)
        left_out = _keep_newest(orders, partial(runtime.__setitem__, "recentOrders"), fits)
        if left_out:
            note["ordersLeftOut"][obj] = left_out
        else:
            del note["ordersLeftOut"][obj]
    for obj, runtime in runtimes.items():
        if fits():
            break
        if runtime.get("lastStatus") is not None:
            runtime["lastStatus"] = None
            note["statusesLeftOut"].append(obj)
    return fitted, bundle_text(fitted)


def _keep_newest(items: list[Any], put: Callable[[list[Any]], None], fits: Callable[[], bool]) -> int:
    """Put the most of ``items`` (newest first: a head of the list) with which the bundle still ``fits`` (none if
    even that does not); returns how many were left out. Fitting is monotone in how many are kept, so a binary
    search measures about log2(len(items)) sizes."""

    def trial(keep: int) -> bool:
        put(items[:keep])
        return fits()

    if trial(len(items)):
        return 0
    low, high = 0, len(items) - 1  # the most that fit is in [low, high] (or none fit, and it is 0)
    while low < high:
        middle = (low + high + 1) // 2
        if trial(middle):
            low = middle
        else:
            high = middle - 1
    trial(low)
    return len(items) - low


def _size(text: str) -> int:
    return len(text.encode())
