"""``KubernetesCredentialSecrets``: what the operator learns of a Secret that a TradingAccount names as credentials.

It reads metadata only (``KubernetesApi.find_metadata``: a ``PartialObjectMetadata`` request, of which it keeps the
name and labels), so no credential ever enters the operator. RBAC cannot tell a metadata read from a full one: the
``get`` on secrets that deploy/operator grants for this would let a changed operator read the data; this code never
asks for it.

The operator's own Secrets are refused by name, whatever their labels: every runtime's control-token Secret
(``slsbot-runtime-<strategy>-control``) and the operator's control key (``slsbot-operator-control-key``).
"""

from __future__ import annotations

from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.adapters.kubernetes.manifests import CONTROL_SECRET_SUFFIX, RUNTIME_PREFIX
from slsbot.domain.admission import SecretSeen

OPERATOR_CONTROL_KEY_SECRET = "slsbot-operator-control-key"  # noqa: S105 - a Secret's name, not a secret


def is_operators_own_secret(name: str) -> bool:
    return name == OPERATOR_CONTROL_KEY_SECRET or (
        name.startswith(RUNTIME_PREFIX) and name.endswith(CONTROL_SECRET_SUFFIX)
    )


class KubernetesCredentialSecrets:
    """Implements ``slsbot.domain.ports.CredentialSecrets`` over the Kubernetes API."""

    def __init__(self, api: KubernetesApi) -> None:
        self._api = api

    def operators_own(self, name: str) -> bool:
        return is_operators_own_secret(name)

    def seen(self, namespace: str, name: str) -> SecretSeen:
        metadata = self._api.find_metadata(resource_path("", "v1", "secrets", namespace=namespace, name=name))
        if metadata is None:
            return SecretSeen(exists=False)
        return SecretSeen(exists=True, labels=dict(metadata.get("labels") or {}))
