"""What the operator learns of the ServiceAccount an account names for its runtime pods: whether it exists, its
labels, from a metadata read."""

from __future__ import annotations

from typing import Any

from slsbot.adapters.kubernetes.service_accounts import KubernetesRuntimeServiceAccounts
from slsbot.domain.admission import ServiceAccountSeen


class MetadataApi:
    """The one KubernetesApi call the adapter makes, over a dict of metadata keyed by path."""

    def __init__(self, metadata: dict[str, dict[str, Any]]) -> None:
        self.metadata = metadata
        self.paths: list[str] = []

    def find_metadata(self, path: str) -> dict[str, Any] | None:
        self.paths.append(path)
        return self.metadata.get(path)


def test_a_service_account_is_seen_by_its_labels_from_a_metadata_read():
    path = "/api/v1/namespaces/trading/serviceaccounts/binance-runtime"
    labels = {"slsbot.io/runtime-service-account": "true"}
    api = MetadataApi(
        {
            path: {"name": "binance-runtime", "labels": labels},
            "/api/v1/namespaces/trading/serviceaccounts/bare": {"name": "bare"},
        }
    )
    accounts = KubernetesRuntimeServiceAccounts(api)  # type: ignore[arg-type]
    assert accounts.seen("trading", "binance-runtime") == ServiceAccountSeen(exists=True, labels=labels)
    assert accounts.seen("trading", "bare") == ServiceAccountSeen(exists=True, labels={})
    assert accounts.seen("trading", "nope") == ServiceAccountSeen(exists=False)
    assert api.paths == [
        path,
        "/api/v1/namespaces/trading/serviceaccounts/bare",
        "/api/v1/namespaces/trading/serviceaccounts/nope",
    ]
