"""Who may call the runtime's control endpoints: whoever holds one of its control tokens.

The tokens come from one of two places, named by the environment ``slsbot runtime`` starts with:

* ``SLSBOT_RUNTIME_TOKEN``: one token, fixed for the life of the process;
* ``SLSBOT_RUNTIME_TOKEN_FILE``: a file the control plane rewrites when its control key rotates (a mounted Secret
  in a cluster, which the kubelet updates in place; a file in the strategy's folder under ``slsbot up``). It holds
  one token per line, the ones a rotation retired followed by the time they stop being accepted::

      <current token>
      <previous token> 2026-12-06T12:00:00+00:00

  The file is looked at (one ``stat``) on every control request and read again when it changed, so a new token
  is accepted from the first request that carries it, without a restart. A token past its time is refused (401,
  saying it was retired in a rotation) even while the file still lists it. A file that cannot be read or parsed
  after the start keeps the tokens last read (and says so in the log once): a half-written file never locks the
  control plane out.

Tokens are compared in constant time, every one of them, and never show in a repr, a log line or an error.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from slsbot_runtime.domain.errors import ConfigError

log = logging.getLogger(__name__)

TOKEN_ENVIRONMENT = "SLSBOT_RUNTIME_TOKEN"  # noqa: S105 - a variable name, not a secret
TOKEN_FILE_ENVIRONMENT = "SLSBOT_RUNTIME_TOKEN_FILE"  # noqa: S105 - a variable name, not a secret
MIN_TOKEN_LENGTH = 16
CONTROL_OFF = (
    f"control endpoints are off: this runtime was started without {TOKEN_ENVIRONMENT} or {TOKEN_FILE_ENVIRONMENT}; "
    "set one (the control plane does), or start it with --insecure-control for local development"
)
UNAUTHORIZED = "Authorization: missing or wrong bearer token; send 'Authorization: Bearer <the runtime's token>'"
RETIRED = (
    "Authorization: this control token was retired in a key rotation and its grace period has ended; "
    "send the runtime's current token (derived from the control plane's new key)"
)


@dataclass(frozen=True, slots=True)
class AcceptedToken:
    """One token the control endpoints accept, until ``valid_until`` (epoch seconds) when it has one."""

    value: bytes = field(repr=False)
    valid_until: float | None = None


def parse_token_file(text: str, *, source: str) -> tuple[AcceptedToken, ...]:
    """The tokens of a token file (format in the module's docstring). ConfigError naming the line, never its token."""
    tokens = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) > 2:
            raise ConfigError(f"{source}: line {number}: expected '<token>' or '<token> <valid-until>'")
        valid_until = None
        if len(fields) == 2:
            try:
                until = datetime.fromisoformat(fields[1].replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(f"{source}: line {number}: the valid-until is not an ISO 8601 time") from None
            if until.tzinfo is None:
                raise ConfigError(f"{source}: line {number}: the valid-until needs a time zone, e.g. +00:00")
            valid_until = until.timestamp()
        tokens.append(AcceptedToken(_checked(fields[0], f"{source}: line {number}").encode(), valid_until))
    if not tokens:
        raise ConfigError(f"{source}: holds no token; the control plane writes the runtime's token there")
    return tuple(tokens)


def _checked(token: str, source: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{source}: shorter than {MIN_TOKEN_LENGTH} characters; use a long random value "
            "(the control plane sets one per runtime)"
        )
    return token


class ControlAccess:
    """Who may call the control endpoints: the holders of ``token`` or of a token in ``token_file``; anyone when
    there is neither and ``insecure`` (local development); nobody otherwise. Safe to call from the server's
    threads."""

    __slots__ = ("_clock", "_file", "_lock", "_seen", "_tokens", "_warned", "insecure")

    def __init__(
        self,
        token: str | None = None,
        *,
        insecure: bool = False,
        token_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if token is not None and token_file is not None:
            raise ConfigError(f"set either {TOKEN_ENVIRONMENT} or {TOKEN_FILE_ENVIRONMENT}, not both")
        self.insecure = insecure
        self._clock = clock
        self._file = token_file
        self._lock = threading.Lock()
        self._seen: tuple[int, ...] | None = None
        self._warned = False
        self._tokens: tuple[AcceptedToken, ...] = ()
        if token is not None:
            self._tokens = (AcceptedToken(_checked(token.strip(), TOKEN_ENVIRONMENT).encode()),)
        if token_file is not None:
            self._seen, self._tokens = self._read(token_file)  # a bad file at the start stops the runtime

    @classmethod
    def from_environment(cls, value: str | None, *, insecure: bool, token_file: str | None = None) -> ControlAccess:
        """From the values of ``SLSBOT_RUNTIME_TOKEN`` and ``SLSBOT_RUNTIME_TOKEN_FILE`` (unset or empty: none)."""
        token = (value or "").strip() or None
        path = (token_file or "").strip()
        return cls(token, insecure=insecure, token_file=Path(path) if path else None)

    @property
    def configured(self) -> bool:
        """Whether a token (or a token file) was given."""
        return bool(self._tokens)

    def __repr__(self) -> str:
        source = TOKEN_FILE_ENVIRONMENT if self._file is not None else TOKEN_ENVIRONMENT
        return f"ControlAccess(<{len(self._tokens)} token(s) from {source}>, insecure={self.insecure})"

    def refusal(self, authorization: str | None) -> tuple[int, str] | None:
        """None when a request with this ``Authorization`` header may go on, else (HTTP status, error)."""
        tokens = self._current()
        if not tokens:
            return None if self.insecure else (403, CONTROL_OFF)
        scheme, _, given = (authorization or "").strip().partition(" ")
        candidate = given.strip().encode()
        now = self._clock()
        valid = retired = False
        for token in tokens:  # every one, whatever matched before: the time taken says nothing
            if hmac.compare_digest(candidate, token.value):
                if token.valid_until is None or now < token.valid_until:
                    valid = True
                else:
                    retired = True
        if scheme.lower() == "bearer" and valid:
            return None
        return 401, RETIRED if scheme.lower() == "bearer" and retired else UNAUTHORIZED

    def _current(self) -> tuple[AcceptedToken, ...]:
        if self._file is None:
            return self._tokens
        with self._lock:
            try:
                seen = _signature(self._file)
                if seen != self._seen:
                    self._seen, self._tokens = self._read(self._file)
                    self._warned = False
                    log.info("control tokens read again from %s (%d accepted)", self._file, len(self._tokens))
            except ConfigError as exc:
                if not self._warned:
                    log.warning("%s; keeping the control tokens read before", exc)
                    self._warned = True
            return self._tokens

    @staticmethod
    def _read(path: Path) -> tuple[tuple[int, ...], tuple[AcceptedToken, ...]]:
        source = f"{TOKEN_FILE_ENVIRONMENT} {path}"
        try:
            seen = _signature(path)
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read it ({exc.strerror})") from None
        return seen, parse_token_file(text, source=source)


def _signature(path: Path) -> tuple[int, ...]:
    """What changes when the file is replaced or rewritten (a mounted Secret's update swaps a symlink: a new
    inode behind the same path)."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"{TOKEN_FILE_ENVIRONMENT} {path}: cannot read it ({exc.strerror})") from None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
