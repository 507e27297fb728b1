"""What a folder of slsbot YAML declares, file by file, as ``kubectl apply -f DIR`` would apply it. Pure: the files
are read and parsed by ``slsbot.adapters.manifest_folder``; this decides what is in force after a (re)load.

A valid file is in force as written. A file with a problem is refused: its objects keep their last good state
(none, for a file that never loaded), so a typo never deletes or changes anything. A file that is gone takes its
objects with it. An object declared by two files stays with the file that already had it (or, between two new
files, with the first in name order); the other file is refused.

Kubernetes ``Secret`` objects (decrypted from sops files by the adapter) are planned the same way, as
``DeclaredSecret``: their values are kept in memory only and never shown in a repr.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slsbot.api import Resource


@dataclass(frozen=True, slots=True)
class DeclaredSecret:
    """A Kubernetes ``Secret`` declared in the folder: its name, labels and decoded values (``data`` decoded from
    base64, ``stringData`` on top, as the API server merges them). The values are never in a repr."""

    namespace: str
    name: str
    data: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return ("Secret", self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """One file as read: a digest of its bytes, its objects and its problems (none when it is valid). Each
    problem is one line naming the file, the document and the field."""

    path: Path
    digest: str
    resources: tuple[Resource[Any, Any], ...] = ()
    problems: tuple[str, ...] = ()
    secrets: tuple[DeclaredSecret, ...] = ()


@dataclass(frozen=True, slots=True)
class AppliedFile:
    """The content of a file that is in force: the digest it had and the objects (and Secrets) it declared."""

    digest: str
    resources: tuple[Resource[Any, Any], ...]
    secrets: tuple[DeclaredSecret, ...] = ()


@dataclass(frozen=True, slots=True)
class FolderPlan:
    """What is in force after a load: per file, and the files refused with their problems."""

    applied: dict[Path, AppliedFile] = field(default_factory=dict)
    refused: dict[Path, tuple[str, ...]] = field(default_factory=dict)

    @property
    def resources(self) -> list[Resource[Any, Any]]:
        """Every object in force, in file name then document order."""
        return [r for path in sorted(self.applied) for r in self.applied[path].resources]

    @property
    def secrets(self) -> list[DeclaredSecret]:
        """Every Secret in force, in file name then document order."""
        return [s for path in sorted(self.applied) for s in self.applied[path].secrets]

    @property
    def problems(self) -> list[str]:
        return [line for path in sorted(self.refused) for line in self.refused[path]]


def _key(resource: Resource[Any, Any]) -> tuple[str, str, str]:
    return (resource.kind, resource.namespace, resource.name)


def _keys(applied: AppliedFile | None) -> list[tuple[str, str, str]]:
    if applied is None:
        return []
    return [_key(r) for r in applied.resources] + [s.key for s in applied.secrets]


def plan_folder(files: Sequence[ManifestFile], current: Mapping[Path, AppliedFile]) -> FolderPlan:
    """The files in force once ``files`` (every file now in the folder) replace ``current`` (what was in force;
    empty at start-up, where any refusal refuses the whole folder)."""
    refused: dict[Path, list[str]] = {}
    candidate: dict[Path, AppliedFile | None] = {}
    for item in sorted(files, key=lambda f: f.path):
        if item.problems:
            refused[item.path] = list(item.problems)
            candidate[item.path] = current.get(item.path)
        elif item.path in current and current[item.path].digest == item.digest:
            candidate[item.path] = current[item.path]
        else:
            candidate[item.path] = AppliedFile(item.digest, tuple(item.resources), tuple(item.secrets))

    def is_new(path: Path) -> bool:
        return candidate[path] is not None and candidate[path] is not current.get(path)

    # Each round refuses at least one new file (it falls back to its last good content, which agreed with the
    # rest of what was in force), so this ends.
    while True:
        owners: dict[tuple[str, str, str], list[Path]] = {}
        for path in sorted(candidate):
            applied = candidate[path]
            for key in _keys(applied):
                owners.setdefault(key, []).append(path)
        losers: dict[Path, str] = {}
        for (kind, namespace, name), paths in owners.items():
            if len(paths) < 2:
                continue
            keeper = next((p for p in paths if not is_new(p)), paths[0])
            for path in paths:
                if path != keeper and is_new(path) and path not in losers:
                    losers[path] = (
                        f"{path}: {kind} {namespace}/{name} is also defined in {keeper}; "
                        "metadata.name must be unique per kind and namespace"
                    )
        if not losers:
            break
        for path, problem in losers.items():
            refused.setdefault(path, []).append(problem)
            candidate[path] = current.get(path)

    applied_files: dict[Path, AppliedFile] = {}
    seen: set[tuple[str, str, str]] = set()
    for path in sorted(candidate):
        applied = candidate[path]
        if applied is None:
            continue
        kept = tuple(r for r in applied.resources if _key(r) not in seen)  # guards a conflict in ``current`` itself
        kept_secrets = tuple(s for s in applied.secrets if s.key not in seen)
        seen.update(_key(r) for r in kept)
        seen.update(s.key for s in kept_secrets)
        unchanged = len(kept) == len(applied.resources) and len(kept_secrets) == len(applied.secrets)
        applied_files[path] = applied if unchanged else AppliedFile(applied.digest, kept, kept_secrets)
    return FolderPlan(applied_files, {path: tuple(lines) for path, lines in refused.items()})
