"""How ``ResticRepository`` calls restic: the password only in a 0600 file that is gone afterwards, never on the command
line nor in the environment; the environment limited to what restic needs; restic's errors scrubbed and converted.
A stand-in ``restic`` (a script recording what it was given) plays the binary: the adapter, not restic, is under test
here (tests/integration/backups run the real one)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from slsbot.adapters.restic import ResticError, ResticRepository, ResticUnavailable

PASSWORD = "restic-pw-test-Unit4Xs9"  # test_secrets
BACKEND_SECRET = "aws-secret-test-Unit7Lm2"  # test_secrets

RECORDER = """#!{python}
import json, os, stat, sys
path = os.environ.get("RESTIC_PASSWORD_FILE", "")
info = os.stat(path)
record = {{
    "argv": sys.argv[1:],
    "env": dict(os.environ),
    "password_file": path,
    "mode": stat.S_IMODE(info.st_mode),
    "folder_mode": stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode),
    "password": open(path).read(),
}}
with open({log!r}, "a") as log:
    log.write(json.dumps(record) + "\\n")
if {fail!r}:
    sys.stderr.write("Fatal: backend refused key " + os.environ.get("AWS_SECRET_ACCESS_KEY", "") + "\\n")
    sys.exit(1)
print(json.dumps([]))
"""


def fake_restic(folder: Path, *, fail: bool = False) -> tuple[Path, Path]:
    log = folder / "calls.jsonl"
    script = folder / "restic"
    script.write_text(RECORDER.format(python=sys.executable, log=str(log), fail=fail))
    script.chmod(0o755)
    return script, log


def test_the_password_reaches_restic_only_through_a_private_file(tmp_path: Path, monkeypatch) -> None:
    script, log = fake_restic(tmp_path)
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN", "not-for-restic")
    repository = ResticRepository(
        "s3:127.0.0.1:9/bucket",
        SecretStr(PASSWORD),
        environment={"AWS_SECRET_ACCESS_KEY": SecretStr(BACKEND_SECRET)},
        binary=str(script),
    )
    assert repository.snapshots(tags={"namespace": "trading"}) == []
    (call,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert call["argv"] == ["--json", "snapshots", "--tag", "namespace=trading"]
    assert PASSWORD not in " ".join(call["argv"])
    assert call["password"] == PASSWORD and call["mode"] == 0o600
    assert not Path(call["password_file"]).exists()  # removed after the call
    assert call["folder_mode"] == 0o700  # in a folder only this user can enter
    env = call["env"]
    assert env["RESTIC_REPOSITORY"] == "s3:127.0.0.1:9/bucket"
    assert env["AWS_SECRET_ACCESS_KEY"] == BACKEND_SECRET
    assert "SLSBOT_ADMIN_TOKEN" not in env and "RESTIC_PASSWORD" not in env
    assert PASSWORD not in json.dumps(env)


def test_a_failure_is_a_restic_error_without_the_secrets(tmp_path: Path) -> None:
    script, _log = fake_restic(tmp_path, fail=True)
    repository = ResticRepository(
        "s3:127.0.0.1:9/bucket",
        SecretStr(PASSWORD),
        environment={"AWS_SECRET_ACCESS_KEY": SecretStr(BACKEND_SECRET)},
        binary=str(script),
    )
    with pytest.raises(ResticError) as caught:
        repository.check(read_data_subset="10%")
    assert str(caught.value) == "restic check failed (exit 1): Fatal: backend refused key ***"


def test_no_binary_says_how_to_install_it() -> None:
    repository = ResticRepository("/srv/restic", SecretStr(PASSWORD), binary="no-such-restic-binary")
    with pytest.raises(ResticUnavailable, match="apt-get install restic"):
        repository.snapshots()
