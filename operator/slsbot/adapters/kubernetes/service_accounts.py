"""``KubernetesRuntimeServiceAccounts``: what the operator learns of the ServiceAccount a TradingAccount names for its
runtime pods (``credentials.vault.auth.serviceAccountName``): whether it exists, and its labels.

A metadata read (``KubernetesApi.find_metadata``), like the credentials Secret's: the operator needs only the label
``slsbot.io/runtime-service-account`` (``domain.admission``). deploy/operator grants ``get`` on serviceaccounts.
"""

from __future__ import annotations

from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.domain.admission import ServiceAccountSeen


class KubernetesRuntimeServiceAccounts:
    """Implements ``slsbot.domain.ports.RuntimeServiceAccounts`` over the Kubernetes API."""

    def __init__(self, api: KubernetesApi) -> None:
        self._api = api

    def seen(self, namespace: str, name: str) -> ServiceAccountSeen:
        metadata = self._api.find_metadata(resource_path("", "v1", "serviceaccounts", namespace=namespace, name=name))
        if metadata is None:
            return ServiceAccountSeen(exists=False)
        return ServiceAccountSeen(exists=True, labels=dict(metadata.get("labels") or {}))
