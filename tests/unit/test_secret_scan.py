"""The secret scan can fail: a secret that leaks into a log record, a text file or a SQLite store is reported by its
name and where, never by its value; binary files, owner-only files and allowed files are not read."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from tests.fakes import test_secrets
from tests.secret_scan import RecordingHandler, ScanFiles, SecretScan, file_text, find_leaks, report


def test_a_secret_in_a_log_record_and_a_file_is_reported_by_name_and_place(tmp_path: Path) -> None:
    files = ScanFiles()
    scan = SecretScan(files)
    handler = RecordingHandler()
    logger = logging.getLogger("slsbot.test-leak")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling the exchange with key %s", test_secrets.FAKE_API_KEY)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    (tmp_path / "runtime.log").write_text(f"started\nsigned with {test_secrets.FAKE_SECRET}\n")
    (tmp_path / "clean.log").write_text("nothing to see\n")

    leaks = scan.leaks(handler.lines, files.changed(tmp_path))

    assert {(leak.secret, leak.where) for leak in leaks} == {
        ("FAKE_API_KEY", "log record slsbot.test-leak WARNING:1"),
        ("FAKE_SECRET", f"{tmp_path / 'runtime.log'}:2"),
    }
    message = report(leaks)
    assert "FAKE_API_KEY" in message and "runtime.log:2" in message
    assert test_secrets.FAKE_API_KEY not in message and test_secrets.FAKE_SECRET not in message


def test_a_file_is_scanned_again_only_when_it_changed(tmp_path: Path) -> None:
    files = ScanFiles()
    log = tmp_path / "a.log"
    log.write_text("one\n")
    assert list(files.changed(tmp_path)) == [log]
    assert list(files.changed(tmp_path)) == []
    log.write_text("one\ntwo, longer\n")
    assert list(files.changed(tmp_path)) == [log]


def test_owner_only_binary_allowed_and_excluded_files_are_not_read(tmp_path: Path) -> None:
    files = ScanFiles()
    token = tmp_path / "admin-api.json"
    token.write_text(test_secrets.SUPERVISOR_ADMIN_TOKEN)
    token.chmod(0o600)
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01" + test_secrets.FAKE_SECRET.encode())
    allowed = tmp_path / "input"
    allowed.write_text(test_secrets.WEBHOOK_TOKEN)
    (tmp_path / "unit").mkdir()
    (tmp_path / "unit" / "x.log").write_text(test_secrets.FAKE_SECRET)
    files.allowed.add(allowed)
    files.excluded.add(tmp_path / "unit")
    scan = SecretScan(files)
    assert file_text(binary) is None
    assert scan.leaks([], files.changed(tmp_path)) == []


def test_a_sqlite_store_is_dumped_as_text(tmp_path: Path) -> None:
    database = tmp_path / "supervisor.db"
    with sqlite3.connect(database) as connection:
        connection.execute("create table events (message text)")
        connection.execute("insert into events values (?)", (f"sent to {test_secrets.SLACK_WEBHOOK_URL}",))
    text = file_text(database)
    assert text is not None
    assert [leak.secret for leak in find_leaks(text, test_secrets.known_secrets(), where="db")] == ["SLACK_WEBHOOK_URL"]


def test_registered_and_observed_secrets_are_scanned(tmp_path: Path) -> None:
    scan = SecretScan(ScanFiles())
    scan.register("generated-token-0123456789", name="SLSBOT_ADMIN_TOKEN")
    scan.observe('slsbot_up{token="generated-token-0123456789"} 1\n', where="/metrics")
    assert [(leak.secret, leak.where) for leak in scan.leaks([], iter(()))] == [("SLSBOT_ADMIN_TOKEN", "/metrics:1")]


def test_the_age_recipient_is_not_a_secret() -> None:
    known = test_secrets.known_secrets()
    assert "AGE_RECIPIENT" not in known
    assert known["AGE_SECRET_KEY"] == test_secrets.AGE_SECRET_KEY


LEAKY_TEST = """
import logging
import pytest

@pytest.mark.integration
def test_leaks(tmp_path):
    logging.getLogger("leaky").info("key %s", "{key}")
    (tmp_path / "status.json").write_text('{{"secret": "{secret}"}}')

@pytest.mark.integration
def test_clean(tmp_path):
    (tmp_path / "status.json").write_text("{{}}")

def test_a_unit_test_may_hold_secrets(tmp_path):
    (tmp_path / "fixture.txt").write_text("{secret}")
"""


def test_the_plugin_fails_an_integration_test_that_leaks() -> None:
    """A real pytest run of a test that leaks, with the plugin wired as tests/conftest.py wires it."""
    repo = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "suite"
        folder.mkdir()
        (folder / "conftest.py").write_text(
            textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(repo)!r})
            from tests.secret_scan import SecretScanPlugin, secret_scan

            def pytest_configure(config):
                config.addinivalue_line("markers", "integration: test")
                config.pluginmanager.register(SecretScanPlugin(), "slsbot-secret-scan")
            """)
        )
        (folder / "test_leaky.py").write_text(
            LEAKY_TEST.format(key=test_secrets.FAKE_API_KEY, secret=test_secrets.FAKE_SECRET)
        )
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                str(folder),
                "--basetemp",
                str(Path(scratch) / "tmp"),
                "-o",
                "addopts=",
                "--rootdir",
                str(folder),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            cwd=folder,
        )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "3 passed, 1 error" in output  # the leaky test passes, then errs at teardown
    assert "ERROR at teardown of test_leaks" in output
    assert "FAKE_API_KEY in log record leaky INFO:1" in output
    assert "FAKE_SECRET in " in output and "status.json:1" in output
    # the report names the secrets; their values are only in what pytest captured of the test's own output
    lines = output.splitlines()
    first = lines.index("a known test secret leaked (tests/fakes/test_secrets.py names it):")
    found = []
    for line in lines[first + 1 :]:
        if not line.startswith("  "):
            break
        found.append(line)
    assert len(found) == 2, found
    assert not any(test_secrets.FAKE_API_KEY in line or test_secrets.FAKE_SECRET in line for line in found)


@pytest.fixture(autouse=True)
def _no_root_handlers_left():
    before = list(logging.getLogger().handlers)
    yield
    assert list(logging.getLogger().handlers) == before
