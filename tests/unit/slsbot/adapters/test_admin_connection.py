"""The file through which ``slsbot up`` hands its URL and generated token to ``slsbot get``: mode 0600 from the
start, replaced whole, refused when others may read it, and the token never in a repr or an error message."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from slsbot.adapters.admin_connection import (
    AdminConnection,
    AdminConnectionError,
    read_admin_connection,
    write_admin_connection,
)

TOKEN = "tk-4Rf8Yh2Jm6Qw9Zs3Xc7V"


def test_written_for_the_user_alone_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "state" / "admin-api.json"
    write_admin_connection(path, AdminConnection(url="http://127.0.0.1:8080", token=SecretStr(TOKEN)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": "http://127.0.0.1:8080", "token": TOKEN}
    read = read_admin_connection(path)
    assert read.url == "http://127.0.0.1:8080" and read.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(read)
    assert [p.name for p in path.parent.iterdir()] == ["admin-api.json"]  # nothing left aside


def test_a_rewrite_without_a_token_drops_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "admin-api.json"
    write_admin_connection(path, AdminConnection(url="http://127.0.0.1:8080", token=SecretStr(TOKEN)))
    write_admin_connection(path, AdminConnection(url="http://127.0.0.1:8081", token=None))
    assert TOKEN not in path.read_text()
    assert read_admin_connection(path) == AdminConnection(url="http://127.0.0.1:8081", token=None)


def test_no_file_is_none(tmp_path: Path) -> None:
    assert read_admin_connection(tmp_path / "admin-api.json") is None


def test_a_file_others_may_read_is_refused_naming_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "admin-api.json"
    write_admin_connection(path, AdminConnection(url="http://127.0.0.1:8080", token=SecretStr(TOKEN)))
    path.chmod(0o644)
    with pytest.raises(AdminConnectionError, match=f"others may read it: run chmod 600 {path}") as caught:
        read_admin_connection(path)
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("content", ["{not json", '["a"]', '{"token": "x"}', '{"url": 5}'])
def test_an_unusable_file_names_itself_and_the_fix(tmp_path: Path, content: str) -> None:
    path = tmp_path / "admin-api.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(AdminConnectionError, match=f"{path}.*start slsbot up again to rewrite it"):
        read_admin_connection(path)
