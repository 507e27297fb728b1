"""``VaultCredentialSource``: the exchange keys from a Vault KV v2 secret, read by the runtime itself through hvac.

It logs in by the account's method (``kubernetes``: the pod's service-account token; ``approle``: a role id and
the secret id in a file; ``token``: a token in a file), reads one version of the secret (``read``) or only its
metadata (``current_version``, for rotation), and keeps its token alive: ``keep_alive`` renews it (``renew-self``)
once a third of its lease is left, and logs in again when the renewal is refused or the token is gone. A read
refused with 403 logs in once more and retries (a token that expired while the process was stopped) before it
reports.

Vault's errors are converted here into the runtime's exception tree: permission denied, a wrong login, a missing
path or key -> ``AuthenticationError`` naming the path and what to grant or fix (permanent: the runtime reports it
and tries again later); sealed, 5xx, rate limited, a connection or timeout failure -> ``CredentialsUnavailable``
(temporary). No message, log line or repr carries a token, a secret id, a JWT or a key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import requests

from slsbot.api.account import VaultAuthMethod, VaultCredentials
from slsbot_runtime.domain.errors import AuthenticationError, ConfigError, CredentialsUnavailable
from slsbot_runtime.exchange.credentials import ExchangeCredentials

log = logging.getLogger(__name__)

#: Renew the token once less than this share of its lease is left.
RENEW_AT_LEFT = 1 / 3
_TEMPORARY = (
    hvac.exceptions.InternalServerError,
    hvac.exceptions.VaultDown,
    hvac.exceptions.BadGateway,
    hvac.exceptions.RateLimitExceeded,
    hvac.exceptions.UnexpectedError,
    hvac.exceptions.VaultNotInitialized,
    requests.exceptions.RequestException,
)


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """One version of the secret: the keys and the version number Vault gave them."""

    credentials: ExchangeCredentials
    version: int


class VaultCredentialSource:
    """The account's secret in Vault (``account.vault`` of the runtime config, with ``address`` and ``auth`` set)."""

    def __init__(
        self,
        settings: VaultCredentials,
        *,
        account: str,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.address is None or settings.auth is None:
            raise ConfigError("account.vault: address and auth must be set (the control plane fills them in)")
        self.settings = settings
        self.auth = settings.auth
        self.address = settings.address
        self.account = account
        self.clock = clock
        # token="" keeps hvac from reading VAULT_TOKEN or ~/.vault-token: the token comes from our login only.
        self._client = hvac.Client(url=settings.address, token="", timeout=timeout_s)
        self._lease_s = 0.0
        self._renewable = False
        self._expires_at: float | None = None  # monotonic; None: the token does not expire
        self._logged_in = False

    def __repr__(self) -> str:
        return f"VaultCredentialSource({self.address!r}, {self.data_path!r}, auth={self.auth.method})"

    @property
    def data_path(self) -> str:
        return f"{self.settings.mount}/data/{self.settings.path}"

    @property
    def metadata_path(self) -> str:
        return f"{self.settings.mount}/metadata/{self.settings.path}"

    # -- reading -------------------------------------------------------------------------------------------------

    def read(self, version: int | None = None) -> SecretVersion:
        """The keys of ``version`` (the newest when None); AuthenticationError when the path, the version or a key is
        missing or the policy refuses, CredentialsUnavailable when Vault cannot answer now."""
        what = f"read {self.data_path}" + (f" version {version}" if version else "")
        answer = self._authorised(
            what,
            lambda: self._client.secrets.kv.v2.read_secret_version(
                path=self.settings.path,
                version=version,
                mount_point=self.settings.mount,
                raise_on_deleted_version=True,
            ),
        )
        data = answer.get("data") or {}
        values = data.get("data") or {}
        number = int((data.get("metadata") or {}).get("version") or version or 0)
        keys = self.settings.keys

        def key(name: str, field: str, required: bool) -> str | None:
            value = values.get(name)
            if value is None or not str(value).strip():
                if required:
                    raise AuthenticationError(
                        f"vault: the secret at {self.data_path} (version {number}) has no key {name!r}; add it, or "
                        f"name the key that holds it in credentials.vault.keys.{field}"
                    )
                return None
            return str(value).strip()

        credentials = ExchangeCredentials(
            api_key=key(keys.api_key, "apiKey", True) or "",
            secret=key(keys.secret, "secret", True) or "",
            password=key(keys.password, "password", False) if keys.password else None,
        )
        return SecretVersion(credentials, number)

    def current_version(self) -> int:
        """The secret's ``current_version`` from its metadata (no secret is read)."""
        answer = self._authorised(
            f"read {self.metadata_path}",
            lambda: self._client.secrets.kv.v2.read_secret_metadata(
                path=self.settings.path, mount_point=self.settings.mount
            ),
        )
        return int((answer.get("data") or {}).get("current_version") or 0)

    # -- the token -----------------------------------------------------------------------------------------------

    def login(self) -> None:
        """Log in by the account's method; the token is kept in the client only."""
        auth = self.auth
        method = VaultAuthMethod(auth.method)
        where = f"vault login ({method} at auth/{auth.mount_point}, {self.address})"
        with self._boundary(where, login=True):
            if method is VaultAuthMethod.KUBERNETES:
                jwt = _read_file(auth.token_path, "auth.tokenPath", "the pod's service-account token")
                answer = self._client.auth.kubernetes.login(
                    role=auth.role or self.account, jwt=jwt, mount_point=auth.mount_point
                )
            elif method is VaultAuthMethod.APPROLE:
                secret_id = _read_file(auth.secret_id_file or "", "auth.secretIdFile", "the AppRole secret id")
                answer = self._client.auth.approle.login(
                    role_id=auth.role_id, secret_id=secret_id, mount_point=auth.mount_point
                )
            else:
                self._client.token = _read_file(auth.token_file or "", "auth.tokenFile", "a Vault token")
                answer = {"auth": self._lookup_self()}
        block = answer.get("auth") or {}
        self._lease(block.get("lease_duration", block.get("ttl")), block.get("renewable"))
        self._logged_in = True
        log.info(
            "vault: logged in to %s by %s (lease %ss, renewable %s)",
            self.address,
            method,
            int(self._lease_s),
            self._renewable,
        )

    def keep_alive(self) -> None:
        """Renew the token once a third of its lease is left; log in again when it cannot be renewed. Errors as
        ``read``'s."""
        if not self._logged_in:
            self.login()
            return
        if self._expires_at is None:
            return
        left = self._expires_at - self.clock()
        if left > self._lease_s * RENEW_AT_LEFT:
            return
        if self._renewable and left > 0:
            try:
                with self._boundary("vault token renew-self"):
                    answer = self._client.auth.token.renew_self()
                block = answer.get("auth") or {}
                self._lease(block.get("lease_duration"), block.get("renewable"))
                return
            except (AuthenticationError, _Refused) as error:  # revoked, past its max TTL, or its lease is gone
                log.warning("vault: token not renewed (%s); logging in again", type(error).__name__)
        self.login()

    def _lookup_self(self) -> dict[str, Any]:
        data = self._client.auth.token.lookup_self().get("data") or {}
        return {"lease_duration": data.get("ttl"), "renewable": data.get("renewable")}

    def _lease(self, lease: Any, renewable: Any) -> None:
        seconds = float(lease or 0)
        self._lease_s = seconds
        self._renewable = bool(renewable)
        self._expires_at = None if seconds <= 0 else self.clock() + seconds

    def _authorised(self, what: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``call`` with a live token; a 403 logs in again once (the token may have expired unseen) and retries."""
        self.keep_alive()
        try:
            with self._boundary(f"vault {what}"):
                return call()
        except _Refused:
            self.login()
        try:
            with self._boundary(f"vault {what}"):
                return call()
        except _Refused as refused:
            raise AuthenticationError(
                f"vault {what}: permission denied at {self.address}; the runtime's token (auth {self.auth.method}"
                f"{', role ' + (self.auth.role or self.account) if self.auth.method == 'kubernetes' else ''}) needs a "
                f'policy with path "{self.data_path}" {{ capabilities = ["read"] }} and path "{self.metadata_path}" '
                '{ capabilities = ["read"] }'
            ) from refused.__cause__

    @contextmanager
    def _boundary(self, what: str, *, login: bool = False) -> Iterator[None]:
        """Vault's and the network's errors, as the runtime's."""
        try:
            yield
        except hvac.exceptions.Forbidden as error:
            if login:
                raise AuthenticationError(f"{what}: permission denied; check the role and its bound identity") from None
            raise _Refused() from error
        except hvac.exceptions.InvalidRequest as error:
            raise AuthenticationError(
                f"{what}: refused ({_errors(error)}); check the role and its credentials"
            ) from None
        except hvac.exceptions.Unauthorized:
            raise AuthenticationError(f"{what}: unauthorized; log in again or fix the auth settings") from None
        except hvac.exceptions.InvalidPath:
            raise AuthenticationError(
                f"{what}: nothing there (no such secret or version, or it was deleted); write the keys with "
                f"vault kv put -mount={self.settings.mount} {self.settings.path} ..."
            ) from None
        except _TEMPORARY as error:
            raise CredentialsUnavailable(
                f"{what}: Vault did not answer ({type(error).__name__}); trying again"
            ) from None
        except hvac.exceptions.VaultError as error:
            raise CredentialsUnavailable(f"{what}: {type(error).__name__} ({_errors(error)})") from None


class _Refused(Exception):
    """A 403 on a read: log in again and retry once before reporting it."""


def _errors(error: hvac.exceptions.VaultError) -> str:
    """Vault's own error texts (never a token: Vault does not echo credentials), shortened."""
    texts = [str(e) for e in (getattr(error, "errors", None) or [])]
    return "; ".join(texts)[:200] or "no detail"


def _read_file(path: str, field: str, what: str) -> str:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise AuthenticationError(
            f"account.vault.{field}: cannot read {what} from {path} ({error.strerror}); mount or write it there"
        ) from None
    if not value:
        raise AuthenticationError(f"account.vault.{field}: {path} is empty; it must hold {what}")
    return value
