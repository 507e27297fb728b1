"""``slsbot get strategies [NAME]``: a running local supervisor's strategies as a table (as ``kubectl get``
shows them in a cluster), or as JSON with ``-o json``, without curl or a token in hand.

    slsbot get strategies
    slsbot get strategy btc-trend -o json

Where to ask: ``--url``, else ``SLSBOT_ADMIN_URL``, else the URL ``slsbot up`` wrote to
``<state dir>/admin-api.json`` (``--state-dir``, ``SLSBOT_STATE_DIR``, default ``var/slsbot``). The token:
``--token-file``/``SLSBOT_TOKEN_FILE``, else the least powerful of ``SLSBOT_VIEWER_TOKEN``,
``SLSBOT_OPERATOR_TOKEN`` and ``SLSBOT_ADMIN_TOKEN``, else the token ``slsbot up`` generated and wrote to that file.

Exit codes: 0 done, 1 no supervisor answers, the token is refused or the strategy does not exist (the message
says what to do), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError

if TYPE_CHECKING:
    from slsbot.adapters.admin_client import AdminApiClient

HELP = "Print a running local supervisor's strategies as a table (or JSON): phase, readiness, return, PnL..."
RESOURCES = {"strategies": "strategies", "strategy": "strategies", "strat": "strategies", "bot": "strategies"}
MISSING = "-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("resource", choices=sorted(RESOURCES), metavar="RESOURCE", help="strategies (or strategy)")
    parser.add_argument("name", nargs="?", help="only this strategy")
    parser.add_argument("-n", "--namespace", help="only this namespace (default: every namespace)")
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table", help="default: table")
    parser.add_argument("--url", help="the admin API's URL (default: SLSBOT_ADMIN_URL, else what slsbot up wrote)")
    parser.add_argument("--token-file", type=Path, metavar="FILE", help="a file holding the bearer token")
    parser.add_argument(
        "--state-dir", type=Path, help="the supervisor's state folder (default: SLSBOT_STATE_DIR, else var/slsbot)"
    )


class ConnectionProblem(Exception):
    """No URL or no token to be found; the message says where they are looked for."""


def resolve_connection(
    *, url: str | None, token_file: Path | None, environment_token: tuple[str, SecretStr] | None, connection_path: Path
) -> tuple[str, SecretStr, str]:
    """(url, token, where the token came from), by the precedence in this module's docstring."""
    from slsbot.adapters.admin_connection import read_admin_connection

    written = read_admin_connection(connection_path)
    url = url or (written.url if written is not None else None)
    if not url:
        raise ConnectionProblem(
            f"no supervisor found: {connection_path} does not exist. Start one with 'slsbot up -f DIR' "
            "(or pass --state-dir of the one running), or pass its URL with --url"
        )
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise ConnectionProblem(f"--token-file: cannot read {token_file} ({exc.strerror})") from None
        if not token:
            raise ConnectionProblem(f"--token-file: {token_file} is empty")
        return url, SecretStr(token), f"--token-file {token_file}"
    if environment_token is not None:
        name, token = environment_token
        return url, token, name
    if written is not None and written.token is not None:
        return url, written.token, str(connection_path)
    raise ConnectionProblem(
        "no token: the supervisor's token came from its environment, so set the same SLSBOT_ADMIN_TOKEN (or "
        "SLSBOT_VIEWER_TOKEN) here, or pass --token-file"
    )


def admin_client(args: argparse.Namespace, *, acting: bool) -> AdminApiClient:
    """The admin API client the command-line options (``--url``, ``--token-file``, ``--state-dir``) and the
    settings point at; ``acting``: with the least powerful token that may change something (``slsbot experiment``),
    else a viewer's (``slsbot get``). Raises ConnectionProblem when no URL or token can be found."""
    from slsbot.adapters.admin_client import AdminApiClient
    from slsbot.settings import AdminClientSettings

    overrides: dict[str, Any] = {}
    if args.state_dir is not None:
        overrides["state_dir"] = args.state_dir
    if args.token_file is not None:
        overrides["token_file"] = args.token_file
    settings = AdminClientSettings(**overrides)
    url, token, source = resolve_connection(
        url=args.url or settings.admin_url,
        token_file=settings.token_file,
        environment_token=settings.acting_environment_token if acting else settings.environment_token,
        connection_path=settings.admin_connection_path,
    )
    return AdminApiClient(url, token=token, token_source=source)


def run(args: argparse.Namespace) -> int:
    from slsbot.domain.errors import SlsbotError
    from slsbot.interfaces.admin_api.schemas import StrategyView

    try:
        with admin_client(args, acting=False) as client:
            if args.name:
                answer: Any = client.strategy(args.name, namespace=args.namespace)
                views = [StrategyView.model_validate(answer)]
            else:
                answer = client.strategies(namespace=args.namespace)
                views = [StrategyView.model_validate(item) for item in answer]
    except (ConnectionProblem, SlsbotError) as error:
        print(f"slsbot get: {error}", file=sys.stderr)
        return 1
    except ValidationError as error:
        print(
            f"slsbot get: the admin API answered something this slsbot does not understand "
            f"({error.error_count()} error(s)); is it the same version?",
            file=sys.stderr,
        )
        return 1
    if args.output == "json":
        json.dump(answer, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif not views:
        where = f"namespace {args.namespace}" if args.namespace else "any namespace"
        print(f"No strategies in {where}.", file=sys.stderr)
    else:
        print(render_strategies(views, now=datetime.now(UTC), show_namespace=args.namespace is None))
    return 0


COLUMNS = ("NAME", "PHASE", "READY", "REASON", "RETURN%", "PNL", "UNREALIZED", "TRADES", "WIN%", "DD%")
TAIL_COLUMNS = ("RESTARTS", "AGE")


def render_strategies(views: Sequence[Any], *, now: datetime, show_namespace: bool) -> str:
    """A table as ``kubectl get`` prints one: a header, one row per strategy, columns padded to fit. Returns and
    drawdowns are in percent; PnL in the quote currency; a figure the runtime has not reported yet is '-'."""
    header = (("NAMESPACE",) if show_namespace else ()) + COLUMNS + TAIL_COLUMNS
    rows = [header]
    for view in views:
        row = (
            view.name,
            view.phase,
            view.ready,
            view.reason or MISSING,
            _number(view.return_percent, "{:+.2f}"),
            _number(view.realized_pnl, "{:+,.2f}"),
            _number(view.unrealized_pnl, "{:+,.2f}"),
            MISSING if view.closed_trades is None else str(view.closed_trades),
            _number(view.win_rate_percent, "{:.1f}"),
            _number(view.drawdown_percent, "{:.2f}"),
            str(view.restarts),
            format_age(now - view.created_at),
        )
        rows.append(((view.namespace,) if show_namespace else ()) + row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _number(value: float | None, form: str) -> str:
    return MISSING if value is None else form.format(value)


def format_age(elapsed: timedelta) -> str:
    """kubectl's age: 42s, 7m, 5h, 3d (the largest unit, truncated)."""
    seconds = max(int(elapsed.total_seconds()), 0)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
