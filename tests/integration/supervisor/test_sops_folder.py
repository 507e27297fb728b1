"""sops in slsbot up's folder, with the real sops binary (skipped, saying why, when it is absent) and the tests' age
identity: a folder with an encrypted Secret loads; a wrong key, a missing binary and a slow one are refused naming
the file; and a runtime gets the Secret as a credentials folder (0700, 0600 files) that exists while it runs and is
updated in place when the Secret changes, gone once it stops, with no age key in its environment."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest
from tests.fakes import test_secrets
from tests.fakes.sops_files import age_environment, encrypt, require_sops

from slsbot.adapters.control_tokens import ControlKey
from slsbot.adapters.declared_secrets import DeclaredSecrets
from slsbot.adapters.manifest_folder import load_manifest_folder
from slsbot.adapters.processes import LocalProcessBackend
from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.sops import SopsCli
from slsbot.adapters.store import create_store_engine
from slsbot.api import TradingAccount, parse_resource
from slsbot.domain.errors import InvalidSpecError
from slsbot.domain.manifests import DeclaredSecret
from slsbot.domain.plan import Action, ActionKind, RuntimeState
from slsbot.domain.resolve import ResolvedStrategy, resolve_strategy
from slsbot.domain.runtime_spec import desired_runtime

pytestmark = pytest.mark.integration

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
SECRETS = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: binance-keys
  labels: {{slsbot.io/credentials: "true"}}
stringData:
  apiKey: {KEY}
  secret: {SECRET}
---
apiVersion: v1
kind: Secret
metadata: {{name: slack}}
stringData:
  url: {test_secrets.SOPS_WEBHOOK_URL}
"""


def encrypted_folder(tmp_path: Path, binary: str) -> Path:
    folder = tmp_path / "bots"
    folder.mkdir()
    (folder / "account.yaml").write_text(ACCOUNT)
    (folder / "secrets.yaml").write_bytes(encrypt(binary, SECRETS, home=tmp_path))
    return folder


def test_an_encrypted_folder_loads_with_the_age_key_and_is_refused_without_it(tmp_path: Path) -> None:
    binary = require_sops()
    folder = encrypted_folder(tmp_path, binary)
    on_disk = (folder / "secrets.yaml").read_text()
    assert KEY not in on_disk and SECRET not in on_disk and "sops:" in on_disk

    plan = load_manifest_folder(folder, sops=SopsCli((binary,), environ=age_environment(tmp_path)))
    assert [r.name for r in plan.resources] == ["binance-testnet"]
    assert {s.name: s.data for s in plan.secrets} == {
        "binance-keys": {"apiKey": KEY.encode(), "secret": SECRET.encode()},
        "slack": {"url": test_secrets.SOPS_WEBHOOK_URL.encode()},
    }
    assert sorted(p.name for p in folder.iterdir()) == ["account.yaml", "secrets.yaml"]  # nothing written in clear

    wrong = SopsCli((binary,), environ=age_environment(tmp_path, test_secrets.OTHER_AGE_SECRET_KEY))
    with pytest.raises(InvalidSpecError) as caught:
        load_manifest_folder(folder, sops=wrong)
    message = str(caught.value)
    assert (
        f"{folder / 'secrets.yaml'}: sops could not decrypt it (exit code 128): Failed to get the data key" in message
    )
    assert "SOPS_AGE_KEY_FILE or SOPS_AGE_KEY" in message
    assert KEY not in message and SECRET not in message


def test_a_missing_or_slow_sops_is_refused_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "bots"
    folder.mkdir()
    (folder / "account.yaml").write_text(ACCOUNT)
    (folder / "secrets.yaml").write_text("kind: Secret\nsops: {version: 3.11.0, mac: x}\n")
    with pytest.raises(InvalidSpecError) as caught:
        load_manifest_folder(folder, sops=SopsCli((str(tmp_path / "no-sops"),)))
    assert f"{folder / 'secrets.yaml'}: encrypted with sops, but the sops command" in str(caught.value)
    assert "install sops or decrypt it first" in str(caught.value)

    hangs = SopsCli((sys.executable, "-c", "import sys, time; sys.stdin.read(); time.sleep(60)"), timeout=0.5)
    asked = time.monotonic()
    with pytest.raises(InvalidSpecError, match=r"sops did not decrypt it within 0\.5 s"):
        load_manifest_folder(folder, sops=hangs)
    assert time.monotonic() - asked < 10  # killed at its timeout, not waited for

    fails = SopsCli((sys.executable, "-c", "import sys; sys.stderr.write('MAC mismatch. File has X'); sys.exit(1)"))
    with pytest.raises(
        InvalidSpecError, match=r"secrets.yaml: sops could not decrypt it \(exit code 1\): MAC mismatch"
    ):
        load_manifest_folder(folder, sops=fails)


STAND_IN = (
    "import os, sys, time, yaml\n"
    "config = yaml.safe_load(open(sys.argv[-1]))\n"
    "print('credentialsDir', config['account'].get('credentialsDir'), flush=True)\n"
    "time.sleep(600)\n"
)


def resolved(account: TradingAccount) -> ResolvedStrategy:
    strategy = parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": "btc"},
            "spec": {
                "accountRef": {"name": account.name},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            },
        }
    )
    result = resolve_strategy(strategy, {account.name: account}, {})
    assert isinstance(result, ResolvedStrategy)
    return result


def until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def test_a_runtime_gets_the_secret_as_a_credentials_folder_while_it_runs(tmp_path: Path) -> None:
    binary = require_sops()
    folder = encrypted_folder(tmp_path, binary)
    plan = load_manifest_folder(folder, sops=SopsCli((binary,), environ=age_environment(tmp_path)))
    secrets = DeclaredSecrets(plan.secrets)
    [account] = plan.resources
    engine = create_store_engine(tmp_path / "supervisor.db")
    client = RuntimeHttpClient(timeout=0.2)
    backend = LocalProcessBackend(
        engine=engine,
        client=client,
        state_dir=tmp_path / "state",
        runtime_command=[sys.executable, "-c", STAND_IN],
        stop_timeout=5.0,
        control_key=ControlKey(test_secrets.SOPS_TEST_CONTROL_KEY, source="test"),
        environ={"PATH": os.environ.get("PATH", ""), **age_environment(tmp_path)},
        secrets=secrets,
    )
    credentials = (tmp_path / "state" / "default" / "btc" / "credentials").resolve()
    try:
        config = backend.render_config(resolved(account))
        assert config.account.credentials_dir == str(credentials)
        assert KEY not in config.model_dump_json() and SECRET not in config.model_dump_json()
        backend.execute(
            "default",
            "btc",
            Action(ActionKind.CREATE, "Create", "test", desired=desired_runtime(resolved(account), config)),
        )
        pid = backend.observe("default", "btc").pid
        assert pid is not None
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
        assert {p.name: (stat.S_IMODE(p.stat().st_mode), p.read_text()) for p in credentials.iterdir()} == {
            "apiKey": (0o600, KEY),
            "secret": (0o600, SECRET),
        }
        log = tmp_path / "state" / "default" / "btc" / "runtime.log"
        until(lambda: f"credentialsDir {credentials}" in log.read_text())
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"SOPS_AGE_KEY" not in environ and test_secrets.AGE_SECRET_KEY.encode() not in environ

        rotated = DeclaredSecret("default", "binance-keys", {"apiKey": b"rotated-key", "secret": SECRET.encode()})
        secrets.replace([rotated])  # the Secret changed in git while the runtime runs
        assert backend.render_config(resolved(account)) == config  # no restart...
        assert (credentials / "apiKey").read_bytes() == b"rotated-key"  # ...its folder is updated in place
        assert stat.S_IMODE((credentials / "apiKey").stat().st_mode) == 0o600

        backend.execute("default", "btc", Action(ActionKind.DELETE, "Deleting", "test"))
        until(lambda: backend.observe("default", "btc").state is RuntimeState.ABSENT)
        assert not credentials.exists()  # gone with the runtime
    finally:
        backend.stop_all()
        client.close()
        engine.dispose()
    assert not credentials.exists()
