"""restic through its command line (Debian's ``restic`` package; ``make setup`` installs it where it can).

Every call runs ``restic --json`` with a small, explicit environment: the repository in ``RESTIC_REPOSITORY``, the
password in a file only this process can read (``RESTIC_PASSWORD_FILE``, mode 0600 in a private folder, removed after
the call), the backend's own variables (``AWS_ACCESS_KEY_ID``, ...) from the schedule's environment Secret. The
password is never on a command line, and restic's error output is scrubbed of the password and of every backend
value before it reaches an error, a log or a status. Failures become ``ResticError`` (or ``ResticUnavailable`` when
there is no restic binary).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from slsbot.domain.backup_plan import BackupResult, KeepRules
from slsbot.domain.errors import SlsbotError

SCRUBBED = "***"
#: restic's answers when the repository has not been created yet (``cat config`` on a missing repository).
_NO_REPOSITORY = ("unable to open config file", "does not exist", "is there a repository")
_PASSED_THROUGH_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR")


class ResticError(SlsbotError):
    """A restic command failed. The job that ran it fails (its status says this message, its incident opens); nothing
    already in the repository is changed by a failed backup. The message holds no password or backend credential."""


class ResticUnavailable(ResticError):
    """No restic binary: install it (``apt-get install restic``, or the image's package) or set its path."""


@dataclass(slots=True)
class ResticRepository:
    """One restic repository: ``repository`` as restic writes it (``/srv/restic``, ``s3:host/bucket``, ``rest:...``)."""

    repository: str
    password: SecretStr
    environment: Mapping[str, SecretStr] = field(default_factory=dict)
    binary: str = "restic"
    cache_dir: Path | None = None
    timeout: float = 3600.0

    # --- commands -------------------------------------------------------------------------------------------------

    def ensure_initialized(self) -> bool:
        """Create the repository when it does not exist yet; True when it was created."""
        completed = self._run(["cat", "config"], check=False)
        if completed.returncode == 0:
            return False
        if not any(marker in completed.stderr.lower() for marker in _NO_REPOSITORY):
            raise self._error(["cat", "config"], completed)
        self._run(["init"])
        return True

    def backup(self, folder: Path, *, tags: Mapping[str, str], host: str = "slsbot") -> BackupResult:
        """Back up ``folder`` (its contents, as ``.`` from inside it) with ``key=value`` tags."""
        arguments = ["backup", "--host", host]
        for key, value in sorted(tags.items()):
            arguments += ["--tag", f"{key}={value}"]
        completed = self._run([*arguments, "."], cwd=folder)
        for message in _json_lines(completed.stdout):
            if message.get("message_type") == "summary":
                return BackupResult(
                    snapshot_id=str(message["snapshot_id"]),
                    bytes_added=int(message.get("data_added", 0)),
                    total_bytes=int(message.get("total_bytes_processed", 0)),
                    duration_seconds=float(message.get("total_duration", 0.0)),
                )
        raise ResticError(f"restic backup of {folder}: no summary in its output")

    def snapshots(self, *, tags: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """The snapshots (restic's JSON objects), oldest first; only those carrying every tag in ``tags``."""
        arguments = ["snapshots"]
        if tags:
            arguments += ["--tag", ",".join(f"{k}={v}" for k, v in sorted(tags.items()))]
        completed = self._run(arguments)
        found = json.loads(completed.stdout or "[]") or []
        return sorted(found, key=lambda s: s.get("time", ""))

    def forget(self, keep: KeepRules) -> list[str]:
        """``forget --prune`` per ``keep`` within each group of host and tags (one strategy's state is one group);
        returns the ids of the snapshots removed."""
        completed = self._run(["forget", "--prune", "--group-by", "host,tags", *keep.arguments()])
        removed: list[str] = []
        for line in completed.stdout.splitlines():
            line = line.strip()
            try:
                groups = json.loads(line) if line.startswith("[") else None
            except json.JSONDecodeError:
                groups = None  # prune's progress lines are text even with --json ("[0:00] 100.00% ...")
            for group in groups or []:
                removed += [str(s["id"]) for s in group.get("remove") or []]
        return removed

    def check(self, *, read_data_subset: str | None = None) -> None:
        arguments = ["check"] + ([f"--read-data-subset={read_data_subset}"] if read_data_subset else [])
        self._run(arguments)

    def restore(self, snapshot_id: str, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        self._run(["restore", snapshot_id, "--target", str(target)])

    # --- plumbing -------------------------------------------------------------------------------------------------

    def _run(
        self, arguments: Sequence[str], *, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        binary = shutil.which(self.binary)
        if binary is None:
            raise ResticUnavailable(
                f"no restic binary ({self.binary!r} is not on PATH): install it with apt-get install restic"
            )
        with self._password_file() as password_file:
            env = {k: os.environ[k] for k in _PASSED_THROUGH_ENV if k in os.environ}
            env.update({k: v.get_secret_value() for k, v in self.environment.items()})
            env["RESTIC_REPOSITORY"] = self.repository
            env["RESTIC_PASSWORD_FILE"] = str(password_file)
            if self.cache_dir is not None:
                env["RESTIC_CACHE_DIR"] = str(self.cache_dir)
            try:
                completed = subprocess.run(
                    [binary, "--json", *arguments],
                    cwd=cwd,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=self.timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise ResticError(f"restic {arguments[0]}: no answer within {self.timeout:.0f} s") from None
            except OSError as exc:
                raise ResticError(f"restic {arguments[0]}: cannot run {binary} ({exc.strerror})") from None
        if check and completed.returncode != 0:
            raise self._error(arguments, completed)
        return completed

    def _error(self, arguments: Sequence[str], completed: subprocess.CompletedProcess[str]) -> ResticError:
        detail = self.scrub(completed.stderr.strip() or completed.stdout.strip())
        lines = [line for line in detail.splitlines() if line.strip()][-5:]
        return ResticError(f"restic {arguments[0]} failed (exit {completed.returncode}): " + " | ".join(lines))

    def scrub(self, text: str) -> str:
        """``text`` with the password and every backend value replaced by ``***``."""
        secrets = [self.password.get_secret_value(), *(v.get_secret_value() for v in self.environment.values())]
        for secret in sorted((s for s in secrets if s), key=len, reverse=True):
            text = text.replace(secret, SCRUBBED)
        return text

    @contextmanager
    def _password_file(self) -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix="slsbot-restic-"))  # 0700
        path = folder / "password"
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(self.password.get_secret_value())
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _json_lines(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
