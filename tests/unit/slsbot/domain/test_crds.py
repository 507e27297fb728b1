"""The CRDs generated from the API models: current in crds/, structural, and faithful to the models."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
import yaml

from slsbot.api import KINDS, parse_resource
from slsbot.domain.api_reference import DOCS_PATH, render_api_reference
from slsbot.domain.crd_schema import structural_violations
from slsbot.domain.crds import GENERATED_HEADER, build_crds, crd_filename, generated_crd_files

KIND_NAMES = sorted(KINDS)


def _crd(kind: str) -> dict[str, Any]:
    return build_crds()[crd_filename(KINDS[kind].kind_info)]


def _schema(kind: str) -> dict[str, Any]:
    return _crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _walk(node: Any, path: str = ""):
    """Every schema node with its path, through properties and items."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """The API server's structural defaulting: fill absent properties with their default, then recurse."""
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        for name, sub_value in value.items():
            if name in schema["properties"]:
                apply_defaults(schema["properties"][name], sub_value)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            apply_defaults(schema["items"], item)
    return value


# The files on disk


def test_crds_folder_is_up_to_date_with_the_models(repo_root):
    stale = [
        name
        for name, content in generated_crd_files().items()
        if not (repo_root / "crds" / name).exists() or (repo_root / "crds" / name).read_text() != content
    ]
    assert not stale, f"crds/ is out of date with operator/slsbot/api ({', '.join(stale)}): run `make crds`"
    on_disk = {path.name for path in (repo_root / "crds").glob("*.slsbot.io.yaml")}
    extra = sorted(on_disk - set(generated_crd_files()))
    assert not extra, f"crds/ holds files no kind generates ({', '.join(extra)}): run `make crds`"


def test_api_reference_is_up_to_date_with_the_models(repo_root):
    docs = repo_root / DOCS_PATH
    assert docs.exists() and docs.read_text() == render_api_reference(), (
        f"{DOCS_PATH} is out of date with operator/slsbot/api: run `make crds`"
    )


def test_generated_files_are_stable_yaml_with_a_header():
    files = generated_crd_files()
    assert files == generated_crd_files()
    for name, content in files.items():
        assert content.startswith(GENERATED_HEADER)
        assert "&id" not in content and "*id" not in content, f"{name} uses YAML anchors"
        assert yaml.safe_load(content) == build_crds()[name]


# The CRD around the schema


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_crd_names_scope_and_version(kind):
    info = KINDS[kind].kind_info
    crd = _crd(kind)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{info.plural}.slsbot.io"
    assert crd_filename(info) == f"{info.plural}.slsbot.io.yaml"
    spec = crd["spec"]
    assert spec["group"] == "slsbot.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": info.plural,
        "singular": kind.lower(),
        "shortNames": list(info.short_names),
        "categories": ["slsbot"],
    }
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_printer_columns_come_from_kind_info(kind):
    columns = _crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
    expected = KINDS[kind].kind_info.columns
    assert [c["name"] for c in columns] == [c.name for c in expected]
    assert [c["jsonPath"] for c in columns] == [c.json_path for c in expected]
    assert [c["type"] for c in columns] == [c.type for c in expected]
    assert [c.get("priority", 0) for c in columns] == [c.priority for c in expected]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_printer_columns_point_at_fields_the_schema_declares(kind):
    schema = _schema(kind)
    for column in _crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]:
        path = column["jsonPath"].split("[")[0].lstrip(".").split(".")
        if path[0] == "metadata":
            continue
        node = schema
        for part in path:
            assert part in node.get("properties", {}), f"{column['name']}: {column['jsonPath']} is not in the schema"
            node = node["properties"][part]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_top_level_object_schema(kind):
    schema = _schema(kind)
    info = KINDS[kind].kind_info
    assert schema["type"] == "object"
    assert schema["description"] == info.description
    assert list(schema["properties"]) == ["apiVersion", "kind", "metadata", "spec", "status"]
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["properties"]["apiVersion"]["type"] == schema["properties"]["kind"]["type"] == "string"
    assert schema["required"] == ["spec"]
    assert schema["properties"]["spec"]["type"] == schema["properties"]["status"]["type"] == "object"


# The schema itself


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_schema_is_structural(kind):
    assert structural_violations(_schema(kind)) == []


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_schema_is_a_valid_openapi_schema_for_draft4_validators(kind):
    jsonschema.Draft4Validator.check_schema(_schema(kind))


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_default_is_valid_under_its_own_node(kind):
    checked = 0
    for path, node in _walk(_schema(kind)):
        if "default" in node:
            errors = list(jsonschema.Draft4Validator(node).iter_errors(node["default"]))
            assert not errors, f"{kind}{path}: default {node['default']!r} is invalid: {errors[0].message}"
            checked += 1
    assert checked > 3


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_spec_field_of_the_model_is_in_the_schema(kind):
    spec_model = KINDS[kind].kind_info.spec_model
    properties = _schema(kind)["properties"]["spec"]["properties"]
    assert sorted(properties) == sorted(field.alias or name for name, field in spec_model.model_fields.items())


def test_constraints_land_on_the_right_fields():
    risk = _schema("RiskPolicy")["properties"]["spec"]["properties"]
    assert risk["maxDrawdownPercent"] == {
        "type": "number",
        "default": 20.0,
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 100,
    }
    strategy = _schema("Strategy")["properties"]["spec"]["properties"]
    assert strategy["symbols"]["items"]["pattern"] == r"^[A-Z0-9]{2,15}/[A-Z0-9]{2,15}(:[A-Z0-9]{2,15})?$"
    assert strategy["timeframe"]["enum"] == ["1m", "5m", "15m", "1h", "4h", "1d"]
    assert strategy["ensemble"]["properties"]["members"]["minItems"] == 1
    params = strategy["ensemble"]["properties"]["members"]["items"]["properties"]["params"]
    assert params == {
        "type": "object",
        "description": "Component parameters; see the reference.",
        "default": {},
        "x-kubernetes-preserve-unknown-fields": True,
    }
    start = strategy["marketData"]["properties"]["start"]
    assert (start["type"], start["format"]) == ("string", "date-time")


def test_cel_rules_are_carried_to_the_node_that_declares_them():
    account = _schema("TradingAccount")["properties"]["spec"]
    assert [r["rule"] for r in account["x-kubernetes-validations"]] == ["self.mode == 'paper' || has(self.credentials)"]
    credentials = account["properties"]["credentials"]
    assert [r["rule"] for r in credentials["x-kubernetes-validations"]] == ["has(self.vault) != has(self.secretRef)"]
    experiment = _schema("Experiment")["properties"]["spec"]
    assert len(experiment["x-kubernetes-validations"]) == 2
    search = experiment["properties"]["searchSpace"]["items"]
    assert "self.type == 'categorical'" in search["x-kubernetes-validations"][0]["rule"]
    rules_anywhere = [
        (kind, path) for kind in KIND_NAMES for path, node in _walk(_schema(kind)) if "x-kubernetes-validations" in node
    ]
    assert sorted(rules_anywhere) == [
        ("Experiment", ".spec"),
        ("Experiment", ".spec.searchSpace[]"),
        ("TradingAccount", ".spec"),
        ("TradingAccount", ".spec.credentials"),
    ]


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("TradingAccount", {"exchange": "binance"}),
        ("TradingAccount", {"exchange": "binance", "mode": "live", "credentials": {"vault": {"path": "a/b"}}}),
        ("RiskPolicy", {}),
        ("RiskPolicy", {"perTrade": {"maxPercent": 5}, "circuitBreaker": {"levels": []}}),
        (
            "Strategy",
            {
                "accountRef": {"name": "a"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
                "risk": {"perTrade": {"maxPercent": 5}},
                "runtime": {"resources": {"limits": {"cpu": "2"}}},
            },
        ),
        (
            "Experiment",
            {
                "type": "tuning",
                "strategyRef": {"name": "s"},
                "searchSpace": [{"name": "a.b", "type": "int", "low": 1, "high": 2}],
            },
        ),
    ],
)
def test_the_api_servers_defaulting_gives_what_the_model_gives(kind, spec):
    """Defaults in the CRD are the model's, nested objects included, so a cluster and `slsbot up` agree."""
    defaulted = apply_defaults(_schema(kind)["properties"]["spec"], copy.deepcopy(spec))
    document = {"apiVersion": "slsbot.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    assert defaulted == parse_resource(document).spec.to_wire()
