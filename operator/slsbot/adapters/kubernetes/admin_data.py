"""``AdminData`` over a cluster's objects: what ``slsbot operator --admin-api-port`` serves.

Strategies, Experiments, TradingAccounts and RiskPolicies are read from the API server; pause and resume patch the
Strategy's ``spec.paused``, the kill switch a RiskPolicy's ``spec.killSwitch``, and an A/B Experiment's controls its
``spec.promote``/``abort``/``paused`` (a JSON merge patch, as
``kubectl patch --type merge`` would), which the operator's handlers then act on. A runtime is reached through its
Service (``KubernetesRuntimeBackend``: URL and control token). Events are the core/v1 Events involving slsbot objects.
Every call runs in a worker thread: the client blocks.

``namespaces``: the namespaces a namespaced operator serves (each listed on its own: its Role grants no more);
None: every namespace.

A runtime's ``/status`` is kept for ``status_ttl_seconds`` (2 s): the Control Center's fleet and accounts views ask
for every runtime's on each poll, and several open pages would otherwise each cost one Service read and one HTTP call
per bot. A pause or resume through the API forgets that Strategy's, so the next read shows it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cachetools import TTLCache

from slsbot.adapters.kubernetes.backend import KubernetesRuntimeBackend
from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.api import GROUP, KINDS, VERSION
from slsbot.domain.admin_data import (
    EXPERIMENT_CONTROLS,
    AdminObject,
    EventEntry,
    RuntimeActivity,
    RuntimeOrders,
    RuntimeView,
)
from slsbot.domain.errors import RuntimeUnreachable, SlsbotError
from slsbot.domain.timestamps import aware_time

log = logging.getLogger(__name__)
KEPT_METADATA = ("name", "namespace", "labels", "annotations")
STATUS_TTL_SECONDS = 2.0
STATUS_CACHE_SIZE = 4096  # runtimes whose status is kept at once (far more than one operator runs)


def admin_object(body: dict[str, Any]) -> AdminObject:
    """The API server's object as the admin API's views read it (metadata trimmed to what a manifest holds)."""
    meta = body.get("metadata") or {}
    owners = meta.get("ownerReferences") or []
    owner = f"{owners[0].get('kind')}/{owners[0].get('name')}" if owners else None
    return AdminObject(
        kind=str(body.get("kind")),
        namespace=str(meta.get("namespace")),
        name=str(meta.get("name")),
        document={
            "apiVersion": body.get("apiVersion", f"{GROUP}/{VERSION}"),
            "kind": body.get("kind"),
            "metadata": {key: meta[key] for key in KEPT_METADATA if key in meta},
            "spec": body.get("spec") or {},
        },
        status=body.get("status"),
        generation=int(meta.get("generation") or 1),
        created_at=aware_time(meta.get("creationTimestamp"), naive_is_utc=True) or datetime.now(UTC),
        deleting=bool(meta.get("deletionTimestamp")),
        owner=owner,
    )


class KubernetesAdminData:
    def __init__(
        self,
        api: KubernetesApi,
        backend: KubernetesRuntimeBackend,
        *,
        namespaces: list[str] | None = None,
        status_ttl_seconds: float = STATUS_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._backend = backend
        self._namespaces = namespaces
        #: (namespace, name) -> the runtime's last /status, or None when it did not answer (also kept: a down
        #: runtime is not asked again by every poll). Read and written on the admin API's event loop only.
        self._statuses: TTLCache[tuple[str, str], dict[str, Any] | None] = TTLCache(
            STATUS_CACHE_SIZE, status_ttl_seconds, timer=clock
        )

    async def objects(self, kind: str, *, namespace: str | None = None, name: str | None = None) -> list[AdminObject]:
        return await asyncio.to_thread(self._objects, kind, namespace, name)

    def _objects(self, kind: str, namespace: str | None, name: str | None) -> list[AdminObject]:
        plural = KINDS[kind].kind_info.plural
        found: list[AdminObject] = []
        for where in self._wheres(namespace):
            if name is not None and where is not None:
                body = self._api.find(resource_path(GROUP, VERSION, plural, namespace=where, name=name))
                bodies = [body] if body is not None else []
            else:
                bodies = self._api.list(resource_path(GROUP, VERSION, plural, namespace=where))
            for body in bodies:
                body.setdefault("kind", kind)  # a list's items may leave it out
                item = admin_object(body)
                if name is None or item.name == name:
                    found.append(item)
        return sorted(found, key=lambda o: (o.namespace, o.name))

    async def runtimes(self, strategies: list[AdminObject]) -> dict[tuple[str, str], RuntimeView]:
        """Nothing beyond the Strategy's status: a pod's process id means nothing outside it."""
        return {}

    async def runtime_statuses(self, strategies: list[AdminObject]) -> dict[tuple[str, str], dict[str, Any]]:
        """Each running runtime's ``/status``, asked at most once per ``status_ttl_seconds`` (the asks that are due
        run at the same time)."""
        cache = self._statuses
        kept = {key: cache[key] for s in strategies if (key := (s.namespace, s.name)) in cache}
        due = [s for s in strategies if (s.namespace, s.name) not in kept]
        answers = await asyncio.gather(*(asyncio.to_thread(self._status, s) for s in due))
        for strategy, answer in zip(due, answers, strict=True):
            kept[strategy.namespace, strategy.name] = cache[strategy.namespace, strategy.name] = answer
        return {key: answer for key, answer in kept.items() if answer is not None}

    def _status(self, strategy: AdminObject) -> dict[str, Any] | None:
        try:
            return self._backend.runtime_status(strategy.namespace, strategy.name)
        except SlsbotError as exc:  # not running, not reachable: not counted, as a runtime with no figures yet
            log.debug("no status from the runtime of %s/%s: %s", strategy.namespace, strategy.name, exc)
            return None

    async def orders(self, strategy: AdminObject, *, limit: int) -> RuntimeOrders:
        return RuntimeOrders(await self._ask_runtime(self._backend.orders, strategy, limit=limit))

    async def activity(self, strategy: AdminObject, *, limit: int) -> RuntimeActivity:
        return RuntimeActivity(await self._ask_runtime(self._backend.activity, strategy, limit=limit))

    async def _ask_runtime(self, ask: Callable[..., Any], strategy: AdminObject, *, limit: int) -> Any:
        """``ask``'s answer from the strategy's runtime (off the event loop). Raises RuntimeUnreachable, with the
        strategy's phase, when the runtime does not answer."""
        try:
            return await asyncio.to_thread(ask, strategy.namespace, strategy.name, limit=limit)
        except SlsbotError as exc:
            phase = (strategy.status or {}).get("phase", "Pending")
            raise RuntimeUnreachable(
                f"the runtime of Strategy {strategy.namespace}/{strategy.name} does not answer (phase {phase}): "
                f"{exc}; try again once the strategy is Running"
            ) from exc

    async def set_paused(self, strategy: AdminObject, paused: bool) -> AdminObject:
        self._statuses.pop((strategy.namespace, strategy.name), None)
        return await asyncio.to_thread(self._patch_spec, strategy, {"paused": paused})

    async def set_kill_switch(self, policy: AdminObject, on: bool) -> AdminObject:
        return await asyncio.to_thread(self._patch_spec, policy, {"killSwitch": on})

    async def set_experiment_control(self, experiment: AdminObject, control: str, value: bool) -> AdminObject:
        if control not in EXPERIMENT_CONTROLS:
            raise ValueError(f"{control!r} is not one of {', '.join(EXPERIMENT_CONTROLS)}")
        return await asyncio.to_thread(self._patch_spec, experiment, {control: value})

    def _patch_spec(self, target: AdminObject, spec: dict[str, Any]) -> AdminObject:
        plural = KINDS[target.kind].kind_info.plural
        path = resource_path(GROUP, VERSION, plural, namespace=target.namespace, name=target.name)
        body = self._api.patch(path, {"spec": spec})
        body.setdefault("kind", target.kind)
        return admin_object(body)

    async def events(self, *, namespace: str | None, name: str | None, limit: int) -> list[EventEntry]:
        return await asyncio.to_thread(self._events, namespace, name, limit)

    def _events(self, namespace: str | None, name: str | None, limit: int) -> list[EventEntry]:
        return slsbot_events(self._api, self._wheres(namespace), name=name, limit=limit)

    def _wheres(self, namespace: str | None) -> list[str | None]:
        if namespace is not None:
            return [namespace] if self._namespaces is None or namespace in self._namespaces else []
        return [None] if self._namespaces is None else list(self._namespaces)


def slsbot_events(
    api: KubernetesApi, namespaces: list[str | None], *, name: str | None, limit: int
) -> list[EventEntry]:
    """The newest ``limit`` core/v1 Events about slsbot objects (named ``name``, when given) in ``namespaces`` (None:
    every namespace), newest first. The operator needs ``list`` on events."""
    entries = []
    for where in namespaces:
        for index, body in enumerate(api.list(resource_path("", "v1", "events", namespace=where))):
            involved = body.get("involvedObject") or {}
            if not str(involved.get("apiVersion", "")).startswith(f"{GROUP}/"):
                continue
            if name is not None and involved.get("name") != name:
                continue
            entries.append(_event_entry(body, involved, index))
    entries.sort(key=lambda e: (e.last_seen, e.id), reverse=True)
    return entries[:limit]


def _event_entry(body: dict[str, Any], involved: dict[str, Any], index: int) -> EventEntry:
    meta = body.get("metadata") or {}
    first = aware_time(
        body.get("firstTimestamp") or body.get("eventTime") or meta.get("creationTimestamp"), naive_is_utc=True
    )
    first = first or datetime.now(UTC)
    version = str(meta.get("resourceVersion") or "")
    return EventEntry(
        id=int(version) if version.isdigit() else index,
        kind=str(involved.get("kind") or ""),
        namespace=str(involved.get("namespace") or meta.get("namespace") or ""),
        name=str(involved.get("name") or ""),
        type=str(body.get("type") or "Normal"),
        reason=str(body.get("reason") or ""),
        message=str(body.get("message") or ""),
        count=int(body.get("count") or 1),
        first_seen=first,
        last_seen=aware_time(body.get("lastTimestamp"), naive_is_utc=True) or first,
    )
