"""ControlKey and the supervisor's control.key: tokens derived per runtime, a key file created once (0600) and
reused, and refusals that name the source without echoing the key."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slsbot.adapters.control_tokens import (
    ControlKey,
    ControlKeyError,
    ControlKeyFile,
    ControlKeys,
    load_or_create_control_key,
    read_control_keys,
    rotate_control_key_file,
    token_fingerprint,
)
from slsbot_runtime.control_access import parse_token_file


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


# --- rotation: the pair of keys, the runtime's token file, the supervisor's key file ------------------------

GRACE_ENDS = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
OLD_KEY, NEW_KEY = "o" * 40, "n" * 40  # test_secrets


def test_the_control_plane_tries_the_new_key_then_the_previous_one_only_during_the_grace() -> None:
    keys = ControlKeys(ControlKey(NEW_KEY, source="t"), ControlKey(OLD_KEY, source="t"), GRACE_ENDS)
    new_token = ControlKey(NEW_KEY, source="t").token_for("trading", "btc")
    old_token = ControlKey(OLD_KEY, source="t").token_for("trading", "btc")
    before = GRACE_ENDS - timedelta(seconds=1)
    assert keys.tokens_for("trading", "btc", now=before) == (new_token, old_token)
    assert keys.tokens_for("trading", "btc", now=GRACE_ENDS) == (new_token,)
    assert ControlKeys(ControlKey(NEW_KEY, source="t")).tokens_for("trading", "btc", now=before) == (new_token,)
    assert NEW_KEY not in repr(keys) and OLD_KEY not in repr(keys)
    with pytest.raises(ControlKeyError, match="end of its grace"):
        ControlKeys(ControlKey(NEW_KEY, source="t"), ControlKey(OLD_KEY, source="t"))


def test_the_token_file_the_control_plane_writes_is_what_the_runtime_reads() -> None:
    keys = ControlKeys(ControlKey(NEW_KEY, source="t"), ControlKey(OLD_KEY, source="t"), GRACE_ENDS)
    during = keys.token_file_text("trading", "btc", now=GRACE_ENDS - timedelta(minutes=1))
    read = parse_token_file(during, source="t")
    assert [t.value.decode() for t in read] == list(keys.tokens_for("trading", "btc", now=GRACE_ENDS - timedelta(1)))
    assert [t.valid_until for t in read] == [None, GRACE_ENDS.timestamp()]
    after = parse_token_file(keys.token_file_text("trading", "btc", now=GRACE_ENDS), source="t")
    assert [(t.value.decode(), t.valid_until) for t in after] == [(keys.current.token_for("trading", "btc"), None)]


def test_rotating_the_key_file_keeps_the_old_key_as_the_previous_one_until_the_grace_ends(tmp_path: Path) -> None:
    path = tmp_path / "control.key"
    first = load_or_create_control_key(path)
    watched = ControlKeyFile(path)
    until = rotate_control_key_file(path, grace=timedelta(hours=1), now=GRACE_ENDS - timedelta(hours=1))
    assert until == GRACE_ENDS and stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = watched.keys()  # the running supervisor sees the rotation
    assert keys.previous is not None and keys.previous.token_for("d", "b") == first.token_for("d", "b")
    assert keys.current.token_for("d", "b") != first.token_for("d", "b") and keys.previous_until == GRACE_ENDS
    assert load_or_create_control_key(path).token_for("d", "b") == keys.current.token_for("d", "b")
    path.write_text("garbage\n")  # broken by hand after the start: the keys read before stay
    assert watched.keys() is keys and "shorter than 32" in (watched.broken or "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control.key"]


@pytest.mark.parametrize(
    ("second_line", "says"),
    [
        ("x" * 40, "line 2: expected"),
        ("x" * 40 + " soon", "not an ISO 8601 time"),
        ("x" * 40 + " 2026-05-01T09:00", "time zone"),
    ],
)
def test_a_bad_previous_key_line_is_refused_naming_it(tmp_path: Path, second_line: str, says: str) -> None:
    path = tmp_path / "control.key"
    path.write_text(f"{NEW_KEY}\n{second_line}\n")
    path.chmod(0o600)
    with pytest.raises(ControlKeyError, match=says) as caught:
        read_control_keys(path)
    assert "x" * 40 not in str(caught.value) and NEW_KEY not in str(caught.value)
