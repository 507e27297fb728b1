"""``slsbot get``: the table it prints, where it finds the URL and the token, and ``slsbot --version``.
Calls to a served admin API are in tests/integration/admin_api/test_get_command_served.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pytest
from pydantic import SecretStr

from slsbot.adapters.admin_connection import AdminConnection, write_admin_connection
from slsbot.interfaces.admin_api.schemas import ExperimentView, StrategyView, VariantView
from slsbot.interfaces.cli import main
from slsbot.interfaces.commands.get import (
    ConnectionProblem,
    format_age,
    render_experiments,
    render_strategies,
    resolve_connection,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def view(name: str, namespace: str = "default", **figures) -> StrategyView:
    values = {
        "name": name,
        "namespace": namespace,
        "phase": "Pending",
        "ready": "Unknown",
        "reason": None,
        "conditions": [],
        "generation": 1,
        "observed_generation": 0,
        "paused": False,
        "paused_override": None,
        "restarts": 0,
        "pid": None,
        "last_heartbeat": None,
        "equity": None,
        "return_percent": None,
        "realized_pnl": None,
        "unrealized_pnl": None,
        "win_rate_percent": None,
        "drawdown_percent": None,
        "max_drawdown_percent": None,
        "closed_trades": None,
        "idle_reason": None,
        "open_positions": None,
        "trade_count": None,
        "config_hash": None,
        "created_at": NOW - timedelta(minutes=5),
        "deleting": False,
    }
    return StrategyView(**{**values, **figures})


def test_the_table_shows_profit_at_a_glance_like_kubectl() -> None:
    running = view(
        "btc-trend",
        phase="Running",
        ready="True",
        reason="RuntimeReady",
        return_percent=2.506,
        realized_pnl=1180.25,
        unrealized_pnl=-70.5,
        closed_trades=8,
        win_rate_percent=62.5,
        drawdown_percent=1.5,
        restarts=2,
        created_at=NOW - timedelta(hours=3, minutes=10),
    )
    table = render_strategies([running, view("eth-trend")], now=NOW, show_namespace=True)
    assert table.splitlines() == [
        "NAMESPACE   NAME        PHASE     READY     REASON         RETURN%   PNL         UNREALIZED   TRADES   WIN%   DD%    RESTARTS   AGE",  # noqa: E501
        "default     btc-trend   Running   True      RuntimeReady   +2.51     +1,180.25   -70.50       8        62.5   1.50   2          3h",  # noqa: E501
        "default     eth-trend   Pending   Unknown   -              -         -           -            -        -      -      0          5m",  # noqa: E501
    ]
    assert render_strategies([running], now=NOW, show_namespace=False).startswith("NAME        PHASE")


def experiment_view(name: str, kind: str = "ab", **fields) -> ExperimentView:
    values = {
        "name": name,
        "namespace": "default",
        "type": kind,
        "phase": "Pending",
        "ready": "Unknown",
        "reason": None,
        "message": None,
        "conditions": [],
        "generation": 1,
        "observed_generation": 0,
        "paused": False,
        "abort": False,
        "promote": False,
        "baseline": "btc-trend" if kind == "ab" else None,
        "candidate": "btc-trend-v2" if kind == "ab" else None,
        "steps": [10.0, 25.0, 50.0, 100.0],
        "current_step_index": None,
        "variants": [],
        "statistic": None,
        "threshold": None,
        "verdict": None,
        "decisions": [],
        "tuning": None,
        "created_at": NOW - timedelta(minutes=5),
    }
    return ExperimentView(**{**values, **fields})


def variant(name: str, strategy: str, allocation: float) -> VariantView:
    return VariantView(
        name=name,
        strategy=strategy,
        allocation_percent=allocation,
        trades=3,
        return_percent=None,
        sharpe=None,
        drawdown_percent=None,
    )


def test_the_experiments_table_shows_where_a_rollout_is_and_what_the_test_says() -> None:
    rolling = experiment_view(
        "btc-ab",
        phase="Progressing",
        ready="True",
        reason="Progressing",
        current_step_index=2,
        variants=[variant("baseline", "btc-trend", 25.0), variant("candidate", "btc-trend-v2", 12.5)],
        statistic=0.5712,
        threshold=20.0,
        verdict="continue",
        created_at=NOW - timedelta(hours=2),
    )
    tuning = experiment_view("btc-tuning", "tuning", phase="Completed", ready="True", reason="Completed")
    table = render_experiments([rolling, tuning, experiment_view("eth-ab")], now=NOW, show_namespace=True)
    assert table.splitlines() == [
        "NAMESPACE   NAME         TYPE     PHASE         READY     REASON        STEP        CANDIDATE%   EVIDENCE     VERDICT    AGE",  # noqa: E501
        "default     btc-ab       ab       Progressing   True      Progressing   3/4 (50%)   12.5         0.57/20.00   continue   2h",  # noqa: E501
        "default     btc-tuning   tuning   Completed     True      Completed     -           -            -            -          5m",  # noqa: E501
        "default     eth-ab       ab       Pending       Unknown   -             -           -            -            -          5m",  # noqa: E501
    ]
    assert render_experiments([tuning], now=NOW, show_namespace=False).startswith("NAME         TYPE")


@pytest.mark.parametrize(
    ("elapsed", "shown"),
    [(timedelta(seconds=42), "42s"), (timedelta(minutes=7, seconds=59), "7m"), (timedelta(hours=5), "5h"),
     (timedelta(days=3, hours=23), "3d"), (timedelta(seconds=-3), "0s")],
)  # fmt: skip
def test_age_is_kubectls(elapsed: timedelta, shown: str) -> None:
    assert format_age(elapsed) == shown


def test_the_url_and_token_come_from_flags_then_environment_then_the_file_slsbot_up_wrote(tmp_path: Path) -> None:
    written = tmp_path / "admin-api.json"
    write_admin_connection(written, AdminConnection(url="http://127.0.0.1:8080", token=SecretStr("from-file-token")))
    token_file = tmp_path / "token"
    token_file.write_text("from-flag-token\n")
    environment = ("SLSBOT_VIEWER_TOKEN", SecretStr("from-env-token"))

    url, token, source = resolve_connection(url=None, token_file=None, environment_token=None, connection_path=written)
    assert (url, token.get_secret_value(), source) == ("http://127.0.0.1:8080", "from-file-token", str(written))
    url, token, source = resolve_connection(
        url="http://127.0.0.1:9999", token_file=None, environment_token=environment, connection_path=written
    )
    assert (url, token.get_secret_value(), source) == ("http://127.0.0.1:9999", "from-env-token", "SLSBOT_VIEWER_TOKEN")
    _, token, source = resolve_connection(
        url=None, token_file=token_file, environment_token=environment, connection_path=written
    )
    assert (token.get_secret_value(), source) == ("from-flag-token", f"--token-file {token_file}")


def test_no_supervisor_and_no_token_say_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "admin-api.json"
    with pytest.raises(ConnectionProblem, match=r"no supervisor found: .* Start one with 'slsbot up -f DIR'"):
        resolve_connection(url=None, token_file=None, environment_token=None, connection_path=missing)
    write_admin_connection(missing, AdminConnection(url="http://127.0.0.1:8080", token=None))
    with pytest.raises(ConnectionProblem, match=r"set the same SLSBOT_ADMIN_TOKEN .* or pass --token-file"):
        resolve_connection(url=None, token_file=None, environment_token=None, connection_path=missing)
    with pytest.raises(ConnectionProblem, match="--token-file: cannot read"):
        resolve_connection(url=None, token_file=tmp_path / "nope", environment_token=None, connection_path=missing)


def test_get_without_a_supervisor_exits_1_saying_how_to_start_one(tmp_path: Path, capsys, monkeypatch) -> None:
    for name in ("SLSBOT_ADMIN_URL", "SLSBOT_ADMIN_TOKEN", "SLSBOT_OPERATOR_TOKEN", "SLSBOT_VIEWER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["get", "strategies", "--state-dir", str(tmp_path)]) == 1
    assert "Start one with 'slsbot up -f DIR'" in capsys.readouterr().err


def test_an_unknown_resource_is_refused_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["get", "accounts"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'accounts'" in capsys.readouterr().err


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"slsbot {version('slsbot')}\n"
