"""``slsbot rotate-control-key``: a new key with the old one kept for the grace, clear refusals, no key printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from slsbot.adapters.control_tokens import load_or_create_control_key, read_control_keys
from slsbot.interfaces.cli import main


def test_it_rotates_the_key_file_and_prints_until_when_the_old_key_works(tmp_path: Path, capsys) -> None:
    old = load_or_create_control_key(tmp_path / "control.key")
    assert main(["rotate-control-key", "--state-dir", str(tmp_path), "--grace", "15m"]) == 0
    keys = read_control_keys(tmp_path / "control.key")
    assert keys.previous is not None and keys.previous.token_for("d", "b") == old.token_for("d", "b")
    out = capsys.readouterr().out
    assert f"the previous key is accepted until {keys.previous_until.isoformat()}" in out
    for secret in (keys.current, keys.previous):
        assert secret.token_for("d", "b") not in out
    assert (tmp_path / "control.key").read_text().split()[0] not in out


@pytest.mark.parametrize(
    ("arguments", "says"),
    [(["--grace", "soon"], "--grace: 'soon' is not a duration"), ([], "does not exist: slsbot up creates it")],
)
def test_bad_input_is_refused_with_exit_2_naming_the_fix(tmp_path: Path, capsys, arguments, says) -> None:
    assert main(["rotate-control-key", "--state-dir", str(tmp_path / "none"), *arguments]) == 2
    assert says in capsys.readouterr().err and not (tmp_path / "none").exists()


def test_unusable_settings_are_refused_without_a_traceback(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN", "changeme")
    assert main(["rotate-control-key", "--state-dir", str(tmp_path)]) == 2
    assert "invalid settings" in capsys.readouterr().err
