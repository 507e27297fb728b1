"""Write argocd-cm-patch.yaml from the health checks in health/ (one ``<group>_<Kind>.lua`` per kind, each after
``_common.lua``, what every kind's check shares).

    .venv/bin/python deploy/argocd/generate.py           # rewrite the patch
    .venv/bin/python deploy/argocd/generate.py --check   # exit 1 when the patch is not what the scripts give

Each script, ``_common.lua`` then ``<group>_<Kind>.lua``, becomes the argocd-cm key
``resource.customizations.health.<group>_<Kind>``, as Argo CD reads it: one whole script per key, since Argo CD
runs each key alone (no ``require``). The patch is a ConfigMap with only those keys: ``kubectl patch`` (or a
kustomize patch) merges them into argocd-cm. tests/unit/deploy/test_argocd_manifests.py fails while the patch and
the scripts disagree; tests/unit/deploy/test_argocd_health.py runs the checks from the patch.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEALTH = HERE / "health"
PATCH = HERE / "argocd-cm-patch.yaml"
KEY_PREFIX = "resource.customizations.health."
COMMON = "_common.lua"  # put before every kind's script

HEADER = """\
# Argo CD health checks for slsbot's kinds, merged into Argo CD's argocd-cm ConfigMap:
#   kubectl -n argocd patch configmap argocd-cm --patch-file deploy/argocd/argocd-cm-patch.yaml
# GENERATED from deploy/argocd/health/*.lua by deploy/argocd/generate.py: edit the .lua files, then run it.
# Each key is deploy/argocd/health/_common.lua followed by the kind's own script.
# What each health means per kind: docs/how-to/argo-cd.md.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
"""


def health_scripts(folder: Path = HEALTH) -> dict[str, str]:
    """argocd-cm key -> the whole Lua script Argo CD runs (``_common.lua``, if ``folder`` has one, then the kind's
    own), for every ``<group>_<Kind>.lua`` in ``folder``, sorted by key."""
    common = _source(folder / COMMON) if (folder / COMMON).exists() else ""
    scripts = {}
    for path in sorted(folder.glob("*.lua")):
        if path.name == COMMON:
            continue
        group, _, kind = path.stem.rpartition("_")
        if not group or not kind[:1].isupper():
            raise ValueError(f"{path.name}: name a health check <group>_<Kind>.lua, e.g. slsbot.io_Strategy.lua")
        scripts[KEY_PREFIX + path.stem] = common + _source(path)
    return scripts


def _source(path: Path) -> str:
    source = path.read_text()
    if "\t" in source or any(line != line.rstrip() for line in source.splitlines()):
        raise ValueError(f"{path.name}: tabs or trailing spaces cannot be kept in a YAML block scalar")
    return source


def render_patch(scripts: dict[str, str]) -> str:
    """The patch: each script as a literal block scalar, byte for byte (``|`` keeps its one final newline)."""
    lines = [HEADER]
    for key, source in scripts.items():
        lines.append(f"  {key}: |\n")
        lines.extend(f"    {line}\n" if line else "\n" for line in source.rstrip("\n").split("\n"))
    return "".join(lines)


def main(argv: list[str]) -> int:
    scripts = health_scripts()
    text = render_patch(scripts)
    if "--check" in argv:
        if not PATCH.exists() or PATCH.read_text() != text:
            print(f"{PATCH} is stale: run .venv/bin/python deploy/argocd/generate.py", file=sys.stderr)
            return 1
        return 0
    PATCH.write_text(text)
    print(f"wrote {PATCH} ({len(text)} bytes, {len(scripts)} health checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
