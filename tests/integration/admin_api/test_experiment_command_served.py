"""``slsbot experiment promote|abort|pause|resume`` (the real command line, in this process) against the admin API
served on 127.0.0.1: the control lands in the store, and a refusal exits 1 saying why."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from slsbot.adapters.store import get_stored_object
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


def controls(served_admin_api) -> dict | None:
    with Session(served_admin_api.engine) as session:
        row = get_stored_object(session, kind="Experiment", namespace="default", name="btc-ab")
        return row.controls_override


def test_pause_and_resume_with_a_token_that_may_act(served_admin_api, tmp_path: Path, capsys, monkeypatch) -> None:
    admin = token_file(tmp_path, served_admin_api.admin_token)
    assert main(["experiment", "pause", "btc-ab", "--url", served_admin_api.url, "--token-file", admin]) == 0
    assert capsys.readouterr().out.startswith("experiment default/btc-ab: pause asked (hold the current step)")
    assert controls(served_admin_api) == {"paused": True}
    # From the environment, the least powerful token that may act: a viewer's token set beside it is not used.
    monkeypatch.setenv("SLSBOT_ADMIN_URL", served_admin_api.url)
    monkeypatch.setenv("SLSBOT_VIEWER_TOKEN", served_admin_api.viewer_token)
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN", served_admin_api.admin_token)
    assert main(["experiment", "resume", "btc-ab", "-n", "default"]) == 0
    assert controls(served_admin_api) == {"paused": False}


def test_a_viewer_an_unknown_experiment_and_a_bad_action_are_refused(served_admin_api, tmp_path, capsys) -> None:
    before = controls(served_admin_api)
    viewer = token_file(tmp_path, served_admin_api.viewer_token)
    assert main(["experiment", "abort", "btc-ab", "--url", served_admin_api.url, "--token-file", viewer]) == 1
    assert "may not do this: it needs the operator role" in capsys.readouterr().err
    admin = token_file(tmp_path, served_admin_api.admin_token)
    assert main(["experiment", "promote", "ghost", "--url", served_admin_api.url, "--token-file", admin]) == 1
    assert capsys.readouterr().err == "slsbot experiment: Experiment 'ghost' does not exist in any namespace\n"
    assert controls(served_admin_api) == before
    with pytest.raises(SystemExit) as exit_code:
        main(["experiment", "restart", "btc-ab"])
    assert exit_code.value.code == 2
