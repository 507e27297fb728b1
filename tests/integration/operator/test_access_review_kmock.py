"""``AccessReviews`` (TokenReview and SubjectAccessReview) against the emulator, whose RBAC answers come from the Role,
ClusterRole and binding objects stored in it: cached per token for the TTL, then asked again (a revoked binding
stops working), a RoleBinding grants in its namespace only, a ServiceAccount is a subject, and a review that cannot be
made is BackendUnavailable without the token in its message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.fakes.test_secrets import ACCESS_REVIEW_ALICE_TOKEN as ALICE_TOKEN
from tests.fakes.test_secrets import ACCESS_REVIEW_ROBOT_TOKEN as ROBOT_TOKEN

from slsbot.adapters.kubernetes.access_review import AccessQuestion, AccessReviews
from slsbot.adapters.kubernetes.client import KubernetesApi, load_client_configuration, resource_path
from slsbot.domain.errors import BackendUnavailable

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

RBAC = "rbac.authorization.k8s.io"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def post(cluster: Any, path: str, body: dict[str, Any]) -> None:
    async with cluster.request("POST", path, json=body) as response:
        assert response.status < 300, await response.text()


async def delete(cluster: Any, path: str) -> None:
    async with cluster.request("DELETE", path) as response:
        assert response.status < 300, await response.text()


def binding(kind: str, name: str, role_kind: str, role: str, subject: dict[str, Any], namespace: str | None = None):
    meta: dict[str, Any] = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": [subject],
    }


async def test_reviews_are_cached_per_token_follow_rbac_objects_and_fail_as_unavailable(cluster, kubeconfig):
    cluster.users[ALICE_TOKEN] = ("alice", ["traders"])
    cluster.users[ROBOT_TOKEN] = ("system:serviceaccount:trading:robot", ["system:serviceaccounts"])
    reader = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": ["slsbot.io"], "resources": ["strategies"], "verbs": ["get", "list"]}],
    }
    await post(cluster, resource_path(RBAC, "v1", "clusterroles"), reader)
    await post(
        cluster,
        resource_path(RBAC, "v1", "clusterrolebindings"),
        binding("ClusterRoleBinding", "traders-read", "ClusterRole", "reader", {"kind": "Group", "name": "traders"}),
    )
    patcher = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": "patcher", "namespace": "trading"},
        "rules": [{"apiGroups": ["slsbot.io"], "resources": ["strategies"], "verbs": ["patch"]}],
    }
    await post(cluster, resource_path(RBAC, "v1", "roles", namespace="trading"), patcher)
    robot = {"kind": "ServiceAccount", "name": "robot", "namespace": "trading"}
    await post(
        cluster,
        resource_path(RBAC, "v1", "rolebindings", namespace="trading"),
        binding("RoleBinding", "robot-patch", "Role", "patcher", robot, namespace="trading"),
    )
    clock = Clock()
    api = KubernetesApi(load_client_configuration(kubeconfig=str(kubeconfig), context=None), timeout=5)
    reviews = AccessReviews(api, ttl=10.0, clock=clock)
    try:
        alice = await asyncio.to_thread(reviews.authenticate, ALICE_TOKEN)
        assert alice is not None and alice.username == "alice" and "traders" in alice.groups
        assert await asyncio.to_thread(reviews.authenticate, "it-k8s-unknown-token") is None

        listing = AccessQuestion(verb="list", resource="strategies")
        allowed = await asyncio.to_thread(reviews.check, ALICE_TOKEN, alice, listing)
        assert allowed.allowed and 'ClusterRoleBinding "traders-read"' in allowed.reason
        patching = AccessQuestion(verb="patch", resource="strategies", namespace="trading")
        assert not (await asyncio.to_thread(reviews.check, ALICE_TOKEN, alice, patching)).allowed

        # The robot's RoleBinding grants patch in its namespace, not in another, nor cluster-wide.
        robot_user = await asyncio.to_thread(reviews.authenticate, ROBOT_TOKEN)
        assert robot_user is not None
        assert (await asyncio.to_thread(reviews.check, ROBOT_TOKEN, robot_user, patching)).allowed
        elsewhere = AccessQuestion(verb="patch", resource="strategies", namespace="research")
        assert not (await asyncio.to_thread(reviews.check, ROBOT_TOKEN, robot_user, elsewhere)).allowed
        assert not (
            await asyncio.to_thread(reviews.check, ROBOT_TOKEN, robot_user, AccessQuestion("patch", "strategies"))
        ).allowed

        # Within the TTL the answers are kept: no new review, even once the binding is gone...
        asked = cluster.calls["tokenreviews", "create"], cluster.calls["subjectaccessreviews", "create"]
        await delete(cluster, resource_path(RBAC, "v1", "clusterrolebindings", name="traders-read"))
        assert await asyncio.to_thread(reviews.authenticate, ALICE_TOKEN) == alice
        assert (await asyncio.to_thread(reviews.check, ALICE_TOKEN, alice, listing)).allowed
        assert (cluster.calls["tokenreviews", "create"], cluster.calls["subjectaccessreviews", "create"]) == asked
        # ...and after it, asked again: the revoked binding no longer allows.
        clock.now += 10.5
        assert not (await asyncio.to_thread(reviews.check, ALICE_TOKEN, alice, listing)).allowed
        assert cluster.calls["subjectaccessreviews", "create"] == asked[1] + 1

        # A review that cannot be made: BackendUnavailable, naming the review and the fix, never the token.
        cluster.reviews_available = False
        with pytest.raises(BackendUnavailable) as caught:
            await asyncio.to_thread(reviews.authenticate, ROBOT_TOKEN + "-new")
        assert "TokenReview" in str(caught.value) and "system:auth-delegator" in str(caught.value)
        assert ROBOT_TOKEN not in str(caught.value)
    finally:
        api.close()
