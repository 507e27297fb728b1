"""Post-mortem bundles on a cluster: ``services.incidents.PostmortemArchive`` for the operator's incidents and the
read the admin API serves (``GET /api/v1/incidents/{id}/postmortem``).

The bundle is built from the cluster, as the admin API reads it: each involved Strategy's runtime answers its
``/status`` and ``/orders`` through its Service with its control token (``KubernetesRuntimeBackend``), and the Events
are the core/v1 Events of the incident's objects (``admin_data.slsbot_events``). A runtime that does not answer
leaves its ``lastStatus`` null with the reason in its ``unreachable``; it never fails the resolve.

It is kept in a ConfigMap ``slsbot-postmortem-<id>`` in the incident's namespace, owned by the Incident object
(``postmortem_manifests``). Why a ConfigMap: the operator's state folder is an emptyDir, lost on a restart, and the
operator holds no volume of its own; an object in the API server survives a restart or a move to another node, goes
with its Incident (owner reference), is read with ``kubectl`` by whoever RBAC lets read ConfigMaps in the namespace,
and costs no new resource type. Its limit, 1 MiB, is met by cutting the bundle (``domain.postmortem.fit_bundle``),
which says so in its ``truncated`` block. It is written once, when the incident is resolved: a second write (a
replayed resolve, a restarted operator) finds it there and leaves it. The operator needs ``get`` and ``create`` on
configmaps and ``list`` on events.

Every call blocks: the incidents service calls ``write`` in the operator's handler threads, the admin API's route
calls ``read`` in its worker threads.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from slsbot.adapters.kubernetes.admin_data import slsbot_events
from slsbot.adapters.kubernetes.backend import KubernetesRuntimeBackend
from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.adapters.kubernetes.incidents import PLURAL as INCIDENTS
from slsbot.adapters.kubernetes.postmortem_manifests import (
    BUNDLE_KEY,
    BUNDLE_LIMIT_BYTES,
    build_postmortem_configmap,
    postmortem_configmap_name,
)
from slsbot.api import GROUP, VERSION
from slsbot.domain.errors import ConflictError, NotFoundError, SlsbotError
from slsbot.domain.incidents import Incident
from slsbot.domain.postmortem import fit_bundle, postmortem_bundle

log = logging.getLogger(__name__)
RECENT_ORDERS = 100
RECENT_EVENTS = 200


class KubernetesPostmortems:
    def __init__(
        self,
        api: KubernetesApi,
        backend: KubernetesRuntimeBackend,
        *,
        limit_bytes: int = BUNDLE_LIMIT_BYTES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._backend = backend
        self._limit_bytes = limit_bytes
        self._clock = clock

    def build(self, incident: Incident) -> dict[str, Any]:
        """The bundle as the cluster shows it now (uncut)."""
        statuses: dict[str, dict[str, Any] | None] = {}
        orders: dict[str, list[dict[str, Any]]] = {}
        unreachable: dict[str, str] = {}
        events: list[dict[str, Any]] = []
        # the namespace's slsbot Events, listed once for all of the incident's objects (newest first)
        listed = slsbot_events(self._api, [incident.namespace], name=None, limit=sys.maxsize)
        for obj in incident.spec.objects:
            kind, _, name = obj.partition("/")
            if kind == "Strategy":
                statuses[obj], orders[obj], reason = self._runtime(incident.namespace, name)
                if reason is not None:
                    unreachable[obj] = reason
            own = [entry for entry in listed if entry.name == name]  # the newest RECENT_EVENTS of that name...
            for entry in own[:RECENT_EVENTS]:
                if entry.kind == kind:  # ...of its kind
                    event = asdict(entry)
                    del event["id"]
                    event["first_seen"] = entry.first_seen.isoformat()
                    event["last_seen"] = entry.last_seen.isoformat()
                    events.append(event)
        events.sort(key=lambda e: e["last_seen"], reverse=True)
        return postmortem_bundle(
            incident,
            runtime_status=statuses,
            orders=orders,
            events=events,
            generated_at=self._clock(),
            unreachable=unreachable,
        )

    def _runtime(self, namespace: str, name: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]], str | None]:
        """The runtime's status and recent orders, or why they could not be read. A runtime that does not answer its
        status is not asked its orders (the resolve waits for one timeout, not two)."""
        try:
            status = self._backend.runtime_status(namespace, name)
        except SlsbotError as exc:
            return None, [], f"its /status could not be read, nor its orders: {exc}"
        try:
            return status, self._backend.orders(namespace, name, limit=RECENT_ORDERS), None
        except SlsbotError as exc:
            return status, [], f"its /orders could not be read: {exc}"

    def write(self, incident: Incident) -> None:
        """Build the bundle and keep it in the incident's ConfigMap, unless one is there already. Raises
        NotFoundError when the Incident object is gone (nothing would own the bundle), and the API's errors."""
        path = self._configmap_path(incident)
        if self._api.find_metadata(path) is not None:
            log.info("the post-mortem bundle of incident %s is kept already", incident.id)
            return
        owner = self._api.find_metadata(
            resource_path(GROUP, VERSION, INCIDENTS, namespace=incident.namespace, name=incident.id)
        )
        if owner is None or not owner.get("uid"):
            raise NotFoundError(f"Incident {incident.namespace}/{incident.id} does not exist; its bundle is not kept")
        bundle, text = fit_bundle(self.build(incident), max_bytes=self._limit_bytes)
        if "truncated" in bundle:
            log.warning(
                "the post-mortem bundle of incident %s is cut to %d bytes: %s",
                incident.id,
                self._limit_bytes,
                {k: v for k, v in bundle["truncated"].items() if k != "why"},
            )
        manifest = build_postmortem_configmap(incident, incident_uid=str(owner["uid"]), bundle_text=text)
        try:
            self._api.create(resource_path("", "v1", "configmaps", namespace=incident.namespace), manifest)
        except ConflictError:  # written meanwhile (another resolve of the same incident): the first one stays
            log.info("the post-mortem bundle of incident %s was kept meanwhile", incident.id)

    def read(self, incident: Incident) -> dict[str, Any]:
        """The kept bundle, or one built now (an incident not resolved yet, of severity 3, or whose bundle could not
        be written)."""
        body = self._api.find(self._configmap_path(incident))
        text = ((body or {}).get("data") or {}).get(BUNDLE_KEY)
        if isinstance(text, str):
            try:
                stored = json.loads(text)
            except ValueError:
                log.warning("the ConfigMap of incident %s holds no JSON bundle; building one now", incident.id)
            else:
                if isinstance(stored, dict):
                    return stored
        return self.build(incident)

    @staticmethod
    def _configmap_path(incident: Incident) -> str:
        name = postmortem_configmap_name(incident.id)
        return resource_path("", "v1", "configmaps", namespace=incident.namespace, name=name)
