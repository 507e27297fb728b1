"""What the operator learns of a credentials Secret: whether it is one of the operator's own, and its labels."""

from __future__ import annotations

from typing import Any

import pytest

from slsbot.adapters.kubernetes.manifests import control_secret_name
from slsbot.adapters.kubernetes.secrets import KubernetesCredentialSecrets, is_operators_own_secret
from slsbot.domain.admission import SecretSeen


class MetadataApi:
    """The one KubernetesApi call the adapter makes, over a dict of metadata keyed by path."""

    def __init__(self, metadata: dict[str, dict[str, Any]]) -> None:
        self.metadata = metadata
        self.paths: list[str] = []

    def find_metadata(self, path: str) -> dict[str, Any] | None:
        self.paths.append(path)
        return self.metadata.get(path)


@pytest.mark.parametrize(
    "name",
    [
        "slsbot-operator-control-key",
        control_secret_name("btc-trend"),
        control_secret_name("a-very-long-strategy-name-that-is-shortened-with-a-hash-" + "x" * 20),
    ],
)
def test_the_operators_own_secrets_are_recognised_by_name(name):
    assert is_operators_own_secret(name)


@pytest.mark.parametrize("name", ["binance-keys", "slsbot-runtime-btc-trend", "control", "my-control"])
def test_other_names_are_not_the_operators(name):
    assert not is_operators_own_secret(name)


def test_a_secret_is_seen_by_its_labels_from_a_metadata_read():
    path = "/api/v1/namespaces/trading/secrets/keys"
    api = MetadataApi({path: {"name": "keys", "labels": {"slsbot.io/credentials": "true"}}})
    secrets = KubernetesCredentialSecrets(api)  # type: ignore[arg-type]
    assert secrets.seen("trading", "keys") == SecretSeen(exists=True, labels={"slsbot.io/credentials": "true"})
    assert secrets.seen("trading", "nope") == SecretSeen(exists=False)
    assert api.paths == [path, "/api/v1/namespaces/trading/secrets/nope"]
    assert secrets.operators_own("slsbot-operator-control-key") and not secrets.operators_own("keys")
