"""Pydantic models -> Kubernetes structural OpenAPI v3.0 schemas, and a checker of the structural rules.

Pydantic writes JSON Schema 2020-12 with ``$defs``/``$ref``, ``anyOf [X, null]`` for optionals, numeric
``exclusiveMinimum`` and ``title`` everywhere. A CustomResourceDefinition needs a *structural* OpenAPI v3.0
schema (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
#specifying-a-structural-schema): every node typed, references inlined, no ``additionalProperties`` next to
``properties``, boolean ``exclusiveMinimum``. :func:`structural_schema` does that conversion and
:func:`structural_violations` checks the result, so a model change that cannot be expressed fails
``make crds`` and the tests instead of producing a CRD the API server refuses.

Unknown fields: models reject them (``extra="forbid"``), but a structural schema cannot say
``additionalProperties: false``. The API server instead *prunes* unknown fields, and rejects them when the
client asks for strict field validation (``kubectl`` does by default since Kubernetes 1.27).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, NoDefault
from pydantic_core import core_schema

PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
VALIDATIONS = "x-kubernetes-validations"

# The order keys are written in, so a generated CRD reads like a hand-written one; this is also the set of
# keywords the conversion emits. Anything else from pydantic is refused by name.
KEY_ORDER = (
    "type",
    "format",
    "description",
    "enum",
    "default",
    "nullable",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "properties",
    "additionalProperties",
    "items",
    "required",
    PRESERVE_UNKNOWN,
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    VALIDATIONS,
)
_DROPPED = frozenset({"title", "examples", "$schema", "$comment"})
# Every keyword apiextensions.k8s.io/v1 JSONSchemaProps knows; a key outside it is an error in a CRD.
_JSON_SCHEMA_PROPS = frozenset(KEY_ORDER) | {
    "id",
    "$schema",
    "$ref",
    "title",
    "uniqueItems",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "definitions",
    "externalDocs",
    "example",
    "x-kubernetes-embedded-resource",
}
_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
# What a node inside allOf/anyOf/oneOf/not may not say: the structural parent says it instead.
_FORBIDDEN_IN_JUNCTORS = (
    "type",
    "description",
    "default",
    "additionalProperties",
    "nullable",
    PRESERVE_UNKNOWN,
    "x-kubernetes-embedded-resource",
)
_BOUND_OF = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}
_SELF_FIELD = re.compile(r"\bself\.([A-Za-z_][A-Za-z0-9_]*)")
_ROOT_METADATA_FIELDS = frozenset({"name", "generateName"})


class SchemaConversionError(ValueError):
    """A model uses a construct a structural schema cannot express. Raised by ``make crds`` and the tests,
    never at run time: change the model (or teach the conversion) before a CRD is generated."""


class _WithFactoryDefaults(GenerateJsonSchema):
    """Also write ``default_factory`` defaults, so the API server defaults nested objects as the models do."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return schema.get("default", NoDefault)


def pydantic_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's wire-format (camelCase) validation JSON Schema, factory defaults included."""
    return model.model_json_schema(by_alias=True, mode="validation", schema_generator=_WithFactoryDefaults)


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model as a structural OpenAPI v3.0 schema node, ready for a CRD's ``openAPIV3Schema``."""
    schema = pydantic_json_schema(model)
    definitions = schema.pop("$defs", {})
    return _Converter(definitions).convert(schema, model.__name__)


class _Converter:
    def __init__(self, definitions: dict[str, Any]) -> None:
        self._definitions = definitions

    def convert(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self._flatten(node, path).items():
            self._take(out, key, value, path)
        if not out.get("type") and not out.get("x-kubernetes-int-or-string"):
            out[PRESERVE_UNKNOWN] = True  # Any: the only untyped node a structural schema allows
        if out.get("type") == "array":
            _move_preserve_to_items(out)
        if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
            out[PRESERVE_UNKNOWN] = True  # a bare object (dict[str, Any]) keeps what it is given
        return _ordered(out)

    def _take(self, out: dict[str, Any], key: str, value: Any, path: str) -> None:
        """Write one pydantic keyword into ``out`` in its structural OpenAPI v3.0 form."""
        if key in _DROPPED:
            return
        if key == "properties":
            out["properties"] = {name: self.convert(sub, f"{path}.{name}") for name, sub in value.items()}
        elif key == "additionalProperties":
            if value is True:
                out[PRESERVE_UNKNOWN] = True
            elif isinstance(value, dict):
                out["additionalProperties"] = self.convert(value, f"{path}[*]")
            # False (extra="forbid") has no structural form: the API server prunes unknown fields instead.
        elif key == "items":
            if not isinstance(value, dict):
                raise SchemaConversionError(f"{path}: tuple-typed arrays are not structural; use list[X]")
            out["items"] = self.convert(value, f"{path}[]")
        elif key == "default":
            if value is not None:
                out["default"] = _without_nulls(value)
        elif key == "const":
            out.setdefault("enum", [value])
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            if not isinstance(value, bool):  # JSON Schema 2020-12: the bound itself
                out[_BOUND_OF[key]] = value
            out[key] = bool(value) if isinstance(value, bool) else True
        elif key in KEY_ORDER:
            out[key] = copy.deepcopy(value)
        else:
            raise SchemaConversionError(f"{path}: the JSON Schema keyword {key!r} has no structural equivalent")

    def _flatten(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        """Inline ``$ref``, one-element ``allOf`` and ``anyOf [X, null]``; the outer keys win."""
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name not in self._definitions:
                raise SchemaConversionError(f"{path}: unresolvable reference {node['$ref']!r}")
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return self._flatten({**self._definitions[name], **siblings}, path)
        if "allOf" in node and len(node["allOf"]) == 1:
            siblings = {k: v for k, v in node.items() if k != "allOf"}
            return self._flatten({**self._flatten(node["allOf"][0], path), **siblings}, path)
        if "anyOf" in node:
            branches = [b for b in node["anyOf"] if b != {"type": "null"}]
            if len(branches) != 1:
                raise SchemaConversionError(
                    f"{path}: a union of several types is not structural; use one type (optionally | None)"
                )
            siblings = {k: v for k, v in node.items() if k != "anyOf"}
            merged = {**self._flatten(branches[0], path), **siblings}
            if len(branches) < len(node["anyOf"]) and "default" not in siblings:
                merged["nullable"] = True  # a required field that may be null: the only case that needs it
            return merged
        return node


def _move_preserve_to_items(array: dict[str, Any]) -> None:
    """``x-kubernetes-preserve-unknown-fields`` on a list means its items; put it where it has an effect."""
    if array.pop(PRESERVE_UNKNOWN, None) and "items" in array:
        items = array["items"]
        if items.get("type") in (None, "object") and "properties" not in items:
            items[PRESERVE_UNKNOWN] = True
            array["items"] = _ordered(items)


def _without_nulls(value: Any) -> Any:
    """Defaults as the wire format writes them: an unset optional is absent, never null."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    rank = {key: index for index, key in enumerate(KEY_ORDER)}
    return dict(sorted(node.items(), key=lambda item: rank.get(item[0], len(rank))))


def structural_violations(schema: dict[str, Any], path: str = "openAPIV3Schema") -> list[str]:
    """Every way ``schema`` breaks the structural-schema rules the API server enforces; empty when it is fine.

    Checked: each node (root, property, additionalProperties, items) has a type unless it preserves unknown
    fields or is int-or-string; properties/additionalProperties only on objects and not together; items only
    on arrays, and arrays have items; no ``$ref``/``definitions``; no keyword outside JSONSchemaProps; OpenAPI
    v3.0 boolean exclusive bounds next to their bound; no ``uniqueItems: true``; preserve-unknown-fields only
    ``true``; nodes inside allOf/anyOf/oneOf/not carry no type, description, default, additionalProperties or
    nullable and name only fields the parent declares; ``required`` names declared properties; the root is an
    object whose ``metadata`` restricts at most name and generateName; CEL rules name only declared fields.
    """
    violations: list[str] = []
    _check_node(schema, path, violations, in_junctor=False)
    if schema.get("type") != "object":
        violations.append(f"{path}.type: the root must be an object")
    metadata = schema.get("properties", {}).get("metadata", {})
    extra_metadata = sorted(set(metadata.get("properties", {})) - _ROOT_METADATA_FIELDS)
    if extra_metadata:
        violations.append(f"{path}.properties.metadata: only name and generateName may be restricted")
    return violations


def _check_node(node: Any, path: str, violations: list[str], *, in_junctor: bool) -> None:
    if not isinstance(node, dict):
        violations.append(f"{path}: a schema node must be an object, not {type(node).__name__}")
        return
    for key in sorted(set(node) - _JSON_SCHEMA_PROPS):
        violations.append(f"{path}.{key}: not a keyword of apiextensions.k8s.io/v1 JSONSchemaProps")
    for key in ("$ref", "definitions", "$defs"):
        if key in node:
            violations.append(f"{path}.{key}: references are not allowed; inline the schema")
    _check_shape(node, path, violations, in_junctor=in_junctor)
    _check_bounds(node, path, violations)
    _check_rules(node, path, violations)
    for name, sub in node.get("properties", {}).items():
        _check_node(sub, f"{path}.properties.{name}", violations, in_junctor=in_junctor)
    if isinstance(node.get("additionalProperties"), dict):
        _check_node(node["additionalProperties"], f"{path}.additionalProperties", violations, in_junctor=in_junctor)
    if "items" in node:
        _check_node(node["items"], f"{path}.items", violations, in_junctor=in_junctor)
    for junctor in _JUNCTORS:
        for index, sub in enumerate(_as_list(node.get(junctor))):
            where = f"{path}.{junctor}[{index}]"
            _check_node(sub, where, violations, in_junctor=True)
            for name in sorted(set(sub.get("properties", {}) if isinstance(sub, dict) else {})):
                if name not in node.get("properties", {}):
                    violations.append(f"{where}.properties.{name}: not declared by the structural parent")


def _check_shape(node: dict[str, Any], path: str, violations: list[str], *, in_junctor: bool) -> None:
    kind = node.get("type")
    if in_junctor:
        for key in _FORBIDDEN_IN_JUNCTORS:
            if key in node:
                violations.append(f"{path}.{key}: not allowed inside allOf/anyOf/oneOf/not")
    elif not kind and not node.get(PRESERVE_UNKNOWN) and not node.get("x-kubernetes-int-or-string"):
        violations.append(f"{path}.type: missing; every node needs a type")
    if not in_junctor:
        if ("properties" in node or "additionalProperties" in node) and kind != "object":
            violations.append(f"{path}: properties/additionalProperties need type: object, not {kind!r}")
        if "items" in node and kind != "array":
            violations.append(f"{path}.items: needs type: array, not {kind!r}")
        if kind == "array" and "items" not in node:
            violations.append(f"{path}.items: missing; an array needs an items schema")
    if "properties" in node and "additionalProperties" in node:
        violations.append(f"{path}.additionalProperties: cannot be used together with properties")
    if node.get("additionalProperties") is False:
        violations.append(f"{path}.additionalProperties: false is not allowed; unknown fields are pruned")
    if PRESERVE_UNKNOWN in node and node[PRESERVE_UNKNOWN] is not True:
        violations.append(f"{path}.{PRESERVE_UNKNOWN}: must be true or absent")
    if node.get("uniqueItems") is True:
        violations.append(f"{path}.uniqueItems: true is not allowed (quadratic cost); use a list-type set")
    if "items" in node and not isinstance(node["items"], dict):
        violations.append(f"{path}.items: must be one schema, not a list")
    declared = node.get("properties", {})
    for name in node.get("required", []):
        if "properties" in node and name not in declared:
            violations.append(f"{path}.required: {name!r} is not a declared property")


def _check_bounds(node: dict[str, Any], path: str, violations: list[str]) -> None:
    for bound in ("minimum", "maximum"):
        exclusive = "exclusive" + bound.capitalize()
        if exclusive not in node:
            continue
        if not isinstance(node[exclusive], bool):
            violations.append(f"{path}.{exclusive}: must be a boolean in OpenAPI v3.0; put the number in {bound}")
        elif bound not in node:
            violations.append(f"{path}.{exclusive}: needs {bound}")


def _check_rules(node: dict[str, Any], path: str, violations: list[str]) -> None:
    declared = node.get("properties")
    for index, rule in enumerate(node.get(VALIDATIONS, [])):
        where = f"{path}.{VALIDATIONS}[{index}]"
        if not isinstance(rule, dict) or not rule.get("rule"):
            violations.append(f"{where}.rule: missing")
            continue
        if declared is None:
            continue
        for name in sorted(set(_SELF_FIELD.findall(rule["rule"])) - set(declared)):
            violations.append(f"{where}: the rule names self.{name}, which is not a declared property")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
