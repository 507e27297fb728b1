"""``slsbot report``: a runtime's orders, fills, positions, equity curve and summary, read-only from its
state file (safe while the runtime runs). Returns, drawdowns and the win rate are in percent (keys ``*_pct``)."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "Print a runtime's orders, fills, positions and equity from its state file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", required=True, metavar="PATH", help="the runtime's SQLite state file")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON (default: a summary)")


def run(args: argparse.Namespace) -> int:
    from slsbot_runtime.domain.errors import StateError
    from slsbot_runtime.persistence.report import build_report

    try:
        report = build_report(args.state)
    except StateError as error:
        print(f"slsbot report: {error}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(render_summary(report["summary"]))
    return 0


def render_summary(summary: dict) -> str:
    """One ``key: value`` line per figure; percentages with two decimals and a % sign."""
    lines = []
    for key, value in summary.items():
        if key.endswith("_pct") and isinstance(value, int | float):
            value = f"{value:.2f} %"
        lines.append(f"{key:>24}: {value}")
    return "\n".join(lines)
