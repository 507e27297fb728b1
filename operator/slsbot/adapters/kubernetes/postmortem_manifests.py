"""Pure builder of the ConfigMap that keeps an incident's post-mortem bundle on a cluster. No I/O: dicts in, dicts out.

- Named ``slsbot-postmortem-<incident id>``, in the incident's namespace, the bundle as JSON text under the key
  ``bundle.json`` (``kubectl get configmap NAME -o jsonpath='{.data.bundle\\.json}'``).
- Immutable: written once, when the incident is resolved; a second write finds it there and leaves it.
- Owned by the Incident object (``ownerReferences``, without ``blockOwnerDeletion``, which would need ``update`` on
  ``incidents/finalizers``): deleting the Incident deletes its bundle.
- Labelled ``app.kubernetes.io/name: slsbot-postmortem`` and with the incident's id and severity, so
  ``kubectl get configmaps -l app.kubernetes.io/name=slsbot-postmortem`` lists them.
- A ConfigMap holds at most 1 MiB of data: the bundle is cut to ``BUNDLE_LIMIT_BYTES`` first (``fit_bundle``), which
  leaves room below the API server's own limit for the object's metadata.
"""

from __future__ import annotations

from slsbot.adapters.kubernetes.job_pods import MANAGED_BY, Manifest, shortened_name
from slsbot.api import API_VERSION
from slsbot.domain.incidents import Incident

POSTMORTEM_PREFIX = "slsbot-postmortem-"
BUNDLE_KEY = "bundle.json"
LABEL_INCIDENT = "slsbot.io/incident"
LABEL_SEVERITY = "slsbot.io/severity"
#: A ConfigMap's data may hold 1 MiB (1,048,576 bytes); the bundle is kept below that.
BUNDLE_LIMIT_BYTES = 1_000_000
NAME_LIMIT = 253  # a ConfigMap's name is a DNS subdomain
LABEL_VALUE_LIMIT = 63


def postmortem_configmap_name(incident_id: str) -> str:
    return shortened_name(f"{POSTMORTEM_PREFIX}{incident_id}", NAME_LIMIT)


def build_postmortem_configmap(incident: Incident, *, incident_uid: str, bundle_text: str) -> Manifest:
    """The ConfigMap holding ``bundle_text`` (already cut to ``BUNDLE_LIMIT_BYTES``), owned by the Incident object
    whose uid is ``incident_uid``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": postmortem_configmap_name(incident.id),
            "namespace": incident.namespace,
            "labels": {
                "app.kubernetes.io/name": "slsbot-postmortem",
                "app.kubernetes.io/part-of": "slsbot",
                "app.kubernetes.io/managed-by": MANAGED_BY,
                LABEL_INCIDENT: shortened_name(incident.id, LABEL_VALUE_LIMIT),
                LABEL_SEVERITY: str(incident.spec.severity),
            },
            "ownerReferences": [
                {"apiVersion": API_VERSION, "kind": "Incident", "name": incident.id, "uid": incident_uid}
            ],
        },
        "immutable": True,  # written once: the bundle as it was when the incident was resolved
        "data": {BUNDLE_KEY: bundle_text},
    }
