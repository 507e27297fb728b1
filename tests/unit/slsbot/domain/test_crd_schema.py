"""The pydantic -> structural OpenAPI conversion, and the structural-schema checker, on small models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from slsbot.domain.crd_schema import (
    PRESERVE_UNKNOWN,
    SchemaConversionError,
    structural_schema,
    structural_violations,
)

PRESERVE = {PRESERVE_UNKNOWN: True}


class Inner(BaseModel):
    """An inner object."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"x-kubernetes-validations": [{"rule": "self.low < self.high"}]}
    )

    low: int = 0
    high: int = 10


def _inner_factory() -> Inner:
    return Inner(low=1, high=2)


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=8, pattern=r"^[a-z]+$", title="Ignored", description="A name.")
    ratio: float = Field(default=0.5, gt=0, lt=1)
    count: int | None = Field(default=None, ge=0)
    must_say: int | None = Field(description="Required, but may be null.")
    when: datetime | None = None
    inner: Inner = Field(default_factory=_inner_factory, description="Overrides the docstring.")
    maybe_inner: Inner | None = None
    tags: list[str] = Field(default_factory=list, max_length=4)
    params: dict[str, Any] = Field(default_factory=dict, json_schema_extra=PRESERVE)
    anything: Any = None
    choices: list[Any] = Field(default_factory=list, json_schema_extra=PRESERVE)
    labels: dict[str, str] = Field(default_factory=dict)


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    return structural_schema(Sample)


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_the_converted_schema_is_structural(sample):
    assert structural_violations(sample) == []


def test_references_and_titles_are_gone(sample):
    keys = {key for node in _walk(sample) for key in node if isinstance(key, str)}
    assert not keys & {"$ref", "$defs", "title", "anyOf", "allOf"}


def test_constraints_descriptions_and_required_are_kept(sample):
    name = sample["properties"]["name"]
    assert name == {
        "type": "string",
        "description": "A name.",
        "minLength": 1,
        "maxLength": 8,
        "pattern": "^[a-z]+$",
    }
    assert sample["required"] == ["name", "must_say"]


def test_exclusive_bounds_become_openapi_3_0_booleans(sample):
    ratio = sample["properties"]["ratio"]
    assert ratio["minimum"] == 0 and ratio["exclusiveMinimum"] is True
    assert ratio["maximum"] == 1 and ratio["exclusiveMaximum"] is True
    assert ratio["default"] == 0.5


def test_optional_fields_become_the_plain_type_without_a_null_default(sample):
    count = sample["properties"]["count"]
    assert count == {"type": "integer", "minimum": 0}
    assert "nullable" not in count


def test_a_required_field_that_may_be_null_is_the_one_case_that_is_nullable(sample):
    assert sample["properties"]["must_say"]["nullable"] is True


def test_datetimes_are_date_time_strings(sample):
    assert sample["properties"]["when"] == {"type": "string", "format": "date-time"}


def test_referenced_models_are_inlined_with_their_rules_and_factory_defaults(sample):
    inner = sample["properties"]["inner"]
    assert inner["type"] == "object"
    assert inner["description"] == "Overrides the docstring."
    assert inner["default"] == {"low": 1, "high": 2}
    assert inner["x-kubernetes-validations"] == [{"rule": "self.low < self.high"}]
    assert inner["properties"]["low"] == {"type": "integer", "default": 0}
    optional = sample["properties"]["maybe_inner"]
    assert optional["description"] == "An inner object."
    assert "default" not in optional
    assert optional["x-kubernetes-validations"] == [{"rule": "self.low < self.high"}]


def test_free_form_values_preserve_unknown_fields_on_the_right_node(sample):
    properties = sample["properties"]
    assert properties["params"] == {"type": "object", "default": {}, PRESERVE_UNKNOWN: True}
    assert properties["anything"] == {PRESERVE_UNKNOWN: True}
    choices = properties["choices"]
    assert PRESERVE_UNKNOWN not in choices
    assert choices["items"] == {PRESERVE_UNKNOWN: True}
    assert properties["labels"]["additionalProperties"] == {"type": "string"}
    assert properties["tags"] == {"type": "array", "default": [], "maxItems": 4, "items": {"type": "string"}}


def test_a_union_of_two_types_is_refused_naming_the_field():
    class Union(BaseModel):
        value: int | str

    with pytest.raises(SchemaConversionError, match=r"Union\.value.*union"):
        structural_schema(Union)


def test_a_set_is_refused_because_unique_items_has_no_structural_form():
    class Unique(BaseModel):
        names: set[str]

    with pytest.raises(SchemaConversionError, match=r"Unique\.names.*uniqueItems"):
        structural_schema(Unique)


# The checker: each rule, proven by a schema that breaks it.

_OK_ROOT = {"type": "object", "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}}}


def _root_with(spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"metadata": {"type": "object"}, "spec": spec}}


def test_the_checker_accepts_a_structural_schema():
    assert structural_violations(_OK_ROOT) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"properties": {"a": {"type": "string"}}}, "spec.type: missing"),
        ({"type": "object", "properties": {"a": {"minLength": 1}}}, "properties.a.type: missing"),
        ({"type": "array"}, "an array needs an items schema"),
        ({"type": "array", "items": {}}, "items.type: missing"),
        ({"type": "string", "properties": {"a": {"type": "string"}}}, "need type: object"),
        ({"type": "object", "items": {"type": "string"}}, "needs type: array"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}},
            "cannot be used together with properties",
        ),
        ({"type": "object", "additionalProperties": False}, "false is not allowed"),
        ({"$ref": "#/definitions/Spec"}, "references are not allowed"),
        ({"type": "object", "definitions": {}}, "references are not allowed"),
        ({"type": "object", "$defs": {}}, "not a keyword of apiextensions"),
        ({"type": "string", "title": "ok", "examples": ["x"]}, "spec.examples: not a keyword"),
        ({"type": "number", "minimum": 0, "exclusiveMinimum": 0}, "must be a boolean in OpenAPI v3.0"),
        ({"type": "number", "exclusiveMaximum": True}, "exclusiveMaximum: needs maximum"),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems: true is not allowed"),
        ({"type": "object", PRESERVE_UNKNOWN: False}, "must be true or absent"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}, "'b' is not a declared"),
        (
            {"type": "string", "anyOf": [{"type": "string", "pattern": "^a"}, {"pattern": "^b"}]},
            "anyOf[0].type: not allowed inside",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "oneOf": [{"properties": {"b": {}}}]},
            "oneOf[0].properties.b: not declared by the structural parent",
        ),
        ({"type": "object", "not": {"description": "no", "default": {}}}, "not[0].description: not allowed"),
        (
            {
                "type": "object",
                "properties": {"mode": {"type": "string"}},
                "x-kubernetes-validations": [{"rule": "self.mdoe == 'paper'"}],
            },
            "names self.mdoe, which is not a declared property",
        ),
        ({"type": "object", "x-kubernetes-validations": [{"message": "no rule"}]}, "rule: missing"),
    ],
)
def test_the_checker_names_each_violation(spec, expected):
    violations = structural_violations(_root_with(spec))
    assert any(expected in violation for violation in violations), violations


def test_the_checker_wants_an_object_root_with_plain_metadata():
    assert "openAPIV3Schema.type: the root must be an object" in structural_violations({"type": "string"})
    restricted = {
        "type": "object",
        "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}},
    }
    assert any("only name and generateName" in v for v in structural_violations(restricted))


def test_an_untyped_node_is_fine_when_it_preserves_unknown_fields_or_is_int_or_string():
    spec = {
        "type": "object",
        "properties": {"free": {PRESERVE_UNKNOWN: True}, "port": {"x-kubernetes-int-or-string": True}},
    }
    assert structural_violations(_root_with(spec)) == []
