"""Each runtime's control token, derived from one master key so that no token has to be stored anywhere.

The control plane holds one master key (``ControlKey``): the operator reads it from ``SLSBOT_OPERATOR_CONTROL_KEY``
(a Secret in deploy/operator), the local supervisor generates it once into ``<state_dir>/control.key`` (mode 0600)
and reuses it, so a restarted supervisor can still control the runtimes it adopts. The token of runtime
``<namespace>/<name>`` is ``HMAC-SHA256(key, "<namespace>/<name>")`` in hex; the runtime gets it in its environment
(``SLSBOT_RUNTIME_TOKEN``) and the control plane sends it as ``Authorization: Bearer <token>``.

Neither the key nor a token ever shows in a repr, a log line, a status, an event or an error message.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from slsbot.domain.errors import SlsbotError

RUNTIME_TOKEN_ENVIRONMENT = "SLSBOT_RUNTIME_TOKEN"  # noqa: S105 - the variable ``slsbot runtime`` reads
MIN_KEY_LENGTH = 32
PLACEHOLDER_KEYS = frozenset({"changeme", "change-me", "change_me", "secret", "password", "replace-me", "default"})


class ControlKeyError(SlsbotError):
    """The master key is missing, too short, a placeholder or unreadable. The command stops (exit code 2)."""


class ControlKey:
    """The control plane's master key. ``token_for`` derives one runtime's bearer token."""

    __slots__ = ("_key",)

    def __init__(self, key: str, *, source: str) -> None:
        """``source`` names where the key came from (a variable or a file), for the error message."""
        value = key.strip()
        if not value:
            raise ControlKeyError(f"{source}: empty; set it to a random value of at least {MIN_KEY_LENGTH} characters")
        if value.lower() in PLACEHOLDER_KEYS or value.lower().startswith("changeme"):
            raise ControlKeyError(f"{source}: a placeholder; set it to a random value, e.g. openssl rand -hex 32")
        if len(value) < MIN_KEY_LENGTH:
            raise ControlKeyError(
                f"{source}: shorter than {MIN_KEY_LENGTH} characters; use a random value, e.g. openssl rand -hex 32"
            )
        self._key = value.encode()

    def token_for(self, namespace: str, name: str) -> str:
        """The bearer token of runtime ``namespace/name``: HMAC-SHA256(key, "<namespace>/<name>"), hex."""
        return hmac.new(self._key, f"{namespace}/{name}".encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "ControlKey(<hidden>)"


def token_fingerprint(token: str) -> str:
    """A short digest that tells two tokens apart without revealing either (pod template annotation)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def load_or_create_control_key(path: Path) -> ControlKey:
    """The key in ``path``; generated there (mode 0600) on first use. Two supervisors starting at once agree:
    the file appears whole or not at all (written aside, then hard-linked into place)."""
    source = f"control key {path}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(32) + "\n")
            with contextlib.suppress(FileExistsError):  # another supervisor was first: use its key
                os.link(staging, path)
        except OSError as exc:
            raise ControlKeyError(f"{source}: cannot create it ({exc.strerror})") from exc
        finally:
            with contextlib.suppress(OSError):
                staging.unlink()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ControlKeyError(f"{source}: readable by other users (mode {mode:04o}); run chmod 600 {path}")
        return ControlKey(path.read_text(), source=source)
    except OSError as exc:
        raise ControlKeyError(f"{source}: cannot read it ({exc.strerror})") from exc
