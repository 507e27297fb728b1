"""ControlKey and the supervisor's control.key: tokens derived per runtime, a key file created once (0600) and
reused, and refusals that name the source without echoing the key."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest

from slsbot.adapters.control_tokens import ControlKey, ControlKeyError, load_or_create_control_key, token_fingerprint


def test_each_runtime_gets_its_own_token_an_hmac_of_its_namespace_and_name() -> None:
    key = ControlKey("m" * 40, source="test")
    token = key.token_for("trading", "btc")
    assert token == hmac.new(b"m" * 40, b"trading/btc", hashlib.sha256).hexdigest()
    assert len({token, key.token_for("trading", "eth"), key.token_for("other", "btc")}) == 3
    assert ControlKey("n" * 40, source="test").token_for("trading", "btc") != token
    assert "m" * 40 not in repr(key) and token not in token_fingerprint(token)


@pytest.mark.parametrize(("value", "says"), [("", "empty"), ("changeme", "placeholder"), ("a" * 31, "shorter")])
def test_unusable_keys_are_refused_naming_the_source(value: str, says: str) -> None:
    with pytest.raises(ControlKeyError) as caught:
        ControlKey(value, source="SLSBOT_OPERATOR_CONTROL_KEY")
    assert says in str(caught.value) and str(caught.value).startswith("SLSBOT_OPERATOR_CONTROL_KEY: ")
    if value:
        assert value not in str(caught.value)


def test_the_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "control.key"
    first = load_or_create_control_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_text().strip()) == 64
    again = load_or_create_control_key(path)  # a restarted supervisor: the same tokens
    assert again.token_for("default", "btc") == first.token_for("default", "btc")
    assert [p.name for p in path.parent.iterdir()] == ["control.key"]  # no staging file left behind


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "control.key"
    load_or_create_control_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(ControlKeyError, match=r"mode 0644.*chmod 600"):
        load_or_create_control_key(path)
