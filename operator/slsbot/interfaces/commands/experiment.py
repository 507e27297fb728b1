"""``slsbot experiment promote|abort|pause|resume NAME``: steer an A/B rollout of a running local supervisor
through its admin API (the operator role; every request is audited there), as ``kubectl patch`` of
``spec.promote``, ``spec.abort`` or ``spec.paused`` does in a cluster.

    slsbot experiment pause btc-ab
    slsbot experiment promote btc-ab -n default

Where to ask: as ``slsbot get`` (``--url``, ``SLSBOT_ADMIN_URL``, else what ``slsbot up`` wrote in its state folder).
The token: ``--token-file``/``SLSBOT_TOKEN_FILE``, else ``SLSBOT_OPERATOR_TOKEN``, else ``SLSBOT_ADMIN_TOKEN``, else
the token ``slsbot up`` generated and wrote.

Exit codes: 0 done (the controller acts on its next look), 1 refused (no supervisor, a token without the operator
role, no such experiment, not an A/B rollout, or one that has finished: the message says which), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Steer an A/B rollout of a running local supervisor: promote, abort, pause or resume it"
ACTIONS = {
    "promote": "promote the candidate now, whatever the test says",
    "abort": "roll back now: the candidate to zero capital",
    "pause": "hold the current step",
    "resume": "let the rollout move on",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", choices=list(ACTIONS), help="; ".join(f"{name}: {what}" for name, what in ACTIONS.items())
    )
    parser.add_argument("name", help="the Experiment (type ab)")
    parser.add_argument("-n", "--namespace", help="its namespace, when the name exists in several")
    parser.add_argument("--url", help="the admin API's URL (default: SLSBOT_ADMIN_URL, else what slsbot up wrote)")
    parser.add_argument("--token-file", type=Path, metavar="FILE", help="a file holding the bearer token")
    parser.add_argument(
        "--state-dir", type=Path, help="the supervisor's state folder (default: SLSBOT_STATE_DIR, else var/slsbot)"
    )


def run(args: argparse.Namespace) -> int:
    from slsbot.domain.errors import SlsbotError
    from slsbot.interfaces.commands.get import ConnectionProblem, admin_client

    try:
        with admin_client(args, acting=True) as client:
            answer = client.steer_experiment(args.name, args.action, namespace=args.namespace)
    except (ConnectionProblem, SlsbotError) as error:
        print(f"slsbot experiment: {error}", file=sys.stderr)
        return 1
    where = f"{answer.get('namespace')}/{answer.get('name')}"
    print(
        f"experiment {where}: {args.action} asked ({ACTIONS[args.action]}); it is {answer.get('phase')}, and the "
        "controller acts on its next look (GET /api/v1/experiments/" + str(answer.get("name")) + " shows it)"
    )
    return 0
