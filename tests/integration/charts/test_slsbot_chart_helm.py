"""charts/slsbot rendered by helm: `helm lint`, then `helm template` with the default values is deploy/operator/
object by object, with watchNamespaces it is deploy/operator-namespaced/, every object it renders is valid against the
Kubernetes OpenAPI schemas, the control key is random and kept, bad values are refused by helm naming the field, and
the monitoring files are wrapped as they are.

Needs helm: `make helm` puts Helm's official binary in .venv/bin (else a helm on PATH); skips, saying so, without.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kmock
import kubernetes_validate
import pytest
import yaml
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path

from slsbot.testing.kube_emulator import ClusterEmulator, write_kubeconfig

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "slsbot"
NAMESPACE = "slsbot-system"  # deploy/operator's
KUBERNETES_VERSION = "1.31"
# The labels Helm's conventions add to every object's metadata; deploy/operator/ has none of them.
HELM_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
}
CONTROL_KEY = ("Secret", NAMESPACE, "slsbot-operator-control-key")
Key = tuple[str, str, str]


@pytest.fixture(scope="module")
def helm() -> str:
    found = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
    if found is None:
        reason = "the chart's helm tests need helm: `make helm` installs it into .venv/bin (and none is on PATH)"
        print(reason)
        pytest.skip(reason)
    return found


def run(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, cwd=REPO)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def render(helm: str, *settings: str, chart: Path = CHART) -> dict[Key, dict[str, Any]]:
    """`helm template` as release slsbot in slsbot-system, each object keyed by kind, namespace and name."""
    args = [arg for setting in settings for arg in ("--set", setting)]
    text = run(helm, "template", "slsbot", str(chart), "--namespace", NAMESPACE, *args).stdout
    return by_key(yaml.safe_load_all(text))


def by_key(documents: Any) -> dict[Key, dict[str, Any]]:
    objects: dict[Key, dict[str, Any]] = {}
    for document in documents:
        if document:
            meta = document["metadata"]
            key = (document["kind"], meta.get("namespace", ""), meta["name"])
            assert key not in objects, f"{key} twice"
            objects[key] = document
    return objects


def plain(folder: str, *extra: str) -> dict[Key, dict[str, Any]]:
    paths = sorted((REPO / folder).glob("*.yaml")) + [REPO / path for path in extra]
    return by_key(document for path in paths for document in yaml.safe_load_all(path.read_text()))


def without_helm_labels(objects: dict[Key, dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    for document in objects.values():
        labels = document["metadata"].get("labels", {})
        assert labels.keys() >= HELM_LABELS, document["metadata"]["name"]
        document["metadata"]["labels"] = {k: v for k, v in labels.items() if k not in HELM_LABELS}
    return objects


def assert_same_objects(rendered: dict[Key, dict[str, Any]], expected: dict[Key, dict[str, Any]]) -> None:
    # The chart installs into a namespace that exists (helm install --create-namespace); deploy/operator makes it.
    namespace = expected.pop(("Namespace", "", NAMESPACE))
    assert namespace["metadata"]["labels"]["app.kubernetes.io/name"] == "slsbot-operator"
    # deploy/operator leaves the control key to the user, on purpose (a committed key is the same everywhere).
    assert rendered.pop(CONTROL_KEY)["kind"] == "Secret"
    assert sorted(rendered) == sorted(expected)
    for key, document in expected.items():
        assert rendered[key] == document, key


def test_helm_lint_passes_with_the_defaults_and_with_every_option(helm: str):
    run(helm, "lint", "--strict", str(CHART))
    options = ["watchNamespaces={a,b}", "serviceMonitor.enabled=true", "prometheusRule.enabled=true"]
    run(helm, "lint", "--strict", str(CHART), *[arg for option in options for arg in ("--set", option)])


def test_the_default_values_install_what_deploy_operator_holds(helm: str):
    assert_same_objects(without_helm_labels(render(helm)), plain("deploy/operator"))


def test_watch_namespaces_install_what_deploy_operator_namespaced_holds(helm: str):
    expected = plain("deploy/operator-namespaced", "deploy/operator/60-admin-api-roles.yaml")
    assert_same_objects(without_helm_labels(render(helm, "watchNamespaces={slsbot}")), expected)


def test_each_served_namespace_gets_a_role_and_nothing_cluster_wide_is_granted_to_the_operator(helm: str):
    objects = render(helm, "watchNamespaces={trading,research}", "adminApi.enabled=false")
    kinds = {(kind, namespace) for kind, namespace, _ in objects}
    assert {("Role", "trading"), ("RoleBinding", "trading"), ("Role", "research"), ("RoleBinding", "research")} <= kinds
    assert not {kind for kind, namespace, _ in objects if not namespace}  # no ClusterRole(Binding), no auth-delegator
    (deployment,) = (doc for (kind, _, _), doc in objects.items() if kind == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["operator", "--namespace", "trading", "--namespace", "research", "--liveness",
                                 "http://0.0.0.0:8080/healthz"]  # fmt: skip
    assert "admin-api" not in {port["name"] for port in container["ports"]}
    assert "SLSBOT_OPERATOR_ADMIN_API_PORT" not in {env["name"] for env in container["env"]}


@pytest.mark.parametrize(
    "settings",
    [
        (),
        ("watchNamespaces={slsbot}",),
        ("serviceMonitor.enabled=true", "adminApi.service.type=LoadBalancer", "adminApi.port=9443",
         "extraEnv[0].name=SLSBOT_OPERATOR_VERBOSE", "extraEnv[0].value=true", "nodeSelector.disk=ssd"),
    ],
    ids=["defaults", "one-namespace", "options"],
)  # fmt: skip
def test_every_rendered_object_is_valid_against_the_kubernetes_schemas(helm: str, settings: tuple[str, ...]):
    args = [arg for setting in settings for arg in ("--set-string" if "extraEnv" in setting else "--set", setting)]
    text = run(helm, "template", "slsbot", str(CHART), "-n", NAMESPACE, "--include-crds", *args).stdout
    checked = set()
    for document in filter(None, yaml.safe_load_all(text)):
        if document["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # Prometheus Operator's kinds: no schema offline (their fields are checked below)
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{document['kind']} {document['metadata']['name']}: {error.message} at {list(error.path)}")
        checked.add(document["kind"])
    assert {"CustomResourceDefinition", "Deployment", "ServiceAccount", "Secret", "Service"} <= checked


def test_the_control_key_is_random_long_and_kept_on_upgrade_and_uninstall(helm: str):
    first, second = render(helm)[CONTROL_KEY], render(helm)[CONTROL_KEY]
    assert first["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    key = base64.b64decode(first["data"]["key"]).decode()
    assert len(key) >= 32 and key.isalnum()
    assert key != base64.b64decode(second["data"]["key"]).decode()  # never a fixed key
    assert CONTROL_KEY not in render(helm, "controlKey.create=false")


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("watchNamespace={a}", "watchNamespace"),  # the misspelt key, named (Helm 3 and 4 word it differently)
        ("watchNamespaces={Trading}", "watchNamespaces"),
        ("image.pullPolicy=sometimes", "pullPolicy"),
        ("adminApi.port=8080", "adminApi.port: 8080 is the operator's health port"),
        ("adminApi.port=9090", "adminApi.port: 9090 is the operator's metrics port"),
        (
            "extraEnv[0].name=SLSBOT_OPERATOR_ADMIN_API_PORT",
            "extraEnv: SLSBOT_OPERATOR_ADMIN_API_PORT is set by the chart",
        ),
    ],
)
def test_helm_refuses_bad_values_naming_the_field(helm: str, setting: str, says: str):
    result = run(helm, "template", "slsbot", str(CHART), "--set", setting, check=False)
    assert result.returncode != 0 and says in result.stderr, result.stderr


def test_the_monitoring_files_are_wrapped_as_they_are_and_skipped_while_absent(helm: str, tmp_path: Path):
    chart = tmp_path / "slsbot"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("files"))
    enabled = ("prometheusRule.enabled=true", "grafanaDashboards.enabled=true", "serviceMonitor.enabled=true")
    assert not {kind for kind, _, _ in render(helm, *enabled, chart=chart)} & {"PrometheusRule", "ConfigMap"}

    groups = {"groups": [{"name": "slsbot", "rules": [{"alert": "RuntimeDown", "expr": "up == 0", "for": "5m"}]}]}
    (chart / "files" / "dashboards").mkdir(parents=True)
    (chart / "files" / "prometheus-rules.yaml").write_text("# the rules\n" + yaml.safe_dump(groups))
    dashboard = '{\n  "title": "slsbot fleet",\n  "panels": []\n}\n'
    (chart / "files" / "dashboards" / "slsbot-fleet.json").write_text(dashboard)
    objects = render(helm, *enabled, "grafanaDashboards.namespace=monitoring", "prometheusRule.labels.release=kps",
                     chart=chart)  # fmt: skip
    rule = objects[("PrometheusRule", NAMESPACE, "slsbot")]
    assert rule["spec"] == groups and rule["metadata"]["labels"]["release"] == "kps"
    config_map = objects[("ConfigMap", "monitoring", "slsbot-dashboard-fleet")]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["data"] == {"slsbot-fleet.json": dashboard.rstrip("\n")}
    monitors = {name: doc["spec"] for (kind, _, name), doc in objects.items() if kind == "ServiceMonitor"}
    assert monitors["slsbot-runtimes"]["namespaceSelector"] == {"any": True}
    assert monitors["slsbot-runtimes"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "slsbot-runtime"}}
    # The series the alerts and dashboards read: job="slsbot-runtime", and the Strategy and account as labels.
    assert monitors["slsbot-runtimes"]["jobLabel"] == "app.kubernetes.io/name"
    (endpoint,) = monitors["slsbot-runtimes"]["endpoints"]
    relabeled = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert relabeled == {
        "strategy": ["__meta_kubernetes_service_label_slsbot_io_strategy"],
        "account": ["__meta_kubernetes_service_label_slsbot_io_account"],
    }
    service = objects[("Service", NAMESPACE, "slsbot-operator-metrics")]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "slsbot-operator"}
    assert monitors["slsbot-operator"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert "PrometheusRule" not in {kind for kind, _, _ in render(helm, "prometheusRule.enabled=false", chart=chart)}


class HelmReadyEmulator(ClusterEmulator):
    """The Kubernetes API emulator as helm needs it: kmock names the core group's version "/v1" in /api/v1's
    discovery (an API server says "v1"), and helm's REST mapper then finds no core kind."""

    async def _serve_version(self, request: Any) -> Any:
        payload = await super()._serve_version(request)
        if request.resource.group == "":
            payload["groupVersion"] = request.resource.version
        return payload


async def test_an_upgrade_renders_the_control_key_secret_found_in_the_cluster_with_all_its_keys(
    helm: str, tmp_path: Path
):
    """What `helm upgrade` renders: lookup reads the Secret the installation made (and a rotation since extended
    with the replaced key and its grace), and the chart renders it again unchanged."""
    verbs = {"get", "list", "watch", "create", "patch", "delete"}
    async with HelmReadyEmulator() as cluster, kmock.Server(cluster):
        for group_version, plural, kind, namespaced in [
            ("v1", "secrets", "Secret", True),
            ("v1", "serviceaccounts", "ServiceAccount", True),
            ("v1", "services", "Service", True),
            ("apps/v1", "deployments", "Deployment", True),
            ("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
            ("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False),
        ]:
            cluster.resources[f"{group_version}/{plural}"] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, verbs=verbs
            )
        data = {
            name: base64.b64encode(value.encode()).decode()
            for name, value in {
                "key": test_secrets.OPERATOR_CONTROL_KEY,
                "previous": test_secrets.OPERATOR_PREVIOUS_CONTROL_KEY,
                "previousValidUntil": "2031-01-01T00:00:00Z",
            }.items()
        }
        cluster.objects["v1/secrets", NAMESPACE, CONTROL_KEY[2]] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": CONTROL_KEY[2],
                "namespace": NAMESPACE,
                # What an installation of release slsbot leaves on its objects (helm adopts only those).
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {"meta.helm.sh/release-name": "slsbot", "meta.helm.sh/release-namespace": NAMESPACE},
            },
            "data": data,
        }
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig.yaml", cluster)
        args = ["template", "slsbot", str(CHART), "-n", NAMESPACE, "--kubeconfig", str(kubeconfig)]
        args += ["--dry-run=server", "--disable-openapi-validation"]  # lookup asks the cluster; kmock has no OpenAPI
        result = await asyncio.to_thread(run, helm, *args)
        rendered = by_key(yaml.safe_load_all(result.stdout))[CONTROL_KEY]
        assert rendered["data"] == data
        assert rendered["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert ("secrets", "get") in cluster.calls
