"""The secret scan: no integration test may let a known test secret reach a log line, a file, an Event, a status or
``/metrics``.

For every test marked ``integration`` (registered by tests/conftest.py):

* every log record of the test (a handler on the root logger, which is set to INFO for the test if it was higher);
* every text file written under pytest's temporary folders (the test's ``tmp_path`` and any
  ``tmp_path_factory.mktemp`` folder) since the last scan: runtime logs, status JSON, rendered configs. SQLite
  files are dumped as SQL text (the supervisor's store: events, statuses, audit, incidents; a runtime's state);
* whatever the test hands to ``secret_scan.observe(text, where=...)``: ``/metrics`` bodies, kmock's stored Events
  and statuses.

are searched, once, when the test ends, for every secret of ``tests/fakes/test_secrets.py`` and every value the
test registered (``secret_scan.register(value, name=...)``, for secrets its settings generate). A find fails the
test (an error at teardown) naming the secret by its name and where it was found, never printing its value.

Skipped: binary files, files over ``MAX_TEXT_BYTES`` (``MAX_SQLITE_BYTES`` for SQLite), and files only their owner
may read (mode ``0?00``): those are secret stores by design (``admin-api.json``, ``control.key``, a runtime's
credentials folder), where a secret belongs. A test's own secret inputs written elsewhere are allowed with
``secret_scan.allow(path)``. The ``tmp_path`` of a test that is not an integration test is never scanned (unit
tests may hold secrets in files); a file is scanned again only when it changed, so a folder that several tests share
(a module's ``tmp_path_factory.mktemp`` folder) is blamed on the test that changed it.

Overhead: the scan runs once per integration test, at its end; ``secret scan: N integration tests scanned in S s``
closes the run.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.fakes (tests is not a package)

from tests.fakes.test_secrets import known_secrets  # noqa: E402

MAX_TEXT_BYTES = 4 * 1024 * 1024
MAX_SQLITE_BYTES = 32 * 1024 * 1024
BINARY_SNIFF_BYTES = 8192
SQLITE_HEADER = b"SQLite format 3\x00"
MIN_SECRET_LENGTH = 8  # shorter values would match by chance


@dataclass(frozen=True, slots=True)
class Leak:
    """A secret, by name, and where it was seen (never the value)."""

    secret: str
    where: str


def find_leaks(text: str, secrets: Mapping[str, str], *, where: str) -> list[Leak]:
    """Every secret of ``secrets`` (name -> value) in ``text``, once each, with its line number in ``where``."""
    leaks = []
    for name, value in secrets.items():
        at = text.find(value)
        if at >= 0:
            leaks.append(Leak(name, f"{where}:{text.count(chr(10), 0, at) + 1}"))
    return leaks


def file_text(path: Path) -> str | None:
    """The text to scan in ``path``: the file's, a SQLite file's dump, or None (binary, too large, unreadable)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(BINARY_SNIFF_BYTES)
            if head.startswith(SQLITE_HEADER):
                return sqlite_text(path) if size <= MAX_SQLITE_BYTES else None
            if b"\x00" in head or size > MAX_TEXT_BYTES:
                return None
            return (head + handle.read()).decode("utf-8", "replace")
    except OSError:
        return None


def sqlite_text(path: Path) -> str | None:
    """Every row of every table of a SQLite file, as SQL text (read-only; None when it cannot be opened)."""
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return None
    try:
        return "\n".join(connection.iterdump())
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def owner_only(mode: int) -> bool:
    return stat.S_IMODE(mode) & 0o077 == 0


class ScanFiles:
    """The files under pytest's base temporary folder that changed since the last look, minus excluded folders."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[int, int]] = {}
        self.excluded: set[Path] = set()
        self.allowed: set[Path] = set()

    def changed(self, root: Path) -> Iterator[Path]:
        for folder, dirs, files in os.walk(root):
            here = Path(folder)
            dirs[:] = [d for d in dirs if here / d not in self.excluded]
            for name in files:
                path = here / name
                try:
                    info = path.lstat()
                except OSError:
                    continue
                if not stat.S_ISREG(info.st_mode) or owner_only(info.st_mode) or path in self.allowed:
                    continue
                signature = (info.st_mtime_ns, info.st_size)
                if self._seen.get(path) == signature:
                    continue
                self._seen[path] = signature
                yield path


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.lines: list[tuple[str, str]] = []  # (where, text)
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not fit its message: its parts are what there is
            text = f"{record.msg} {record.args}"
        if record.exc_info:
            text += "\n" + self._formatter.formatException(record.exc_info)
        self.lines.append((f"log record {record.name} {record.levelname}", text))


class SecretScan:
    """One test's scan: what it registered, allowed and observed."""

    def __init__(self, files: ScanFiles) -> None:
        self.secrets: dict[str, str] = known_secrets()
        self._files = files
        self.observed: list[tuple[str, str]] = []

    def register(self, value: str, *, name: str = "registered secret") -> None:
        """A secret this test generated (a token its settings made): it must not appear either."""
        if len(value) >= MIN_SECRET_LENGTH:
            self.secrets[f"{name} (registered)" if name in self.secrets else name] = value

    def observe(self, text: str, *, where: str) -> None:
        """Text the test saw (a /metrics body, kmock's Events or statuses): scanned when the test ends."""
        self.observed.append((where, text))

    def allow(self, path: Path) -> None:
        """A file the test itself wrote a secret into, as input (a mounted Secret's layout): not scanned."""
        self._files.allowed.add(Path(path))

    def leaks(self, records: list[tuple[str, str]], files: Iterator[Path]) -> list[Leak]:
        found: list[Leak] = []
        for where, text in [*records, *self.observed]:
            found += find_leaks(text, self.secrets, where=where)
        for path in files:
            text = file_text(path)
            if text is not None:
                found += find_leaks(text, self.secrets, where=str(path))
        return found


def report(leaks: list[Leak]) -> str:
    lines = [f"  {leak.secret} in {leak.where}" for leak in leaks]
    return "a known test secret leaked (tests/fakes/test_secrets.py names it):\n" + "\n".join(lines)


class SecretScanPlugin:
    """Registered once per session by tests/conftest.py."""

    def __init__(self) -> None:
        self.files = ScanFiles()
        self.scanned = 0
        self.seconds = 0.0  # spent scanning, reported at the end of the run

    @pytest.fixture(autouse=True)
    def _scan_integration_tests(self, request: pytest.FixtureRequest) -> Iterator[None]:
        scan = SecretScan(self.files)
        request.node.stash[SCAN_KEY] = scan
        integration = request.node.get_closest_marker("integration") is not None
        if not integration:
            if "tmp_path" in request.fixturenames:  # a unit test's files are never an integration test's leak
                self.files.excluded.add(request.getfixturevalue("tmp_path"))
            yield
            return
        base = request.getfixturevalue("tmp_path_factory").getbasetemp()
        handler = RecordingHandler()
        root = logging.getLogger()
        level = root.level
        root.addHandler(handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
        started = time.perf_counter()
        leaks = scan.leaks(handler.lines, self.files.changed(base))
        self.seconds += time.perf_counter() - started
        self.scanned += 1
        if leaks:
            pytest.fail(report(leaks), pytrace=False)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.scanned:
            terminalreporter.write_line(
                f"secret scan: {self.scanned} integration tests scanned in {self.seconds:.2f} s"
            )


SCAN_KEY = pytest.StashKey[SecretScan]()


@pytest.fixture
def secret_scan(request: pytest.FixtureRequest) -> SecretScan:
    """This test's scan: ``register(value, name=)``, ``observe(text, where=)``, ``allow(path)``."""
    return request.node.stash[SCAN_KEY]
