"""The runtime's control tokens from a file the control plane rewrites when it rotates its key: a new token is
accepted from the first request that carries it (no restart), the retired one until its time and refused after
with a message that says so; a broken rewrite keeps the tokens read before; nothing echoes a token."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slsbot_runtime.control_access import RETIRED, UNAUTHORIZED, ControlAccess, parse_token_file
from slsbot_runtime.domain.errors import ConfigError

OLD = "old-token-0123456789abcdef"  # test_secrets
NEW = "new-token-fedcba9876543210"  # test_secrets
GRACE_ENDS = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str) -> None:
    """As the control plane does: aside, then renamed into place (a new inode, as a Secret volume's update)."""
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(text)
    os.replace(staging, path)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_a_rotation_is_picked_up_from_the_file_and_the_old_token_ends_with_its_grace(tmp_path: Path) -> None:
    path = tmp_path / "token"
    write(path, f"{OLD}\n")
    clock = Clock(GRACE_ENDS.timestamp() - 60)
    access = ControlAccess(token_file=path, clock=clock)
    assert access.refusal(bearer(OLD)) is None
    assert access.refusal(bearer(NEW)) == (401, UNAUTHORIZED)

    write(path, f"{NEW}\n{OLD} {GRACE_ENDS.isoformat()}\n")  # the control plane rotated its key
    assert access.refusal(bearer(NEW)) is None  # the same process, the new token
    assert access.refusal(bearer(OLD)) is None  # and the old one, during the grace
    clock.now = GRACE_ENDS.timestamp()
    assert access.refusal(bearer(OLD)) == (401, RETIRED)  # by the runtime's own clock, the file unchanged
    assert access.refusal(bearer(NEW)) is None
    assert "retired in a key rotation" in RETIRED and OLD not in repr(access) and NEW not in repr(access)

    write(path, f"{NEW}\n")  # the control plane dropped the previous key
    assert access.refusal(bearer(OLD)) == (401, UNAUTHORIZED)


def test_a_file_broken_after_the_start_keeps_the_tokens_read_before(tmp_path: Path, caplog) -> None:
    path = tmp_path / "token"
    write(path, f"{NEW}\n")
    access = ControlAccess(token_file=path)
    write(path, "short\n")
    assert access.refusal(bearer(NEW)) is None
    path.unlink()
    assert access.refusal(bearer(NEW)) is None
    assert "keeping the control tokens read before" in caplog.text and NEW not in caplog.text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "holds no token"),
        ("short\n", "line 1: shorter than 16"),
        (f"{NEW}\n{OLD} tomorrow\n", "line 2: the valid-until is not an ISO 8601 time"),
        (f"{NEW}\n{OLD} 2026-05-01T09:00:00\n", "line 2: the valid-until needs a time zone"),
        (f"{NEW} 2026-05-01T09:00:00Z extra\n", "line 1: expected"),
    ],
)
def test_a_bad_token_file_is_refused_at_the_start_naming_the_line_not_the_token(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "token"
    path.write_text(text)
    with pytest.raises(ConfigError, match=says) as caught:
        ControlAccess(token_file=path)
    assert "SLSBOT_RUNTIME_TOKEN_FILE" in str(caught.value) and NEW not in str(caught.value)
    assert OLD not in str(caught.value)


def test_a_missing_file_or_both_sources_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        ControlAccess(token_file=tmp_path / "absent")
    (tmp_path / "token").write_text(NEW)
    with pytest.raises(ConfigError, match="either SLSBOT_RUNTIME_TOKEN or SLSBOT_RUNTIME_TOKEN_FILE"):
        ControlAccess.from_environment(OLD, insecure=False, token_file=str(tmp_path / "token"))


def test_the_file_format_takes_a_z_suffix() -> None:
    tokens = parse_token_file(f"{NEW}\n\n{OLD} 2026-05-01T09:00:00Z\n", source="t")
    assert [t.valid_until for t in tokens] == [None, GRACE_ENDS.timestamp()]
