"""``slsbot rotate-control-key``: give the local supervisor a new control key without restarting a runtime.

The supervisor's ``<state dir>/control.key`` gets a new random key; the old one stays on its second line, accepted
until ``--grace`` from now (default 1h). A running ``slsbot up`` reads the file again on its next pass and rewrites
every runtime's token file; each runtime reads its file again on its next control request. Exit codes: 0 rotated,
2 no key file yet (start ``slsbot up`` once) or an unusable one. Neither key is ever printed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

HELP = "Give the local supervisor a new control key; the old one stays valid for a grace period"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", type=Path, help="the supervisor's state folder (default: SLSBOT_STATE_DIR, else var/slsbot)"
    )
    parser.add_argument(
        "--grace",
        default="1h",
        metavar="DURATION",
        help="how long the old key stays valid, e.g. 15m, 1h, 1d (default 1h): longer than a supervisor pass",
    )


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from slsbot.adapters.control_tokens import ControlKeyError, rotate_control_key_file
    from slsbot.adapters.manifest_folder import validation_problems
    from slsbot.api.base import parse_duration
    from slsbot.settings import ControlPlaneSettings

    try:
        grace = parse_duration(args.grace)
    except ValueError as exc:
        print(f"slsbot rotate-control-key: --grace: {exc}", file=sys.stderr)
        return 2
    try:
        settings = ControlPlaneSettings(**({"state_dir": args.state_dir} if args.state_dir is not None else {}))
    except ValidationError as exc:
        print(
            "slsbot rotate-control-key: invalid settings:\n  " + "\n  ".join(validation_problems(exc)), file=sys.stderr
        )
        return 2
    path = settings.control_key_path
    if not path.exists():
        print(
            f"slsbot rotate-control-key: {path} does not exist: slsbot up creates it on its first start "
            "(or pass --state-dir)",
            file=sys.stderr,
        )
        return 2
    try:
        until = rotate_control_key_file(path, grace=grace, now=datetime.now(UTC))
    except ControlKeyError as exc:
        print(f"slsbot rotate-control-key: {exc}", file=sys.stderr)
        return 2
    print(f"rotated {path}: the previous key is accepted until {until.isoformat(timespec='seconds')}")
    return 0
