"""Read a folder of slsbot YAML, as ``kubectl apply -f DIR`` would: every ``*.yaml`` and ``*.yml`` directly in it,
each file possibly holding several documents, each document validated with ``slsbot.api.parse_resource``.

Each file is read into a ``domain.manifests.ManifestFile``: its objects, or one problem line per mistake naming the
file, the document (counted from 1) and the field. Paths in a manifest are the manifest's own: a relative
``spec.marketData.dataDir`` (and an Experiment's ``spec.history.dataDir``) is resolved against the folder of the file
that declares it, and a replayed Strategy's candles are looked up there with the runtime's own data discovery, so a
wrong path is a problem of that file now rather than a runtime that crashes later.

Secrets: a file encrypted with sops (``adapters.sops``: a document with a top-level ``sops`` block) is decrypted in
memory before it is parsed. Its Kubernetes ``Secret`` documents (``v1``, ``data`` in base64 and/or ``stringData``)
become ``DeclaredSecret``: what a TradingAccount's ``credentials.secretRef`` and a receiver's ``urlSecretRef`` name
locally. A ``Secret`` in a file that is not encrypted is refused: the folder is meant for git.

At start-up the folder is all or nothing (``load_manifest_folder``): any problem in any file raises
``InvalidSpecError`` with every problem, and nothing is returned. ``adapters.manifest_watch`` re-reads it while
the supervisor runs, file by file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from slsbot.adapters.sops import DEFAULT_SOPS, SopsCli, is_sops_file
from slsbot.api import Experiment, Resource, Strategy, parse_resource
from slsbot.api.strategy import DataSource
from slsbot.domain.errors import InvalidSpecError
from slsbot.domain.manifests import DeclaredSecret, FolderPlan, ManifestFile, plan_folder

MANIFEST_SUFFIXES = (".yaml", ".yml")
SECRETS_HOW_TO = "docs/how-to/secrets-in-git.md"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


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


def manifest_paths(folder: Path) -> list[Path]:
    """The manifest files directly in ``folder``, in name order. InvalidSpecError when there are none."""
    if not folder.is_dir():
        raise InvalidSpecError(f"{folder}: not a folder; pass the folder that holds your slsbot YAML with -f")
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise InvalidSpecError(f"{folder}: cannot be read ({exc.strerror}); check its permissions") from exc
    files = sorted(p for p in entries if p.suffix in MANIFEST_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise InvalidSpecError(f"{folder}: no *.yaml or *.yml files in it")
    return files


def read_folder_bytes(folder: Path) -> dict[Path, bytes | OSError]:
    """The bytes of every manifest file in ``folder`` (or the error reading it). InvalidSpecError as
    ``manifest_paths``."""
    contents: dict[Path, bytes | OSError] = {}
    for path in manifest_paths(folder):
        try:
            contents[path] = path.read_bytes()
        except OSError as exc:
            contents[path] = exc
    return contents


def digest_of(content: bytes | OSError) -> str:
    if isinstance(content, OSError):
        return f"unreadable:{content.errno}"
    return hashlib.sha256(content).hexdigest()


def read_manifest_file(path: Path, content: bytes | OSError, *, sops: SopsCli = DEFAULT_SOPS) -> ManifestFile:
    """The objects and Secrets ``content`` (the bytes of ``path``) declares, or its problems. A sops file is
    decrypted with ``sops`` first, in memory."""
    digest = digest_of(content)
    if isinstance(content, OSError):
        return ManifestFile(path, digest, problems=(f"{path}: cannot be read: {content.strerror}",))
    try:
        documents = _yaml_documents(path, content, quote=True)
        encrypted = is_sops_file(documents)
        if encrypted:
            documents = _yaml_documents(path, sops.decrypt(path, content), quote=False)
    except InvalidSpecError as exc:
        return ManifestFile(path, digest, problems=(str(exc),))
    problems: list[str] = []
    resources: list[Resource[Any, Any]] = []
    secrets: list[DeclaredSecret] = []
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        where = f"{path}, document {index}{_describe(document)}"
        if not isinstance(document, dict):
            problems.append(f"{where}: a document must be a mapping with apiVersion, kind, metadata and spec")
            continue
        if document.get("kind") == "Secret":
            if not encrypted:
                problems.append(
                    f"{where}: a Secret in clear in a folder meant for git; encrypt it with sops, e.g. "
                    f"sops --encrypt --age <your age recipient> --encrypted-regex '^(data|stringData)$' --in-place "
                    f"{path.name} (see {SECRETS_HOW_TO})"
                )
                continue
            secret, found = parse_secret(document)
            problems.extend(f"{where}: {line}" for line in found)
            if secret is not None:
                secrets.append(secret)
            continue
        try:
            resource = parse_resource(document)
        except ValidationError as exc:
            problems.extend(f"{where}: {line}" for line in validation_problems(exc))
            continue
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        found = _resolve_paths(resource, path.parent)
        problems.extend(f"{where}: {line}" for line in found)
        resources.append(resource)
    if problems:
        return ManifestFile(path, digest, problems=tuple(problems))
    return ManifestFile(path, digest, resources=tuple(resources), secrets=tuple(secrets))


def _yaml_documents(path: Path, content: bytes, *, quote: bool) -> list[Any]:
    """The YAML documents of ``content``; InvalidSpecError naming the line. ``quote=False`` (decrypted text) leaves
    out YAML's own description of the problem, which can quote the text."""
    try:
        return list(yaml.safe_load_all(content.decode()))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        if not quote:
            raise InvalidSpecError(f"{path}:{where}: its decrypted text is not valid YAML") from None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidSpecError(f"{path}:{where}: not valid YAML: {problem}") from None
    except UnicodeDecodeError as exc:
        raise InvalidSpecError(f"{path}: cannot be read: not UTF-8 ({exc.reason})") from None


def parse_secret(document: dict[str, Any]) -> tuple[DeclaredSecret | None, list[str]]:
    """A ``v1`` ``Secret`` manifest as a ``DeclaredSecret``, or its problems (``field: message``, never a value)."""
    problems: list[str] = []
    if document.get("apiVersion") != "v1":
        problems.append("apiVersion: a Secret's apiVersion is v1")
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        return None, [*problems, "metadata: a Secret needs metadata with a name"]
    name, namespace = metadata.get("name"), metadata.get("namespace", "default")
    if not isinstance(name, str) or len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        problems.append("metadata.name: must be a DNS name (lower case letters, digits, '-' and '.')")
    if not isinstance(namespace, str) or len(namespace) > 63 or not DNS_LABEL.match(namespace):
        problems.append("metadata.namespace: must be a DNS label (lower case letters, digits and '-')")
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        problems.append('metadata.labels: must map names to strings (quote values such as "true")')
        labels = {}
    values: dict[str, bytes] = {}
    for field_name, decode in (("data", _from_base64), ("stringData", _from_text)):
        given = document.get(field_name)
        if given is None:
            continue
        if not isinstance(given, dict):
            problems.append(f"{field_name}: must map keys to values")
            continue
        for key, value in given.items():
            if not isinstance(key, str) or not SECRET_KEY.match(key) or len(key) > 253:
                problems.append(f"{field_name}: the key {str(key)[:64]!r} is not a valid Secret key ([-._a-zA-Z0-9]+)")
                continue
            decoded = decode(value)
            if isinstance(decoded, str):
                problems.append(f"{field_name}.{key}: {decoded}")
            else:
                values[key] = decoded  # stringData comes second: it wins, as on the API server
    if problems:
        return None, problems
    return DeclaredSecret(namespace=namespace, name=name, data=values, labels=dict(labels)), []


def _from_base64(value: Any) -> bytes | str:
    """The bytes, or the problem (a ``str``)."""
    if not isinstance(value, str):
        return "must be a base64 string"
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "not valid base64; put the value in stringData to write it as text"


def _from_text(value: Any) -> bytes | str:
    if not isinstance(value, str):
        return "must be a string; quote it"
    return value.encode()


def _resolve_paths(resource: Resource[Any, Any], base: Path) -> list[str]:
    """Make the paths in ``resource`` absolute, relative ones against ``base`` (the manifest's folder), and check
    what they point to. Returns the problems, one ``field: message`` line each."""
    if isinstance(resource, Experiment) and resource.spec.history.data_dir is not None:
        history = resource.spec.history
        folder = (base / Path(history.data_dir).expanduser()).resolve()
        try:
            history.data_dir = str(folder)
        except ValidationError as exc:
            return [f"spec.history.{line}" for line in validation_problems(exc)]
        if not folder.is_dir():
            return [f"spec.history.dataDir: {folder} is not a folder of recorded candles"]
        return []
    if not isinstance(resource, Strategy) or resource.spec.market_data.data_dir is None:
        return []
    market_data = resource.spec.market_data
    written = market_data.data_dir
    folder = (base / Path(written).expanduser()).resolve()
    try:
        market_data.data_dir = str(folder)
    except ValidationError as exc:
        return [f"spec.marketData.{line}" for line in validation_problems(exc)]
    if market_data.source != DataSource.REPLAY:
        return []
    hint = "" if Path(written).is_absolute() else f" ({written!r}, relative to the manifest's folder {base.resolve()})"
    missing = _missing_candles(folder, resource.spec.symbols, resource.spec.timeframe)
    return [f"spec.{message}{hint}" for message in missing]


def _missing_candles(folder: Path, symbols: list[str], timeframe: str) -> list[str]:
    """What the runtime would refuse: each symbol's candles looked up with its own data discovery."""
    from slsbot_runtime.data.discovery import find_candle_files
    from slsbot_runtime.domain.errors import DataError

    messages: dict[str, None] = {}  # ordered, once each: a missing folder is one problem, not one per symbol
    for symbol in symbols:
        try:
            find_candle_files(folder, symbol, str(timeframe))
        except DataError as exc:
            messages[str(exc)] = None
    return list(messages)


def read_manifest_folder(
    folder: Path, contents: Mapping[Path, bytes | OSError] | None = None, *, sops: SopsCli = DEFAULT_SOPS
) -> list[ManifestFile]:
    """Every manifest file in ``folder``, read and parsed. InvalidSpecError when the folder has none."""
    contents = read_folder_bytes(folder) if contents is None else contents
    return [read_manifest_file(path, content, sops=sops) for path, content in contents.items()]


def load_manifest_folder(folder: Path, *, sops: SopsCli = DEFAULT_SOPS) -> FolderPlan:
    """Every object in ``folder``, in file name then document order (``.resources``), with each file's digest for
    the watcher. Raises ``InvalidSpecError`` naming every problem when there is any: nothing is half-loaded."""
    plan = plan_folder(read_manifest_folder(folder, sops=sops), {})
    if plan.refused:
        problems = plan.problems
        raise InvalidSpecError(f"{len(problems)} problem(s) in {folder}, nothing loaded:\n  " + "\n  ".join(problems))
    if not plan.resources:
        raise InvalidSpecError(f"{folder}: its YAML files hold no slsbot objects")
    return plan
