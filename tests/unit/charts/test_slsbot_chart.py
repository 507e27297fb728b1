"""charts/slsbot without a helm binary: its values.yaml meets its values.schema.json (draft-07, as Helm reads it), bad
values are refused naming the field, its CRDs are the generated ones, its version is the project's, and every plain
manifest (deploy/operator*, crds/) is valid against the Kubernetes OpenAPI schemas (kubernetes-validate, offline).
tests/integration/charts/test_slsbot_chart_helm.py renders the chart with helm and compares it to deploy/operator."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from slsbot.api.strategy import RuntimeSettings

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "slsbot"
KUBERNETES_VERSION = "1.31"  # the API these manifests use is that old; newer releases still serve it


def values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def with_override(path: str, value: Any) -> dict[str, Any]:
    """values.yaml with one key set, as `helm --set path=value` would (a new key is created)."""
    result = copy.deepcopy(values())
    *parents, last = path.split(".")
    node = result
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return result


def refusals(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("/".join(str(p) for p in error.absolute_path), error.message) for error in validator().iter_errors(document)
    ]


def test_the_default_values_meet_the_schema():
    assert refusals(values()) == []


def test_every_key_the_schema_knows_has_a_default_in_values_yaml_and_the_other_way_round():
    schema = json.loads((CHART / "values.schema.json").read_text())
    own: set[str] = set()  # the chart's own objects (closed schemas), whose keys are compared too

    def schema_keys(node: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        for name, child in node.get("properties", {}).items():
            found.add(prefix + name)
            if child.get("additionalProperties") is False:
                own.add(prefix + name)
                found |= schema_keys(child, f"{prefix}{name}.")
        return found

    def value_keys(node: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        for name, child in node.items():
            found.add(prefix + name)
            if prefix + name in own:
                found |= value_keys(child, f"{prefix}{name}.")
        return found

    known = schema_keys(schema) - {"global"}  # Helm's own, for subcharts
    assert value_keys(values()) == known


@pytest.mark.parametrize(
    ("path", "value", "field", "says"),
    [
        ("watchNamespace", ["trading"], "", "'watchNamespace' was unexpected"),  # a misspelt key
        ("adminApi.prot", 9443, "adminApi", "'prot' was unexpected"),
        ("watchNamespaces", ["Trading_Desk"], "watchNamespaces/0", "does not match"),
        ("image.tag", 0.2, "image/tag", "is not of type 'string'"),  # an unquoted version in a values file
        ("image.pullPolicy", "always", "image/pullPolicy", "is not one of"),
        ("adminApi.port", 443, "adminApi/port", "less than the minimum of 1024"),
        ("serviceMonitor.interval", 30, "serviceMonitor/interval", "is not of type 'string'"),
        ("serviceMonitor.interval", "30 seconds", "serviceMonitor/interval", "does not match"),
        ("controlKey.create", "yes", "controlKey/create", "is not of type 'boolean'"),
        ("extraEnv", [{"name": "SLSBOT_OPERATOR_VERBOSE", "value": True}], "extraEnv/0/value", "not of type 'string'"),
        ("grafanaDashboards.namespace", "Monitoring", "grafanaDashboards/namespace", "is not valid under any"),
    ],
)
def test_bad_values_are_refused_naming_the_field(path: str, value: Any, field: str, says: str):
    found = refusals(with_override(path, value))
    assert found, f"{path}={value!r} was accepted"
    assert any(where == field and says in message for where, message in found), found


def test_the_charts_crds_are_the_generated_ones_byte_for_byte():
    generated = {path.name: path.read_bytes() for path in (REPO / "crds").glob("*.yaml")}
    in_chart = {path.name: path.read_bytes() for path in (CHART / "crds").glob("*.yaml")}
    assert sorted(in_chart) == sorted(generated), "run `make crds` (it copies crds/ into charts/slsbot/crds/)"
    stale = [name for name in generated if in_chart[name] != generated[name]]
    assert not stale, f"charts/slsbot/crds/ differs from crds/ in {stale}: run `make crds`"


def test_the_chart_runs_the_projects_version_and_the_image_the_runtimes_default_to():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"]
    image = values()["image"]
    assert image["tag"] == ""  # the appVersion
    assert f"{image['repository']}:{chart['appVersion']}" == RuntimeSettings.model_fields["image"].default


def manifests(*folders: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.relative_to(REPO)}#{index}", document)
        for folder in folders
        for path in sorted((REPO / folder).glob("*.yaml"))
        for index, document in enumerate(yaml.safe_load_all(path.read_text()))
        if document
    ]


@pytest.mark.parametrize(
    ("where", "manifest"), manifests("deploy/operator", "deploy/operator-namespaced", "crds"), ids=lambda x: str(x)[:60]
)
def test_every_plain_manifest_is_valid_against_the_kubernetes_schemas(where: str, manifest: dict[str, Any]):
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{where}: {error.message} at {'/'.join(map(str, error.path))}")


def test_the_validator_refuses_what_the_api_server_would():
    # The check above can fail: a field in the wrong place, and a port given as text, are refused.
    deployment = next(doc for where, doc in manifests("deploy/operator") if doc["kind"] == "Deployment")
    for breakage in ("misplaced", "mistyped"):
        broken = copy.deepcopy(deployment)
        container = broken["spec"]["template"]["spec"]["containers"][0]
        if breakage == "misplaced":
            container["replicas"] = 1
        else:
            container["ports"][0]["containerPort"] = "8080"
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
