"""deploy/operator (cluster-wide) and deploy/operator-namespaced (one namespace) agree with each other and with the
operator: the same rules, the same pod, probes on the endpoint the operator serves, and pod labels that the runtimes'
NetworkPolicies admit. tests/integration/operator/test_operator_rbac.py checks the rules against the requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from slsbot.interfaces.operator_settings import OperatorSettings

REPO = Path(__file__).resolve().parents[3]
CLUSTER = REPO / "deploy" / "operator"
NAMESPACED = REPO / "deploy" / "operator-namespaced"


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def rules(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def test_both_variants_grant_the_same_rules_and_nothing_cluster_scoped():
    cluster_role, role = load(CLUSTER / "20-clusterrole.yaml"), load(NAMESPACED / "20-role.yaml")
    assert cluster_role["kind"] == "ClusterRole" and role["kind"] == "Role"
    assert rules(cluster_role) == rules(role)
    # Every resource granted is namespaced, so a Role in the served namespace can hold all of it.
    assert not {r for _, r, _ in rules(role)} & {"namespaces", "customresourcedefinitions", "nodes"}
    assert ("slsbot.io", "strategies/finalizers", "update") in rules(role)
    secrets = {v for g, r, v in rules(role) if (g, r) == ("", "secrets")}
    assert secrets == {"get", "create", "delete"}  # never list, watch, patch or update


def test_the_namespaced_variant_binds_its_role_in_the_namespace_its_operator_serves():
    role, binding = load(NAMESPACED / "20-role.yaml"), load(NAMESPACED / "30-rolebinding.yaml")
    account = load(NAMESPACED / "10-serviceaccount.yaml")
    deployment = load(NAMESPACED / "40-deployment.yaml")
    args = container(deployment)["args"]
    served = args[args.index("--namespace") + 1]
    assert "--all-namespaces" not in args
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == served
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "slsbot-operator"}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": account["metadata"]["namespace"]}
    ]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert deployment["metadata"]["namespace"] == account["metadata"]["namespace"]


def test_the_two_deployments_differ_only_in_the_namespaces_they_serve():
    cluster, namespaced = load(CLUSTER / "40-deployment.yaml"), load(NAMESPACED / "40-deployment.yaml")
    assert "--all-namespaces" in container(cluster)["args"]
    cluster_args, namespaced_args = container(cluster).pop("args"), container(namespaced).pop("args")
    assert cluster_args == ["operator", "--all-namespaces", "--liveness", "http://0.0.0.0:8080/healthz"]
    assert namespaced_args == ["operator", "--namespace", "slsbot", "--liveness", "http://0.0.0.0:8080/healthz"]
    assert cluster == namespaced
    assert load(CLUSTER / "10-serviceaccount.yaml") == load(NAMESPACED / "10-serviceaccount.yaml")
    assert load(CLUSTER / "00-namespace.yaml") == load(NAMESPACED / "00-namespace.yaml")


@pytest.mark.parametrize("folder", [CLUSTER, NAMESPACED])
def test_readiness_and_liveness_probe_the_health_endpoint_the_operator_serves(folder):
    spec = container(load(folder / "40-deployment.yaml"))
    args = spec["args"]
    endpoint = urlsplit(args[args.index("--liveness") + 1])
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        http = spec[probe]["httpGet"]
        assert http["path"] == endpoint.path and ports[http["port"]] == endpoint.port, probe
    # Ready sooner than live: the pod joins once kopf serves, a restart needs a longer silence.
    ready, live = spec["readinessProbe"], spec["livenessProbe"]
    assert ready["periodSeconds"] * ready["failureThreshold"] < live["periodSeconds"] * live["failureThreshold"]


@pytest.mark.parametrize("folder", [CLUSTER, NAMESPACED])
def test_the_runtimes_network_policies_admit_the_operator_pods(folder):
    deployment = load(folder / "40-deployment.yaml")
    env = {e["name"]: e for e in container(deployment)["env"]}
    assert env["SLSBOT_OPERATOR_OPERATOR_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    defaults = OperatorSettings(control_key=None)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert defaults.operator_pod_labels.items() <= labels.items()
    assert (
        deployment["metadata"]["namespace"]
        == defaults.operator_namespace
        == load(folder / "00-namespace.yaml")["metadata"]["name"]
    )


@pytest.mark.parametrize("folder", [CLUSTER, NAMESPACED])
def test_the_admin_api_service_reaches_the_port_the_operator_serves_it_on_and_reviews_are_delegated(folder):
    spec = container(load(folder / "40-deployment.yaml"))
    env = {item["name"]: item.get("value") for item in spec["env"]}
    settings = OperatorSettings(admin_api_port=env["SLSBOT_OPERATOR_ADMIN_API_PORT"])
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    service = load(folder / "50-admin-api-service.yaml")
    (port,) = service["spec"]["ports"]
    assert ports[port["targetPort"]] == settings.admin_api_port == port["port"]
    labels = load(folder / "40-deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    delegation = load(folder / "31-auth-delegator.yaml")
    assert delegation["roleRef"]["name"] == "system:auth-delegator"
    account = load(folder / "10-serviceaccount.yaml")["metadata"]
    assert delegation["subjects"] == [{"kind": "ServiceAccount", **{k: account[k] for k in ("name", "namespace")}}]


def test_the_sample_user_roles_grant_get_list_patch_and_everything_and_never_take_the_operators_name():
    roles = {
        doc["metadata"]["name"]: doc for doc in yaml.safe_load_all((CLUSTER / "60-admin-api-roles.yaml").read_text())
    }
    assert set(roles) == {"slsbot-api-viewer", "slsbot-api-operator", "slsbot-api-admin"}
    assert ("slsbot.io", "strategies", "list") in rules(roles["slsbot-api-viewer"])
    assert not {v for _, _, v in rules(roles["slsbot-api-viewer"])} & {"patch", "*"}
    assert ("slsbot.io", "strategies", "patch") in rules(roles["slsbot-api-operator"])
    assert rules(roles["slsbot-api-admin"]) == {("slsbot.io", "*", "*")}
