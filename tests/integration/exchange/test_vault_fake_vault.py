"""``VaultCredentialSource`` against the fake Vault on 127.0.0.1 (Vault's own answer shapes), and against a real Vault
when ``VAULT_ADDR`` and ``VAULT_TOKEN`` are set: login by each method, a version read, the metadata's current
version, renewal before the lease ends, a new login when the token is gone, and every Vault error as the runtime's
own, with no token, secret id, JWT or key in any message, log line or repr."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
from tests.fakes.fake_vault import FakeVault
from tests.fakes.test_secrets import VAULT_ADAPTER_API_KEY_V1 as API_KEY_V1
from tests.fakes.test_secrets import VAULT_ADAPTER_API_KEY_V2 as API_KEY_V2
from tests.fakes.test_secrets import VAULT_ADAPTER_JWT as JWT
from tests.fakes.test_secrets import VAULT_ADAPTER_SECRET_ID as SECRET_ID
from tests.fakes.test_secrets import VAULT_ADAPTER_SECRET_V1 as SECRET_V1
from tests.fakes.test_secrets import VAULT_ADAPTER_SECRET_V2 as SECRET_V2

from slsbot.api.account import VaultCredentials
from slsbot_runtime.domain.errors import AuthenticationError, CredentialsUnavailable
from slsbot_runtime.exchange.vault import VaultCredentialSource

pytestmark = pytest.mark.integration

POLICY = ["secret/data/slsbot/binance", "secret/metadata/slsbot/binance"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def vault(clock: Clock) -> Iterator[FakeVault]:
    with FakeVault(clock=clock) as server:
        server.write_policy("binance-read", POLICY)
        server.put_secret("secret", "slsbot/binance", {"apiKey": API_KEY_V1, "secret": SECRET_V1})
        yield server


def write_private(path: Path, text: str) -> None:
    """A credential file as it should be kept: readable by its owner only (the secret scan skips those)."""
    path.touch(mode=0o600)
    path.write_text(text)


def settings(vault: FakeVault, tmp_path: Path, method: str = "kubernetes", **extra: object) -> VaultCredentials:
    auth: dict[str, object] = {"method": method}
    if method == "kubernetes":
        write_private(tmp_path / "jwt", JWT)
        auth.update(role="binance", tokenPath=str(tmp_path / "jwt"))
    elif method == "approle":
        write_private(tmp_path / "secret-id", SECRET_ID + "\n")
        auth.update(roleId="role-binance", secretIdFile=str(tmp_path / "secret-id"))
    else:
        write_private(tmp_path / "token", str(extra.pop("token")))
        auth.update(tokenFile=str(tmp_path / "token"))
    return VaultCredentials.model_validate({"address": vault.url, "path": "slsbot/binance", "auth": auth, **extra})


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in (API_KEY_V1, SECRET_V1, API_KEY_V2, SECRET_V2, JWT, SECRET_ID, "hvs."):
            assert secret not in text, f"{secret[:6]}... in {text!r}"


@pytest.mark.parametrize("method", ["kubernetes", "approle", "token"])
def test_each_login_method_reads_the_newest_and_a_given_version(
    method: str, vault: FakeVault, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    vault.kubernetes_role("binance", jwts=[JWT], policies=["binance-read"])
    vault.approle("role-binance", secret_ids=[SECRET_ID], policies=["binance-read"])
    extra = {"token": vault.create_token(["binance-read"])} if method == "token" else {}
    source = VaultCredentialSource(settings(vault, tmp_path, method, **extra), account="binance", clock=clock)
    caplog.set_level(logging.DEBUG)

    newest = source.read()
    assert (newest.version, newest.credentials.api_key, newest.credentials.secret) == (1, API_KEY_V1, SECRET_V1)
    assert vault.put_secret("secret", "slsbot/binance", {"apiKey": API_KEY_V2, "secret": SECRET_V2}) == 2
    assert source.current_version() == 2
    assert source.read().credentials.api_key == API_KEY_V2
    assert source.read(1).credentials.api_key == API_KEY_V1
    no_secret_in(repr(source), repr(newest), repr(newest.credentials), caplog.text)
    logins = [r.path for r in vault.requests if r.path.endswith("/login")]
    assert logins == ([] if method == "token" else [f"/v1/auth/{method}/login"])  # one login for every read


def test_the_token_is_renewed_before_its_lease_ends_and_a_lost_token_logs_in_again(
    vault: FakeVault, tmp_path: Path, clock: Clock
) -> None:
    vault.kubernetes_role("binance", jwts=[JWT], policies=["binance-read"], ttl_s=300)
    source = VaultCredentialSource(settings(vault, tmp_path), account="binance", clock=clock)
    source.read()
    clock.now += 150  # half the lease left: nothing to do
    source.keep_alive()
    assert not [r for r in vault.requests if r.path == "/v1/auth/token/renew-self"]
    clock.now += 60  # less than a third left: renewed, the same token
    source.keep_alive()
    assert [r.path for r in vault.requests].count("/v1/auth/token/renew-self") == 1
    assert len(vault.live_tokens()) == 1
    clock.now += 250  # inside the renewed lease (300 s from the renewal)
    assert source.current_version() == 1
    assert [r.path for r in vault.requests].count("/v1/auth/kubernetes/login") == 1

    for token in vault.live_tokens():
        vault.revoke(token)  # revoked behind its back: the read is refused once, it logs in again and reads
    assert source.read().credentials.secret == SECRET_V1
    assert [r.path for r in vault.requests].count("/v1/auth/kubernetes/login") == 2

    clock.now += 250  # renewal due, but the token was revoked meanwhile: the renewal is refused, it logs in again
    for token in vault.live_tokens():
        vault.revoke(token)
    assert source.current_version() == 1
    assert [r.path for r in vault.requests].count("/v1/auth/kubernetes/login") == 3


def test_vault_errors_become_the_runtimes_and_name_the_fix_without_a_secret(
    vault: FakeVault, tmp_path: Path, clock: Clock
) -> None:
    vault.kubernetes_role("binance", jwts=[JWT], policies=["other"])  # logs in, but may not read the path
    source = VaultCredentialSource(settings(vault, tmp_path), account="binance", clock=clock)
    with pytest.raises(AuthenticationError) as denied:
        source.read()
    message = str(denied.value)
    assert "permission denied" in message and "secret/data/slsbot/binance" in message
    assert 'capabilities = ["read"]' in message and "role binance" in message

    vault.kubernetes_role("binance", jwts=["another-jwt"], policies=["binance-read"])  # the JWT is not accepted
    with pytest.raises(AuthenticationError, match=r"vault login \(kubernetes at auth/kubernetes.*invalid jwt"):
        VaultCredentialSource(settings(vault, tmp_path), account="binance", clock=clock).login()

    vault.kubernetes_role("binance", jwts=[JWT], policies=["binance-read"])
    missing = settings(vault, tmp_path).model_copy(update={"path": "slsbot/nothing"})
    vault.write_policy("binance-read", ["secret/*"])
    with pytest.raises(AuthenticationError, match=r"nothing there.*vault kv put -mount=secret slsbot/nothing"):
        VaultCredentialSource(missing, account="binance", clock=clock).read()

    vault.put_secret("secret", "slsbot/binance", {"apiKey": API_KEY_V2})  # version 2 lacks the secret
    with pytest.raises(AuthenticationError, match=r"version 2\) has no key 'secret'.*keys\.secret") as no_key:
        source.read()

    vault.fail_next(2)  # sealed: temporary, whatever the retry
    with pytest.raises(CredentialsUnavailable, match="Vault did not answer"):
        source.current_version()
    dead = settings(vault, tmp_path).model_copy(update={"address": "http://127.0.0.1:9"})
    with pytest.raises(CredentialsUnavailable, match="ConnectionError"):
        VaultCredentialSource(dead, account="binance", timeout_s=2).login()
    (tmp_path / "jwt").write_text("")
    with pytest.raises(AuthenticationError, match=r"account\.vault\.auth\.tokenPath: .* is empty"):
        VaultCredentialSource(_empty_jwt(vault, tmp_path), account="b").login()
    no_secret_in(message, str(no_key.value))


def _empty_jwt(vault: FakeVault, tmp_path: Path) -> VaultCredentials:
    auth = {"role": "binance", "tokenPath": str(tmp_path / "jwt")}
    return VaultCredentials.model_validate({"address": vault.url, "path": "slsbot/binance", "auth": auth})


@pytest.mark.skipif(
    not (os.environ.get("VAULT_ADDR") and os.environ.get("VAULT_TOKEN")),
    reason="needs a real Vault: set VAULT_ADDR and VAULT_TOKEN (a token that may write secret/ and create tokens)",
)
def test_against_a_real_vault(tmp_path: Path) -> None:
    admin = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
    path = f"slsbot-test/{uuid.uuid4().hex[:8]}"
    admin.secrets.kv.v2.create_or_update_secret(path, secret={"apiKey": API_KEY_V1, "secret": SECRET_V1})
    try:
        policy = f"slsbot-test-{uuid.uuid4().hex[:8]}"
        admin.sys.create_or_update_policy(
            policy,
            f'path "secret/data/{path}" {{ capabilities = ["read"] }}\n'
            f'path "secret/metadata/{path}" {{ capabilities = ["read"] }}\n',
        )
        token = admin.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
        write_private(tmp_path / "token", token)
        config = VaultCredentials.model_validate(
            {
                "address": os.environ["VAULT_ADDR"],
                "path": path,
                "auth": {"method": "token", "tokenFile": str(tmp_path / "token")},
            }
        )
        source = VaultCredentialSource(config, account="real")
        assert source.read().credentials.api_key == API_KEY_V1
        admin.secrets.kv.v2.create_or_update_secret(path, secret={"apiKey": API_KEY_V2, "secret": SECRET_V2})
        assert source.current_version() == 2
        assert source.read(2).credentials.secret == SECRET_V2
        denied = config.model_copy(update={"path": path + "-other"})
        with pytest.raises(AuthenticationError, match="permission denied"):
            VaultCredentialSource(denied, account="real").read()
        admin.sys.delete_policy(policy)
    finally:
        admin.secrets.kv.v2.delete_metadata_and_all_versions(path)
