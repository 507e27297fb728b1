"""Each runtime's control token, derived from one master key so that no token has to be stored anywhere.

The control plane holds one master key (``ControlKey``): the operator reads it from ``SLSBOT_OPERATOR_CONTROL_KEY``
(a Secret in deploy/operator), the local supervisor generates it once into ``<state_dir>/control.key`` (mode 0600)
and reuses it, so a restarted supervisor can still control the runtimes it adopts. The token of runtime
``<namespace>/<name>`` is ``HMAC-SHA256(key, "<namespace>/<name>")`` in hex; the runtime gets it in its environment
(``SLSBOT_RUNTIME_TOKEN``) and the control plane sends it as ``Authorization: Bearer <token>``.

Rotation without restarting a runtime (``ControlKeys``): the control plane holds its new key and, for a grace
period, the previous one. Each runtime reads its tokens from a file (``SLSBOT_RUNTIME_TOKEN_FILE``) the control
plane keeps current (``token_file_text``: the new token, then the previous one with the end of the grace), and reads
it again when it changes; the control plane signs with the new key and, while a runtime has not picked up its new
token yet, retries a 401 once with the previous one (``tokens_for``). After the grace the previous token is refused
by the runtime's own clock and dropped from the file. The local supervisor's key file holds the previous key on a
second line, ``<key> <valid-until>``, written by ``rotate_control_key_file`` (``slsbot rotate-control-key``).

Neither the key nor a token ever shows in a repr, a log line, a status, an event or an error message.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from slsbot.domain.errors import SlsbotError

log = logging.getLogger(__name__)

RUNTIME_TOKEN_ENVIRONMENT = "SLSBOT_RUNTIME_TOKEN"  # noqa: S105 - the variable ``slsbot runtime`` reads
RUNTIME_TOKEN_FILE_ENVIRONMENT = "SLSBOT_RUNTIME_TOKEN_FILE"  # noqa: S105 - the file of tokens it reads instead
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


@dataclass(frozen=True, slots=True)
class ControlKeys:
    """The current key and, during a rotation's grace period, the previous one with the end of its grace."""

    current: ControlKey
    previous: ControlKey | None = field(default=None)
    previous_until: datetime | None = None

    def __post_init__(self) -> None:
        if (self.previous is None) != (self.previous_until is None):
            raise ControlKeyError("a previous control key needs the end of its grace period, and only it")
        if self.previous_until is not None and self.previous_until.tzinfo is None:
            raise ControlKeyError("the end of the previous control key's grace period needs a time zone")

    def in_grace(self, now: datetime) -> bool:
        return self.previous_until is not None and now < self.previous_until

    def tokens_for(self, namespace: str, name: str, *, now: datetime) -> tuple[str, ...]:
        """The tokens to try, in order: the current key's, then the previous key's while its grace lasts (for a
        runtime that has not read its new token yet)."""
        current = self.current.token_for(namespace, name)
        if self.previous is None or not self.in_grace(now):
            return (current,)
        return (current, self.previous.token_for(namespace, name))

    def token_file_text(self, namespace: str, name: str, *, now: datetime) -> str:
        """The runtime's token file (``slsbot_runtime.control_access``): its current token, then its previous one
        with the end of the grace while that lasts. Never log or return it."""
        tokens = self.tokens_for(namespace, name, now=now)
        lines = [tokens[0]]
        if len(tokens) > 1 and self.previous_until is not None:
            lines.append(f"{tokens[1]} {self.previous_until.astimezone(UTC).isoformat(timespec='seconds')}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"ControlKeys(<hidden>, previous={'<hidden>' if self.previous else None}, until={self.previous_until})"


def token_fingerprint(token: str) -> str:
    """A short digest that tells two tokens apart without revealing either (pod template annotation)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def load_or_create_control_key(path: Path) -> ControlKey:
    """The current key in ``path`` (``load_or_create_control_keys``)."""
    return load_or_create_control_keys(path).current


def load_or_create_control_keys(path: Path) -> ControlKeys:
    """The keys in ``path``; a new key is generated there (mode 0600) on first use. Two supervisors starting at once
    agree: the file appears whole or not at all (written aside, then hard-linked into place)."""
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
    return read_control_keys(path)


def read_control_keys(path: Path) -> ControlKeys:
    """The keys of a key file: the current key on the first line, and after a rotation the previous one with the
    end of its grace, ``<key> <valid-until ISO 8601>``, on the second. ControlKeyError naming the file and line."""
    source = f"control key {path}"
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ControlKeyError(f"{source}: readable by other users (mode {mode:04o}); run chmod 600 {path}")
        text = path.read_text()
    except OSError as exc:
        raise ControlKeyError(f"{source}: cannot read it ({exc.strerror})") from exc
    lines = [line for line in text.splitlines() if line.strip()] or [""]
    if len(lines) > 2:
        raise ControlKeyError(f"{source}: expected the key, and at most one previous key with its end of grace")
    current = ControlKey(lines[0], source=f"{source}, line 1")
    if len(lines) == 1:
        return ControlKeys(current)
    fields = lines[1].split()
    if len(fields) != 2:
        raise ControlKeyError(f"{source}, line 2: expected '<previous key> <valid-until>'")
    try:
        until = datetime.fromisoformat(fields[1].replace("Z", "+00:00"))
    except ValueError:
        raise ControlKeyError(f"{source}, line 2: the valid-until is not an ISO 8601 time") from None
    if until.tzinfo is None:
        raise ControlKeyError(f"{source}, line 2: the valid-until needs a time zone, e.g. Z")
    return ControlKeys(current, ControlKey(fields[0], source=f"{source}, line 2"), until)


def rotate_control_key_file(path: Path, *, grace: timedelta, now: datetime) -> datetime:
    """Put a new random key in ``path`` and keep the current one as the previous key until ``now + grace``, which
    is returned. The file is replaced whole (written aside, mode 0600, renamed), so a reader sees the old or the
    new file, never half of one."""
    if grace <= timedelta(0):
        raise ControlKeyError(f"the grace period must be positive, got {grace}")
    old = read_control_keys(path)
    until = now + grace
    old_key = old.current._key.decode()
    text = f"{secrets.token_hex(32)}\n{old_key} {until.astimezone(UTC).isoformat(timespec='seconds')}\n"
    write_private_file(path, text)
    return until


def write_private_file(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (written aside with mode 0600, then renamed over it)."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        os.replace(staging, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            staging.unlink()
        raise ControlKeyError(f"cannot write {path} ({exc.strerror})") from exc


class ControlKeyFile:
    """The supervisor's key file, read again when it changes (a rotation while it runs): ``keys()`` answers the
    keys it last read successfully; a file broken after the start keeps them (``broken`` says why)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._keys = load_or_create_control_keys(path)
        try:
            self._seen = self._signature()
        except OSError as exc:
            raise ControlKeyError(f"control key {path}: cannot read it ({exc.strerror})") from exc
        self.broken: str | None = None

    def keys(self) -> ControlKeys:
        try:
            seen = self._signature()
            if seen != self._seen:
                self._keys, self._seen, self.broken = read_control_keys(self._path), seen, None
                until = self._keys.previous_until
                log.info(
                    "control key %s read again%s",
                    self._path,
                    f"; the previous key is accepted until {until.isoformat()}" if until is not None else "",
                )
        except (ControlKeyError, OSError) as exc:
            if self.broken is None:
                log.warning("control key %s: %s; keeping the keys read before", self._path, exc)
            self.broken = str(exc)
        return self._keys

    def _signature(self) -> tuple[int, ...]:
        stat_result = os.stat(self._path)
        return (stat_result.st_ino, stat_result.st_size, stat_result.st_mtime_ns)
