"""``slsbot get`` (the real command line, in this process) against the admin API served on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from pydantic import SecretStr

from slsbot.adapters.admin_connection import AdminConnection, write_admin_connection
from slsbot.interfaces.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def no_tokens_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLSBOT_ADMIN_URL", "SLSBOT_ADMIN_TOKEN", "SLSBOT_OPERATOR_TOKEN", "SLSBOT_VIEWER_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def token_file(tmp_path: Path, token: str) -> str:
    path = tmp_path / "token"
    path.write_text(token + "\n")
    path.chmod(0o600)  # as a token file is kept (the secret scan skips owner-only files)
    return str(path)


def test_the_table_from_the_file_slsbot_up_wrote(served_admin_api, tmp_path: Path, capsys) -> None:
    state = tmp_path / "state"
    connection = AdminConnection(url=served_admin_api.url, token=SecretStr(served_admin_api.admin_token))
    write_admin_connection(state / "admin-api.json", connection)
    assert main(["get", "strategies", "--state-dir", str(state)]) == 0
    header, btc, eth = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "NAMESPACE", "NAME", "PHASE", "READY", "REASON", "RETURN%", "PNL", "UNREALIZED", "TRADES", "WIN%", "DD%",
        "RESTARTS", "AGE",
    ]  # fmt: skip
    assert btc.split()[:12] == [
        "default", "btc-trend", "Running", "True", "RuntimeReady", "+2.50", "+180.25", "+70.25", "8", "62.5", "1.50",
        "1",
    ]  # fmt: skip
    assert eth.split()[:5] == ["default", "eth-trend", "Pending", "Unknown", "-"]


def test_one_strategy_as_json_with_a_token_file(served_admin_api, tmp_path: Path, capsys) -> None:
    args = ["get", "strategy", "btc-trend", "-o", "json", "--url", served_admin_api.url]
    assert main([*args, "--token-file", token_file(tmp_path, served_admin_api.viewer_token)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["name"], body["return_percent"], body["win_rate_percent"]) == ("btc-trend", 2.505, 62.5)


def test_a_token_from_the_environment(served_admin_api, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLSBOT_ADMIN_URL", served_admin_api.url)
    monkeypatch.setenv("SLSBOT_VIEWER_TOKEN", served_admin_api.viewer_token)
    assert main(["get", "strategies", "-n", "default"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("NAME ")  # one namespace asked: no NAMESPACE column


def test_experiments_as_a_table_and_one_as_json(served_admin_api, tmp_path: Path, capsys) -> None:
    viewer = token_file(tmp_path, served_admin_api.viewer_token)
    assert main(["get", "experiments", "-n", "default", "--url", served_admin_api.url, "--token-file", viewer]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "NAME", "TYPE", "PHASE", "READY", "REASON", "STEP", "CANDIDATE%", "EVIDENCE", "VERDICT", "AGE"
    ]  # fmt: skip
    assert row.split()[:9] == ["btc-ab", "ab", "Pending", "Unknown", "-", "-", "-", "-", "-"]
    assert main(["get", "exp", "btc-ab", "-o", "json", "--url", served_admin_api.url, "--token-file", viewer]) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["name"], body["type"], body["baseline"], body["candidate"]) == (
        "btc-ab",
        "ab",
        "btc-trend",
        "eth-trend",
    )
    assert main(["get", "experiment", "ghost", "--url", served_admin_api.url, "--token-file", viewer]) == 1
    assert capsys.readouterr().err == "slsbot get: Experiment 'ghost' does not exist in any namespace\n"


def test_a_refused_token_an_unknown_strategy_and_no_server_exit_1_saying_what_to_do(
    served_admin_api, tmp_path: Path, capsys
) -> None:
    wrong = token_file(tmp_path, "not-the-token-0123456789")
    assert main(["get", "strategies", "--url", served_admin_api.url, "--token-file", wrong]) == 1
    err = capsys.readouterr().err
    assert f"refused the token from --token-file {wrong} (unknown bearer token" in err
    assert "not-the-token-0123456789" not in err

    good = token_file(tmp_path, served_admin_api.viewer_token)
    assert main(["get", "strategy", "ghost", "--url", served_admin_api.url, "--token-file", good]) == 1
    assert capsys.readouterr().err == "slsbot get: Strategy 'ghost' does not exist in any namespace\n"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{probe.getsockname()[1]}"
    assert main(["get", "strategies", "--url", nobody, "--token-file", good]) == 1
    assert f"no admin API answers at {nobody} (ConnectError); start the supervisor with 'slsbot up -f DIR'" in (
        capsys.readouterr().err
    )
