"""The folder's Secrets as slsbot up serves them: a receiver's URL (the secrets folder as fallback) and the files of a
runtime's credentials folder, written 0600 in a 0700 folder and removed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from tests.fakes import test_secrets

from slsbot.adapters.credentials_folder import remove_credentials_folder, write_credentials_folder
from slsbot.adapters.declared_secrets import DeclaredSecrets
from slsbot.adapters.notifiers import FolderSecrets
from slsbot.api.account import CredentialKeys, SecretCredentials
from slsbot.api.health import SecretKeyRef
from slsbot.domain.errors import NotFoundError
from slsbot.domain.manifests import DeclaredSecret

KEYS = DeclaredSecret(
    "default",
    "binance-keys",
    {
        "key": test_secrets.SOPS_EXCHANGE_API_KEY.encode(),
        "secret": test_secrets.SOPS_EXCHANGE_SECRET.encode(),
        "url": (test_secrets.SOPS_WEBHOOK_URL + "\n").encode(),
    },
)


def test_a_receiver_reads_the_folder_secret_first_then_the_secrets_folder(tmp_path: Path) -> None:
    on_disk = tmp_path / "secrets" / "default" / "slack" / "url"
    on_disk.parent.mkdir(parents=True)
    on_disk.write_text(test_secrets.SLACK_WEBHOOK_URL)
    secrets = DeclaredSecrets([KEYS], fallback=FolderSecrets(tmp_path / "secrets"))
    assert secrets.read("default", SecretKeyRef(name="binance-keys", key="url")) == test_secrets.SOPS_WEBHOOK_URL
    assert secrets.read("default", SecretKeyRef(name="slack", key="url")) == test_secrets.SLACK_WEBHOOK_URL
    with pytest.raises(NotFoundError, match="declared in the folder\\) has no key nope; add it") as caught:
        secrets.read("default", SecretKeyRef(name="binance-keys", key="nope"))
    assert test_secrets.SOPS_WEBHOOK_URL not in str(caught.value)
    secrets.replace([])  # the folder no longer declares it
    with pytest.raises(NotFoundError, match="no readable file"):
        secrets.read("default", SecretKeyRef(name="binance-keys", key="url"))


def test_credential_files_are_named_as_the_operator_mounts_them() -> None:
    secrets = DeclaredSecrets([KEYS])
    ref = SecretCredentials(name="binance-keys", keys=CredentialKeys(api_key="key", secret="secret"))
    assert secrets.credential_files("default", ref) == {
        "apiKey": test_secrets.SOPS_EXCHANGE_API_KEY.encode(),
        "secret": test_secrets.SOPS_EXCHANGE_SECRET.encode(),
    }
    with_password = SecretCredentials(name="binance-keys", keys=CredentialKeys(api_key="key", password="pass"))
    assert set(secrets.credential_files("default", with_password) or {}) == {"apiKey", "secret"}  # no 'pass' key
    assert secrets.credential_files("other", ref) is None  # another namespace's Secret of that name: not declared


def test_the_credentials_folder_is_owner_only_and_holds_exactly_the_files(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "default" / "btc" / "credentials"
    folder.mkdir(parents=True, mode=0o755)
    (folder / "stale").write_text("from an earlier start")
    write_credentials_folder(folder, {"apiKey": b"k-0123456789", "secret": b"s-0123456789"})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == ["apiKey", "secret"]
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (folder / "apiKey").read_bytes() == b"k-0123456789"
    (folder / "apiKey").chmod(0o644)
    write_credentials_folder(folder, {"apiKey": b"k2"})
    assert stat.S_IMODE((folder / "apiKey").stat().st_mode) == 0o600 and (folder / "apiKey").read_bytes() == b"k2"
    remove_credentials_folder(folder)
    assert not folder.exists()
    remove_credentials_folder(folder)  # nothing there: nothing to do


def test_a_symlink_in_the_credentials_folder_is_replaced_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "credentials"
    folder.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    (folder / "apiKey").symlink_to(target)
    write_credentials_folder(folder, {"apiKey": b"k"})
    assert target.read_text() == "untouched" and (folder / "apiKey").read_bytes() == b"k"
