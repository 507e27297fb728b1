"""The Secrets a folder of YAML declares (sops-encrypted, decrypted in memory), as ``slsbot up`` serves them.

``DeclaredSecrets`` holds the folder's ``DeclaredSecret`` objects (replaced whole at every load and reload, from the
supervisor's thread) and answers two questions:

* ``read(namespace, ref)``: one key of a Secret as text (``SecretValues``, for a notification receiver's
  ``urlSecretRef``). A Secret the folder does not declare is read from the fallback: the secrets folder laid out as
  mounted Secrets, ``<secrets_dir>/<namespace>/<secret>/<key>`` (``notifiers.FolderSecrets``).
* ``credential_files(namespace, secret_ref)``: what a runtime's credentials folder holds for a TradingAccount's
  ``credentials.secretRef``, named as a Kubernetes Secret volume names them (``apiKey``, ``secret``, ``password``);
  None when the folder does not declare that Secret (the runtime then reads ``SLSBOT_EXCHANGE_API_KEY`` and
  ``SLSBOT_EXCHANGE_SECRET`` from its environment, as before).

Values are never logged and never in an error message: problems name the Secret and the key only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from slsbot.api.account import SecretCredentials
from slsbot.api.health import SecretKeyRef
from slsbot.domain.errors import NotFoundError
from slsbot.domain.manifests import DeclaredSecret
from slsbot.domain.ports import SecretValues

#: File names in a runtime's credentials folder, as the operator's Secret volume names them (``items[].path``).
API_KEY_FILE = "apiKey"
SECRET_FILE = "secret"  # noqa: S105 - a file name
PASSWORD_FILE = "password"  # noqa: S105 - a file name


class DeclaredSecrets:
    """The folder's Secrets, with ``fallback`` for the ones it does not declare. Safe to share between threads."""

    def __init__(self, secrets: Iterable[DeclaredSecret] = (), *, fallback: SecretValues | None = None) -> None:
        self._fallback = fallback
        self._lock = threading.Lock()
        self._secrets: dict[tuple[str, str], DeclaredSecret] = {}
        self.replace(secrets)

    def replace(self, secrets: Iterable[DeclaredSecret]) -> None:
        """What the folder declares now (every Secret in force after a load or a reload)."""
        by_key = {(s.namespace, s.name): s for s in secrets}
        with self._lock:
            self._secrets = by_key

    def get(self, namespace: str, name: str) -> DeclaredSecret | None:
        with self._lock:
            return self._secrets.get((namespace, name))

    def read(self, namespace: str, ref: SecretKeyRef) -> str:
        """``SecretValues.read``: the folder's Secret first, else the fallback. NotFoundError naming the Secret."""
        secret = self.get(namespace, ref.name)
        if secret is None:
            if self._fallback is None:
                raise NotFoundError(f"Secret {namespace}/{ref.name}: not declared in the folder")
            return self._fallback.read(namespace, ref)
        value = secret.data.get(ref.key)
        if value is None:
            raise NotFoundError(
                f"Secret {namespace}/{ref.name} (declared in the folder) has no key {ref.key}; add it to the Secret"
            )
        text = value.decode("utf-8", "replace").strip()
        if not text:
            raise NotFoundError(f"Secret {namespace}/{ref.name} key {ref.key}: the value is empty")
        return text

    def credential_files(self, namespace: str, ref: SecretCredentials) -> dict[str, bytes] | None:
        """The files of a runtime's credentials folder for ``ref`` (the account's ``credentials.secretRef``), or
        None when the folder does not declare that Secret. A key the Secret lacks is left out: the runtime then
        refuses to start, naming the missing file."""
        secret = self.get(namespace, ref.name)
        if secret is None:
            return None
        wanted = {API_KEY_FILE: ref.keys.api_key, SECRET_FILE: ref.keys.secret}
        if ref.keys.password is not None:
            wanted[PASSWORD_FILE] = ref.keys.password
        return {file: secret.data[key] for file, key in wanted.items() if key in secret.data}
