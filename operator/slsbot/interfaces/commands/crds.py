"""``slsbot crds``: write the CRDs (and optionally the API reference) generated from the API models.

    slsbot crds --output crds --docs docs/reference/api.md           # what `make crds` runs
    slsbot crds --output crds --docs docs/reference/api.md --check   # exit 1 and list stale files

Only files whose content changes are rewritten. ``*.slsbot.io.yaml`` files in the output folder that no kind
generates any more (a renamed plural) are stale: ``--check`` reports them and a write removes them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from slsbot.api import GROUP
from slsbot.domain.api_reference import render_api_reference
from slsbot.domain.crds import REGENERATE_COMMAND, generated_crd_files

HELP = "Generate the CustomResourceDefinitions (and the API reference) from the API models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, default=Path("crds"), help="Folder for <plural>.slsbot.io.yaml.")
    parser.add_argument("--docs", type=Path, default=None, help="Also write the API reference to this file.")
    parser.add_argument(
        "--check", action="store_true", help="Write nothing; exit 1 listing files that are stale or missing."
    )


def run(args: argparse.Namespace) -> int:
    wanted = {args.output / name: content for name, content in generated_crd_files().items()}
    if args.docs is not None:
        wanted[args.docs] = render_api_reference()
    stale = [path for path, content in wanted.items() if _read(path) != content]
    leftovers = sorted(set(args.output.glob(f"*.{GROUP}.yaml")) - set(wanted))
    if args.check:
        return _report_check(stale, leftovers)
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path}")
    for path in leftovers:
        path.unlink()
        print(f"removed {path} (no kind generates it)")
    print(f"{len(wanted) - len(stale)} file(s) already up to date")
    return 0


def _report_check(stale: list[Path], leftovers: list[Path]) -> int:
    if not stale and not leftovers:
        print("CRDs and docs are up to date")
        return 0
    for path in stale:
        print(f"stale: {path}" if path.exists() else f"missing: {path}", file=sys.stderr)
    for path in leftovers:
        print(f"stale: {path} (no kind generates it)", file=sys.stderr)
    print(f"run `{REGENERATE_COMMAND}` to regenerate them", file=sys.stderr)
    return 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
