"""Decrypt sops-encrypted manifest files through the ``sops`` CLI, in memory.

Which files: a YAML file is a sops file when one of its documents has a top-level ``sops`` mapping, the metadata
block sops writes into every document it encrypts (recipients, MAC, version). The file's name does not matter.

How: the bytes already read are sent on stdin to ``sops --decrypt --input-type yaml --output-type yaml /dev/stdin``
and the clear text is read from sops's stdout. Nothing in clear is ever written to disk, not even a temporary file.
sops finds the age identity the way it always does (``SOPS_AGE_KEY_FILE``, ``SOPS_AGE_KEY``, ``SOPS_AGE_KEY_CMD``,
else ``~/.config/sops/age/keys.txt``): the environment is passed to it unchanged.

Errors become ``InvalidSpecError`` naming the file: no sops binary ("install sops or decrypt it first"), a timeout,
or sops's own message when it cannot decrypt (no matching age key, a changed file whose MAC no longer matches). The
clear text is never quoted: a decryption that failed has none, and a decrypted file that is not valid YAML is
reported by line and column only.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slsbot.domain.errors import InvalidSpecError

SOPS_METADATA_KEY = "sops"
SOPS_MESSAGE_CHARS = 600  # sops's own error text kept in a problem line (its "no key found" list is long)
INSTALL_HINT = "install sops or decrypt it first (https://github.com/getsops/sops/releases)"


def is_sops_document(document: Any) -> bool:
    """Whether a parsed YAML document carries sops's metadata block (a top-level ``sops`` mapping)."""
    return isinstance(document, dict) and isinstance(document.get(SOPS_METADATA_KEY), dict)


def is_sops_file(documents: Sequence[Any]) -> bool:
    """Whether a file (its parsed documents) was encrypted by sops: any document with the metadata block."""
    return any(is_sops_document(document) for document in documents)


def sops_message(stderr: bytes) -> str:
    """sops's error output as one line, shortened."""
    text = " ".join(stderr.decode("utf-8", "replace").split())
    if len(text) > SOPS_MESSAGE_CHARS:
        text = text[: SOPS_MESSAGE_CHARS - 3] + "..."
    return text or "no message"


@dataclass(frozen=True, slots=True)
class SopsCli:
    """The ``sops`` command: ``command`` is how to run it (``("sops",)`` looks it up on PATH), ``timeout`` how long
    one decryption may take, ``environ`` the environment it runs with (None: this process's, read at the call)."""

    command: tuple[str, ...] = ("sops",)
    timeout: float = 30.0
    environ: Mapping[str, str] | None = None

    def arguments(self) -> list[str]:
        """The command line of one decryption: YAML in on stdin, YAML out on stdout."""
        return [*self.command, "--decrypt", "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"]

    def decrypt(self, path: Path, content: bytes) -> bytes:
        """The clear text of ``content`` (the bytes of ``path``, a sops file). InvalidSpecError naming ``path`` when
        sops is missing, too slow, or cannot decrypt it."""
        try:
            completed = subprocess.run(
                self.arguments(),
                input=content,
                capture_output=True,
                timeout=self.timeout,
                env=dict(os.environ if self.environ is None else self.environ),
                check=False,
            )
        except FileNotFoundError:
            raise InvalidSpecError(
                f"{path}: encrypted with sops, but the sops command ({self.command[0]}) was not found; {INSTALL_HINT}"
            ) from None
        except PermissionError:
            raise InvalidSpecError(
                f"{path}: encrypted with sops, but the sops command ({self.command[0]}) cannot be run (not "
                f"executable); {INSTALL_HINT}"
            ) from None
        except subprocess.TimeoutExpired:
            raise InvalidSpecError(
                f"{path}: sops did not decrypt it within {self.timeout:g} s; check that sops runs "
                "(`sops --version`) and that SOPS_AGE_KEY_CMD, if set, does not wait for input"
            ) from None
        if completed.returncode != 0:
            raise InvalidSpecError(
                f"{path}: sops could not decrypt it (exit code {completed.returncode}): "
                f"{sops_message(completed.stderr)}; give sops an age key that is one of the file's recipients "
                "(SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)"
            )
        return completed.stdout


DEFAULT_SOPS = SopsCli()
