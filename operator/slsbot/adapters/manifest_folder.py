"""Read a folder of slsbot YAML, as ``kubectl apply -f DIR`` would: every ``*.yaml`` and ``*.yml`` directly in it,
each file possibly holding several documents, each document validated with ``slsbot.api.parse_resource``.

All or nothing: every problem in every file is collected, and if there is any, ``InvalidSpecError`` is raised
with one line per problem naming the file, the document (counted from 1) and the field, and nothing is returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from slsbot.api import Resource, parse_resource
from slsbot.domain.errors import InvalidSpecError

MANIFEST_SUFFIXES = (".yaml", ".yml")


def field_path(location: tuple[Any, ...]) -> str:
    """``('spec', 'symbols', 0)`` -> ``spec.symbols[0]``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(document)"


def validation_problems(exc: ValidationError) -> list[str]:
    """One ``field: message`` line per error; the offending values are left out (they could be secrets)."""
    return [f"{field_path(error['loc'])}: {error['msg']}" for error in exc.errors(include_input=False)]


def _describe(document: Any) -> str:
    if isinstance(document, dict):
        name = (document.get("metadata") or {}).get("name") if isinstance(document.get("metadata"), dict) else None
        kind = document.get("kind")
        if kind or name:
            return f" ({kind or '?'} {name or '?'})"
    return ""


def _parse_file(path: Path, problems: list[str]) -> list[Resource[Any, Any]]:
    try:
        documents = list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        problems.append(f"{path}:{where}: not valid YAML: {problem}")
        return []
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot be read: {exc}")
        return []
    resources = []
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        where = f"{path}, document {index}{_describe(document)}"
        if not isinstance(document, dict):
            problems.append(f"{where}: a document must be a mapping with apiVersion, kind, metadata and spec")
            continue
        try:
            resources.append(parse_resource(document))
        except ValidationError as exc:
            problems.extend(f"{where}: {line}" for line in validation_problems(exc))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    return resources


def load_manifest_folder(folder: Path) -> list[Resource[Any, Any]]:
    """Every object in ``folder``, in file name then document order. Raises ``InvalidSpecError`` on any problem."""
    if not folder.is_dir():
        raise InvalidSpecError(f"{folder}: not a folder; pass the folder that holds your slsbot YAML with -f")
    files = sorted(p for p in folder.iterdir() if p.suffix in MANIFEST_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise InvalidSpecError(f"{folder}: no *.yaml or *.yml files in it")
    problems: list[str] = []
    resources: list[Resource[Any, Any]] = []
    origin: dict[tuple[str, str, str], Path] = {}
    for path in files:
        for resource in _parse_file(path, problems):
            key = (resource.kind, resource.namespace, resource.name)
            if key in origin:
                problems.append(
                    f"{path}: {resource.kind} {resource.namespace}/{resource.name} is also defined in "
                    f"{origin[key]}; metadata.name must be unique per kind and namespace"
                )
                continue
            origin[key] = path
            resources.append(resource)
    if problems:
        raise InvalidSpecError(f"{len(problems)} problem(s) in {folder}, nothing loaded:\n  " + "\n  ".join(problems))
    if not resources:
        raise InvalidSpecError(f"{folder}: its YAML files hold no slsbot objects")
    return resources
