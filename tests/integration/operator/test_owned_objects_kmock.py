"""``KubernetesOwnedObjects`` (the operator's ``OwnedObjects``) against the Kubernetes API emulator over HTTP: owned
objects carry an ownerReference to their Experiment, someone else's object is never touched, a replaced spec loses
the keys the new one lacks, and deletion is idempotent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from slsbot.adapters.kubernetes.client import KubernetesApi, load_client_configuration, resource_path
from slsbot.adapters.kubernetes.owned import KubernetesOwnedObjects, merge_patch
from slsbot.api import Experiment, Strategy, parse_resource
from slsbot.domain.errors import ConflictError
from slsbot.testing.kube_emulator import ClusterEmulator

from .conftest import NAMESPACE

pytestmark = pytest.mark.integration


def strategy(name: str, params: dict[str, Any]) -> Strategy:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": params}]},
            },
        }
    )


def experiment_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": "tuning",
            "strategyRef": {"name": "btc"},
            "searchSpace": [{"name": "sma.fast", "type": "int", "low": 5, "high": 30}],
        },
    }


def test_merge_patch_removes_what_the_new_document_lacks():
    old = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}
    new = {"a": 1, "b": {"c": 2}, "e": [1], "f": True}
    assert merge_patch(old, new) == {"b": {"d": None}, "e": [1], "f": True}
    assert merge_patch(new, new) == {}


async def test_owned_objects_on_the_emulated_cluster(cluster: ClusterEmulator, kubeconfig: Path) -> None:
    api = KubernetesApi(load_client_configuration(kubeconfig=str(kubeconfig), context=None))
    owned = KubernetesOwnedObjects(api)
    experiments = resource_path("slsbot.io", "v1alpha1", "experiments", namespace=NAMESPACE)
    strategies = resource_path("slsbot.io", "v1alpha1", "strategies", namespace=NAMESPACE)

    def scenario() -> None:
        created = api.create(experiments, experiment_body("tune"))
        owner = Experiment.model_validate(created)
        owned.apply_owned(strategy("btc-tune-r1", {"fast": 17, "slow": 40}), owner=owner)
        body = api.get(f"{strategies}/btc-tune-r1")
        (reference,) = body["metadata"]["ownerReferences"]
        assert reference == {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Experiment",
            "name": "tune",
            "uid": created["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        owned.apply_owned(strategy("btc-tune-r1", {"fast": 18}), owner=owner)  # its own: the spec is replaced
        params = api.get(f"{strategies}/btc-tune-r1")["spec"]["ensemble"]["members"][0]["params"]
        assert params == {"fast": 18}

        api.create(strategies, strategy("btc", {"fast": 10, "slow": 30}).to_wire())
        with pytest.raises(ConflictError, match=r"Strategy trading/btc exists and is not owned by Experiment/tune"):
            owned.apply_owned(strategy("btc", {"fast": 3}), owner=owner)
        assert api.get(f"{strategies}/btc")["spec"]["ensemble"]["members"][0]["params"] == {"fast": 10, "slow": 30}

        owned.replace_spec(strategy("btc", {"fast": 20}))  # a promotion: "slow" is gone from the new spec
        promoted = api.get(f"{strategies}/btc")
        assert promoted["spec"]["ensemble"]["members"][0]["params"] == {"fast": 20}
        assert promoted["metadata"]["generation"] == 2

        owned.delete("Strategy", NAMESPACE, "btc-tune-r1")
        owned.delete("Strategy", NAMESPACE, "btc-tune-r1")  # gone already: nothing to do
        assert api.find(f"{strategies}/btc-tune-r1") is None

    await asyncio.to_thread(scenario)
