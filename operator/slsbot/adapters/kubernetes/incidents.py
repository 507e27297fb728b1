"""``slsbot.domain.ports.IncidentStore`` on a cluster: each incident is an ``Incident`` object (slsbot.io/v1alpha1)
in its namespace, named by its id, written only by the operator.

Why objects rather than the operator's memory or a ConfigMap: they survive an operator restart (and a move to another
node) with no volume; ``kubectl get incidents`` lists them with their severity, rule and state; RBAC decides who may
read them and who (only the operator's ServiceAccount, in deploy/operator) may write them; and they go with their
namespace. The state and severity are labels too (``slsbot.io/incident-state``, ``slsbot.io/severity``), so the
operator lists only the active ones.

Also ``SecretValues`` for notification receivers: one key of a Secret, read whole (its data is needed here, unlike a
credentials Secret, whose labels only the operator reads).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.api import API_VERSION, GROUP, VERSION
from slsbot.api.health import SecretKeyRef
from slsbot.api.incident import IncidentState
from slsbot.domain.errors import NotFoundError
from slsbot.domain.incidents import Incident

PLURAL = "incidents"
STATE_LABEL = "slsbot.io/incident-state"
SEVERITY_LABEL = "slsbot.io/severity"


def incident_body(incident: Incident) -> dict[str, Any]:
    """The Incident object for ``incident`` (its status is written through the status subresource)."""
    wire = incident.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {
        "apiVersion": API_VERSION,
        "kind": "Incident",
        "metadata": {"name": incident.id, "namespace": incident.namespace, "labels": _labels(incident)},
        "spec": wire["spec"],
    }


def incident_from(body: dict[str, Any]) -> Incident:
    meta = body.get("metadata") or {}
    return Incident.model_validate(
        {"id": meta["name"], "namespace": meta["namespace"], "spec": body["spec"], "status": body.get("status") or {}}
    )


def _labels(incident: Incident) -> dict[str, str]:
    return {STATE_LABEL: str(incident.status.state), SEVERITY_LABEL: str(incident.spec.severity)}


class KubernetesIncidentStore:
    """``namespaces``: the namespaces a namespaced operator serves (each listed on its own: its Role grants no more);
    None: every namespace, in one list."""

    def __init__(self, api: KubernetesApi, *, namespaces: list[str] | None = None) -> None:
        self._api = api
        self._namespaces = namespaces

    def active_incidents(self) -> list[Incident]:
        found = []
        for state in (IncidentState.OPEN, IncidentState.ACKNOWLEDGED):
            found += [i for i in self._list(label_selector={STATE_LABEL: state.value}) if i.state == state]
        return found

    def list_incidents(
        self, *, state: str | None = None, severity: int | None = None, namespace: str | None = None, limit: int = 500
    ) -> list[Incident]:
        selector = {}
        if state is not None:
            selector[STATE_LABEL] = state
        if severity is not None:
            selector[SEVERITY_LABEL] = str(severity)
        items = [
            i
            for i in self._list(label_selector=selector or None, namespace=namespace)
            if (state is None or i.state == state) and (severity is None or i.spec.severity == severity)
        ]  # the labels narrow the list on the server; the fields decide
        items.sort(key=lambda i: (i.status.opened_at, i.id), reverse=True)
        return items[:limit]

    def get_incident(self, incident_id: str) -> Incident:
        for incident in self._list(label_selector=None):
            if incident.id == incident_id:
                return incident
        raise NotFoundError(f"incident {incident_id[:64]!r} does not exist")

    def save_incident(self, incident: Incident) -> None:
        path = resource_path(GROUP, VERSION, PLURAL, namespace=incident.namespace, name=incident.id)
        status = incident.model_dump(mode="json", by_alias=True, exclude_none=True)["status"]
        if self._api.find(path) is None:
            collection = resource_path(GROUP, VERSION, PLURAL, namespace=incident.namespace)
            self._api.create(collection, incident_body(incident))
        else:
            self._api.patch(path, {"metadata": {"labels": _labels(incident)}})
        self._api.patch(f"{path}/status", {"status": status})

    def _list(self, *, label_selector: dict[str, str] | None, namespace: str | None = None) -> list[Incident]:
        if namespace is not None:
            wheres: list[str | None] = [namespace] if self._namespaces is None or namespace in self._namespaces else []
        else:
            wheres = [None] if self._namespaces is None else list(self._namespaces)
        found = []
        for where in wheres:
            path = resource_path(GROUP, VERSION, PLURAL, namespace=where)
            found += [incident_from(item) for item in self._api.list(path, label_selector=label_selector)]
        return found


class KubernetesSecretValues:
    """``SecretValues``: one key of a Secret in the receiver's namespace. Errors name the Secret and the key, never
    the value."""

    def __init__(self, api: KubernetesApi) -> None:
        self._api = api

    def read(self, namespace: str, ref: SecretKeyRef) -> str:
        body = self._api.find(resource_path("", "v1", "secrets", namespace=namespace, name=ref.name))
        if body is None:
            raise NotFoundError(f"Secret {namespace}/{ref.name} does not exist; create it with the key {ref.key}")
        encoded = (body.get("data") or {}).get(ref.key)
        if not isinstance(encoded, str):
            raise NotFoundError(f"Secret {namespace}/{ref.name} has no key {ref.key}")
        try:
            value = base64.b64decode(encoded, validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            raise NotFoundError(f"Secret {namespace}/{ref.name} key {ref.key} is not base64 text") from None
        if not value:
            raise NotFoundError(f"Secret {namespace}/{ref.name} key {ref.key} is empty")
        return value
