"""The ``slsbot`` command. Each subcommand lives in ``slsbot.interfaces.commands.<name>`` and is imported only
when it runs, so ``slsbot runtime`` in a pod never loads kopf and ``slsbot up`` never loads the Kubernetes client.

A command module provides ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

COMMANDS: dict[str, str] = {
    "up": "Run the embedded local supervisor over a folder of slsbot YAML",
    "get": "Print a running local supervisor's strategies (phase, return, PnL, win rate) or experiments as a table",
    "experiment": "Steer an A/B rollout of a running local supervisor: promote, abort, pause or resume it",
    "rotate-control-key": "Give the local supervisor a new control key; the old one stays valid for a grace period",
    "operator": "Run the kopf operator against the current Kubernetes context",
    "runtime": "Run one bot runtime from a RuntimeConfig file",
    "report": "Print a runtime's orders, fills, positions and equity from its state file, or the daily account report",
    "backtest": "Backtest a RuntimeConfig over recorded candles",
    "evaluate": "Evaluate a RuntimeConfig out of sample, walk-forward, against buy-and-hold",
    "crds": "Generate the CustomResourceDefinitions from the API models",
    "audit": "Verify the admin API's audit trail (its hash chain) or export it as JSON lines",
    "backup": "Run one job of a BackupSchedule (backup, check, prune or a restore drill) and exit",
    "restore": "Put a Strategy's state back from a backup snapshot (its runtime stopped)",
}


def package_version() -> str:
    try:
        return version("slsbot")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slsbot", description="Run algorithmic trading bots as declarative resources."
    )
    parser.add_argument("--version", action="version", version=f"slsbot {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        build_parser().parse_args(argv)  # prints usage, and the error for an unknown command
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(f"slsbot.interfaces.commands.{name.replace('-', '_')}")
    parser = argparse.ArgumentParser(prog=f"slsbot {name}", description=COMMANDS[name])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
