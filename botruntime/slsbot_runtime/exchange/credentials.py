"""Exchange credentials, read from a mounted Secret (one file per key) or from environment variables.

Never from the runtime config: the config only names the folder. The values never appear in a repr, a
message or a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from slsbot_runtime.domain.errors import AuthenticationError

#: Environment variables read when no credentials folder is given.
ENV_API_KEY = "SLSBOT_EXCHANGE_API_KEY"
ENV_SECRET = "SLSBOT_EXCHANGE_SECRET"  # noqa: S105 - the variable's name, not a secret
ENV_PASSWORD = "SLSBOT_EXCHANGE_PASSWORD"  # noqa: S105 - the variable's name, not a password


@dataclass(frozen=True, slots=True)
class CredentialFileNames:
    """File names inside the credentials folder; the defaults match ``CredentialKeys`` in the API."""

    api_key: str = "apiKey"
    secret: str = "secret"  # noqa: S105 - a file name
    password: str = "password"  # noqa: S105 - a file name


@dataclass(frozen=True, slots=True)
class ExchangeCredentials:
    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    password: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        password = "***" if self.password else None
        return f"ExchangeCredentials(api_key={_hint(self.api_key)}, secret=***, password={password})"

    __str__ = __repr__

    @property
    def values(self) -> tuple[str, ...]:
        """Every secret string, for scrubbing messages."""
        return tuple(v for v in (self.api_key, self.secret, self.password) if v)


def _hint(api_key: str) -> str:
    """Enough of the key to tell two accounts apart in a log, never enough to use it."""
    return f"'...{api_key[-4:]}'" if len(api_key) >= 16 else "***"


def load_credentials(
    directory: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    names: CredentialFileNames | None = None,
) -> ExchangeCredentials:
    """Credentials from ``directory`` (a mounted Kubernetes Secret) when given, else from the environment.

    Raises ``AuthenticationError`` naming the missing file or variable and how to provide it.
    """
    names = names or CredentialFileNames()
    if directory is not None:
        return _from_directory(Path(directory), names)
    return _from_environment(os.environ if env is None else env)


def _from_directory(directory: Path, names: CredentialFileNames) -> ExchangeCredentials:
    if not directory.is_dir():
        raise AuthenticationError(
            f"account.credentialsDir: {directory} is not a folder; mount the account's Secret there "
            f"(one file per key: {names.api_key}, {names.secret})"
        )

    def read(name: str, required: bool) -> str | None:
        path = directory / name
        if not path.is_file():
            if required:
                raise AuthenticationError(
                    f"account.credentialsDir: no file {name!r} in {directory}; add the key {name!r} to the Secret"
                )
            return None
        value = path.read_text(encoding="utf-8").strip()
        if required and not value:
            raise AuthenticationError(f"account.credentialsDir: the file {name!r} in {directory} is empty")
        return value or None

    return ExchangeCredentials(
        api_key=read(names.api_key, True) or "",
        secret=read(names.secret, True) or "",
        password=read(names.password, False),
    )


def _from_environment(env: Mapping[str, str]) -> ExchangeCredentials:
    missing = [name for name in (ENV_API_KEY, ENV_SECRET) if not env.get(name, "").strip()]
    if missing:
        raise AuthenticationError(
            f"credentials: {' and '.join(missing)} not set; set them or give account.credentialsDir "
            "(a folder with one file per key)"
        )
    return ExchangeCredentials(
        api_key=env[ENV_API_KEY].strip(),
        secret=env[ENV_SECRET].strip(),
        password=env.get(ENV_PASSWORD, "").strip() or None,
    )
