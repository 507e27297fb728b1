"""The file through which ``slsbot up`` tells ``slsbot get`` where its admin API listens and, when the token was
generated, what it is: ``<state_dir>/admin-api.json``, ``{"url": "http://127.0.0.1:8080", "token": "..."}``.

It holds a secret, so it is created with mode 0600 (never readable by others, not even while it is written) and
replaced whole; a file that others may read is refused, naming the ``chmod`` to run. The token never shows in a
repr, a log line or an error message.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from slsbot.domain.errors import SlsbotError


class AdminConnectionError(SlsbotError):
    """The connection file cannot be read or written, or others may read it. The command stops and says why."""


@dataclass(frozen=True, slots=True)
class AdminConnection:
    url: str
    token: SecretStr | None  # None when the supervisor's token came from its environment


def write_admin_connection(path: Path, connection: AdminConnection) -> None:
    """Write ``connection`` to ``path`` (mode 0600): written aside, then renamed into place."""
    payload = {"url": connection.url}
    if connection.token is not None:
        payload["token"] = connection.token.get_secret_value()
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(payload, file)
            file.write("\n")
        os.replace(staging, path)
    except OSError as exc:
        raise AdminConnectionError(f"cannot write {path} ({exc.strerror})") from None
    finally:
        with contextlib.suppress(OSError):
            staging.unlink()


def read_admin_connection(path: Path) -> AdminConnection | None:
    """The connection in ``path``, or None when there is no such file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AdminConnectionError(f"cannot read {path} ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AdminConnectionError(f"{path} holds a token and others may read it: run chmod 600 {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not JSON"
        raise AdminConnectionError(f"cannot read {path} ({reason}); start slsbot up again to rewrite it") from None
    url, token = (data.get("url"), data.get("token")) if isinstance(data, dict) else (None, None)
    if not isinstance(url, str) or not (token is None or isinstance(token, str)):
        raise AdminConnectionError(f"{path} has no usable 'url'; start slsbot up again to rewrite it")
    return AdminConnection(url=url, token=SecretStr(token) if token else None)
