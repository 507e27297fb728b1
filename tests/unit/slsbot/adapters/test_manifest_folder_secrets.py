"""Secrets in a folder of YAML: a Secret in clear is refused; a sops file's Secrets are parsed from its decrypted
text (here a stand-in for the sops binary hands it back; the real binary: tests/integration/supervisor/
test_sops_folder.py) into DeclaredSecret, whose values are in no repr and no problem line."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session
from tests.fakes import test_secrets

from slsbot.adapters.declared_secrets import DeclaredSecrets
from slsbot.adapters.manifest_folder import load_manifest_folder, parse_secret, read_manifest_file
from slsbot.adapters.manifest_watch import FolderSyncedStore, ManifestWatcher
from slsbot.adapters.store import create_store_engine, sync_desired_objects
from slsbot.adapters.supervisor_store import SqlSupervisorStore
from slsbot.api.health import SecretKeyRef
from slsbot.domain.errors import InvalidSpecError
from slsbot.domain.manifests import DeclaredSecret, ManifestFile, plan_folder

KEY, SECRET = test_secrets.SOPS_EXCHANGE_API_KEY, test_secrets.SOPS_EXCHANGE_SECRET
ACCOUNT = """\
apiVersion: slsbot.io/v1alpha1
kind: TradingAccount
metadata: {name: binance-testnet}
spec:
  exchange: binance
  mode: testnet
  credentials: {secretRef: {name: binance-keys}}
"""
SECRET_MANIFEST = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: binance-keys
  labels: {{slsbot.io/credentials: "true"}}
type: Opaque
data:
  apiKey: {base64.b64encode(b"overwritten by stringData").decode()}
  secret: {base64.b64encode(SECRET.encode()).decode()}
stringData:
  apiKey: {KEY}
"""
SOPS_BLOCK = "sops:\n  age: [{recipient: age1example}]\n  mac: ENC[AES256_GCM,data:x]\n  version: 3.11.0\n"


class ClearText:
    """Stands in for the sops binary: hands back the clear text it was given for a file, counting the calls."""

    def __init__(self, clear: dict[str, str]) -> None:
        self.clear = clear
        self.calls: list[str] = []

    def decrypt(self, path: Path, content: bytes) -> bytes:
        self.calls.append(path.name)
        if path.name not in self.clear:
            raise InvalidSpecError(f"{path}: sops could not decrypt it (exit code 128): Failed to get the data key")
        assert b"sops:" in content
        return self.clear[path.name].encode()


def test_a_secret_in_clear_is_refused_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "account.yaml").write_text(ACCOUNT)
    (tmp_path / "keys.yaml").write_text(SECRET_MANIFEST)
    with pytest.raises(InvalidSpecError) as caught:
        load_manifest_folder(tmp_path, sops=ClearText({}))
    message = str(caught.value)
    assert f"{tmp_path / 'keys.yaml'}, document 1 (Secret binance-keys): a Secret in clear" in message
    assert "encrypt it with sops" in message and "docs/how-to/secrets-in-git.md" in message
    assert KEY not in message and SECRET not in message


def test_a_sops_file_is_decrypted_and_its_secrets_declared(tmp_path: Path) -> None:
    (tmp_path / "account.yaml").write_text(ACCOUNT)
    (tmp_path / "keys.enc.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: binance-keys}\n" + SOPS_BLOCK
    )
    sops = ClearText({"keys.enc.yaml": SECRET_MANIFEST})
    plan = load_manifest_folder(tmp_path, sops=sops)
    assert sops.calls == ["keys.enc.yaml"]  # the plain file is not sent to sops
    [account] = plan.resources
    assert account.name == "binance-testnet"
    [secret] = plan.secrets
    assert (secret.namespace, secret.name) == ("default", "binance-keys")
    assert secret.labels == {"slsbot.io/credentials": "true"}
    assert secret.data == {"apiKey": KEY.encode(), "secret": SECRET.encode()}  # stringData wins, as on the API server
    assert KEY not in repr(secret) and SECRET not in repr(plan)


def test_a_file_sops_cannot_decrypt_is_a_problem_of_that_file(tmp_path: Path) -> None:
    content = ("apiVersion: v1\nkind: Secret\nmetadata: {name: binance-keys}\n" + SOPS_BLOCK).encode()
    read = read_manifest_file(tmp_path / "keys.enc.yaml", content, sops=ClearText({}))
    assert read.problems == (
        f"{tmp_path / 'keys.enc.yaml'}: sops could not decrypt it (exit code 128): Failed to get the data key",
    )
    assert read.secrets == () and read.resources == ()


def test_decrypted_text_that_is_not_yaml_is_reported_without_quoting_it(tmp_path: Path) -> None:
    content = ("kind: Secret\n" + SOPS_BLOCK).encode()
    read = read_manifest_file(tmp_path / "k.yaml", content, sops=ClearText({"k.yaml": f"apiKey: [{KEY}\n"}))
    [problem] = read.problems
    assert "its decrypted text is not valid YAML" in problem and KEY not in problem


def test_secret_problems_name_the_field_never_the_value() -> None:
    secret, problems = parse_secret(
        {
            "apiVersion": "v2",
            "kind": "Secret",
            "metadata": {"name": "Bad_Name", "namespace": "prod", "labels": {"a": True}},
            "data": {"apiKey": f"{KEY}!", "bad key": "eA=="},
            "stringData": {"secret": 12345678},
        }
    )
    assert secret is None
    assert problems == [
        "apiVersion: a Secret's apiVersion is v1",
        "metadata.name: must be a DNS name (lower case letters, digits, '-' and '.')",
        'metadata.labels: must map names to strings (quote values such as "true")',
        "data.apiKey: not valid base64; put the value in stringData to write it as text",
        "data: the key 'bad key' is not a valid Secret key ([-._a-zA-Z0-9]+)",
        "stringData.secret: must be a string; quote it",
    ]
    assert not any(KEY in line for line in problems)


def test_a_secret_declared_twice_stays_with_the_file_that_had_it(tmp_path: Path) -> None:
    first = DeclaredSecret("default", "keys", {"apiKey": b"1"})
    second = DeclaredSecret("default", "keys", {"apiKey": b"2"})
    plan = plan_folder([ManifestFile(tmp_path / "a.yaml", "d1", secrets=(first,))], {})
    later = plan_folder(
        [
            ManifestFile(tmp_path / "a.yaml", "d1", secrets=(first,)),
            ManifestFile(tmp_path / "0.yaml", "d2", secrets=(second,)),
        ],
        plan.applied,
    )
    assert later.secrets == [first]
    assert later.problems == [
        f"{tmp_path / '0.yaml'}: Secret default/keys is also defined in {tmp_path / 'a.yaml'}; "
        "metadata.name must be unique per kind and namespace"
    ]


def test_the_watcher_decrypts_only_files_that_changed(tmp_path: Path) -> None:
    (tmp_path / "account.yaml").write_text(ACCOUNT)
    (tmp_path / "keys.enc.yaml").write_text("kind: Secret\n" + SOPS_BLOCK)
    sops = ClearText({"keys.enc.yaml": SECRET_MANIFEST})
    watcher = ManifestWatcher(tmp_path, load_manifest_folder(tmp_path, sops=sops), interval=60, sops=sops)
    (tmp_path / "account.yaml").write_text(ACCOUNT.replace("binance-testnet", "binance-live"))
    assert watcher.poll() is None  # changed, not yet settled
    plan = watcher.poll()
    assert plan is not None
    assert [r.name for r in plan.resources] == ["binance-live"]
    assert [s.name for s in plan.secrets] == ["binance-keys"]  # kept from the load, not decrypted again
    assert sops.calls == ["keys.enc.yaml"]


def test_a_reload_replaces_the_declared_secrets_when_the_loop_applies_it(tmp_path: Path) -> None:
    (tmp_path / "account.yaml").write_text(ACCOUNT)
    (tmp_path / "keys.enc.yaml").write_text("kind: Secret\n" + SOPS_BLOCK)
    rotated = SECRET_MANIFEST.replace(f"apiKey: {KEY}", f"apiKey: {test_secrets.SOPS_WEBHOOK_URL}")
    sops = ClearText({"keys.enc.yaml": SECRET_MANIFEST})
    loaded = load_manifest_folder(tmp_path, sops=sops)
    engine = create_store_engine(tmp_path / "supervisor.db")
    try:
        with Session(engine) as session:
            sync_desired_objects(session, resources=loaded.resources, now=datetime(2026, 1, 2, tzinfo=UTC))
        secrets = DeclaredSecrets(loaded.secrets)
        watcher = ManifestWatcher(tmp_path, loaded, interval=60, sops=sops)
        store = FolderSyncedStore(SqlSupervisorStore(engine), engine=engine, watcher=watcher, secrets=secrets)
        ref = SecretKeyRef(name="binance-keys", key="apiKey")
        sops.clear["keys.enc.yaml"] = rotated
        (tmp_path / "keys.enc.yaml").write_text("kind: Secret\n" + SOPS_BLOCK + "# re-encrypted\n")
        assert watcher.poll() is None and watcher.poll() is not None
        assert secrets.read("default", ref) == KEY  # not before the loop's next pass
        store.desired_objects()  # the loop's pass applies the plan
        assert secrets.read("default", ref) == test_secrets.SOPS_WEBHOOK_URL
    finally:
        engine.dispose()
