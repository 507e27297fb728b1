"""``slsbot get strategies|experiments [NAME]``: a running local supervisor's strategies or experiments as a table
(as ``kubectl get`` shows them in a cluster), or as JSON with ``-o json``, without curl or a token in hand.

    slsbot get strategies
    slsbot get strategy btc-trend -o json
    slsbot get experiments

Where to ask: ``--url``, else ``SLSBOT_ADMIN_URL``, else the URL ``slsbot up`` wrote to
``<state dir>/admin-api.json`` (``--state-dir``, ``SLSBOT_STATE_DIR``, default ``var/slsbot``). The token:
``--token-file``/``SLSBOT_TOKEN_FILE``, else the least powerful of ``SLSBOT_VIEWER_TOKEN``,
``SLSBOT_OPERATOR_TOKEN`` and ``SLSBOT_ADMIN_TOKEN``, else the token ``slsbot up`` generated and wrote to that file.

Exit codes: 0 done, 1 no supervisor answers, the token is refused or the strategy or experiment does not exist (the
message says what to do), 2 bad arguments.
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

HELP = "Print a running local supervisor's strategies or experiments as a table (or JSON): phase, readiness..."
STRATEGIES = "strategies"
EXPERIMENTS = "experiments"
#: What RESOURCE may be (the kinds' plurals, singulars and the CRDs' short names) and which kind each one means.
RESOURCES = {
    "strategies": STRATEGIES,
    "strategy": STRATEGIES,
    "strat": STRATEGIES,
    "bot": STRATEGIES,
    "experiments": EXPERIMENTS,
    "experiment": EXPERIMENTS,
    "exp": EXPERIMENTS,
}
MISSING = "-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "resource", choices=sorted(RESOURCES), metavar="RESOURCE", help="strategies or experiments (or the singular)"
    )
    parser.add_argument("name", nargs="?", help="only this strategy or experiment")
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
    from slsbot.interfaces.admin_api.schemas import ExperimentView, StrategyView

    kind = RESOURCES[args.resource]
    view_model: type[StrategyView | ExperimentView] = StrategyView if kind == STRATEGIES else ExperimentView
    try:
        with admin_client(args, acting=False) as client:
            if args.name:
                one = client.strategy if kind == STRATEGIES else client.experiment
                answer: Any = one(args.name, namespace=args.namespace)
                views = [view_model.model_validate(answer)]
            else:
                every = client.strategies if kind == STRATEGIES else client.experiments
                answer = every(namespace=args.namespace)
                views = [view_model.model_validate(item) for item in answer]
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
        print(f"No {kind} in {where}.", file=sys.stderr)
    else:
        render = render_strategies if kind == STRATEGIES else render_experiments
        print(render(views, now=datetime.now(UTC), show_namespace=args.namespace is None))
    return 0


COLUMNS = ("NAME", "PHASE", "READY", "REASON", "RETURN%", "PNL", "UNREALIZED", "TRADES", "WIN%", "DD%")
TAIL_COLUMNS = ("RESTARTS", "AGE")


def render_strategies(views: Sequence[Any], *, now: datetime, show_namespace: bool) -> str:
    """A table as ``kubectl get`` prints one: a header, one row per strategy, columns padded to fit. Returns and
    drawdowns are in percent; PnL in the quote currency; a figure the runtime has not reported yet is '-'."""
    rows: list[tuple[str, ...]] = []
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
    return _table(COLUMNS + TAIL_COLUMNS, rows, show_namespace=show_namespace)


EXPERIMENT_COLUMNS = ("NAME", "TYPE", "PHASE", "READY", "REASON", "STEP", "CANDIDATE%", "EVIDENCE", "VERDICT", "AGE")


def render_experiments(views: Sequence[Any], *, now: datetime, show_namespace: bool) -> str:
    """The same table for experiments. An A/B rollout's STEP is the step it is at of all its steps (with that step's
    share, in % of the baseline's), CANDIDATE% the share of the account the candidate trades with now, EVIDENCE the
    sequential test's statistic against the threshold at which it decides, VERDICT its last answer; '-' where the
    rollout has not got there yet, and for a tuning run (``-o json`` and the admin API give its figures)."""
    rows: list[tuple[str, ...]] = []
    for view in views:
        index = view.current_step_index
        step = MISSING
        if index is not None and 0 <= index < len(view.steps):
            step = f"{index + 1}/{len(view.steps)} ({view.steps[index]:g}%)"
        candidate = next((v for v in view.variants if v.strategy == view.candidate), None)
        evidence = MISSING
        if view.statistic is not None and view.threshold is not None:
            evidence = f"{view.statistic:.2f}/{view.threshold:.2f}"
        row = (
            view.name,
            view.type,
            view.phase,
            view.ready,
            view.reason or MISSING,
            step,
            MISSING if candidate is None else f"{candidate.allocation_percent:g}",
            evidence,
            view.verdict or MISSING,
            format_age(now - view.created_at),
        )
        rows.append(((view.namespace,) if show_namespace else ()) + row)
    return _table(EXPERIMENT_COLUMNS, rows, show_namespace=show_namespace)


def _table(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, show_namespace: bool) -> str:
    """A header and the rows, each column padded to its widest cell, three spaces apart."""
    every = [(("NAMESPACE",) if show_namespace else ()) + columns, *rows]
    widths = [max(len(row[column]) for row in every) for column in range(len(every[0]))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in every
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
