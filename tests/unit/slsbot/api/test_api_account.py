"""TradingAccount: credentials are exactly one of vault or secretRef, and only paper mode may go without."""

from __future__ import annotations

import pydantic
import pytest

from slsbot.api import TradingAccountSpec

VAULT = {"vault": {"path": "slsbot/binance"}}
SECRET = {"secretRef": {"name": "binance-keys"}}


def test_paper_needs_no_credentials_and_gets_paper_defaults():
    spec = TradingAccountSpec.model_validate({"exchange": "binance"})
    assert spec.mode == "paper" and spec.credentials is None
    assert spec.paper.starting_balance == 10_000 and spec.paper.quote_currency == "USDT"


@pytest.mark.parametrize("mode", ["live", "testnet"])
def test_live_and_testnet_need_credentials(mode):
    with pytest.raises(pydantic.ValidationError, match=rf"credentials: mode {mode} needs credentials\.vault"):
        TradingAccountSpec.model_validate({"exchange": "binance", "mode": mode})


@pytest.mark.parametrize("credentials", [VAULT, SECRET])
def test_live_with_one_credential_source_is_accepted(credentials):
    spec = TradingAccountSpec.model_validate({"exchange": "binance", "mode": "live", "credentials": credentials})
    assert spec.credentials is not None
    assert spec.to_wire()["credentials"].keys() == credentials.keys()


@pytest.mark.parametrize("credentials", [{}, {**VAULT, **SECRET}])
def test_credentials_must_be_exactly_one_of_vault_or_secret_ref(credentials):
    with pytest.raises(pydantic.ValidationError) as caught:
        TradingAccountSpec.model_validate({"exchange": "binance", "mode": "live", "credentials": credentials})
    assert "credentials.vault or credentials.secretRef" in str(caught.value)


def test_credential_key_names_default_and_inline_secrets_are_unknown_fields():
    spec = TradingAccountSpec.model_validate({"exchange": "binance", "mode": "live", "credentials": VAULT})
    assert spec.credentials.vault.keys.api_key == "apiKey"
    with pytest.raises(pydantic.ValidationError) as caught:
        TradingAccountSpec.model_validate(
            {"exchange": "binance", "credentials": {"vault": {"path": "p", "apiSecret": "hunter2"}}}
        )
    assert "credentials.vault.apiSecret" in str(caught.value)
    assert "extra" in str(caught.value).lower()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"exchange": "Binance"}, "exchange"),
        ({"mode": "yolo"}, "mode"),
        ({"paper": {"startingBalance": 0}}, "paper.startingBalance"),
        ({"paper": {"feeRate": 0.5}}, "paper.feeRate"),
        ({"riskPolicyRef": {"name": "Not_A_Name"}}, "riskPolicyRef.name"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(change, field):
    with pytest.raises(pydantic.ValidationError) as caught:
        TradingAccountSpec.model_validate({"exchange": "binance", **change})
    assert field in str(caught.value)


def test_a_rejected_assignment_leaves_the_spec_as_it_was():
    spec = TradingAccountSpec.model_validate({"exchange": "binance"})
    with pytest.raises(pydantic.ValidationError):
        spec.mode = "live"  # live without credentials
    assert spec.mode == "paper"


def vault(**fields) -> dict:
    return {"exchange": "binance", "mode": "live", "credentials": {"vault": {"path": "slsbot/binance", **fields}}}


def test_vault_defaults_kubernetes_auth_check_every_30s_settle_60s_and_no_window():
    spec = TradingAccountSpec.model_validate(vault(auth={"role": "binance"}))
    settings = spec.credentials.vault
    assert settings.address is None and settings.auth.method == "kubernetes"
    assert settings.auth.token_path == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert settings.auth.mount_point == "kubernetes"
    rotation = settings.rotation
    assert (rotation.check_every_s, rotation.settle_timeout_s, rotation.window) == (30, 60, None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"auth": {"method": "approle", "roleId": "r"}}, "auth.secretIdFile: method approle needs it"),
        ({"auth": {"method": "token"}}, "auth.tokenFile: method token needs it"),
        ({"auth": {"method": "token", "tokenFile": "/t", "role": "x"}}, "auth.role: not used by method token"),
        ({"auth": {"tokenFile": "/t"}}, "auth.tokenFile: not used by method kubernetes"),
        ({"auth": {"method": "token", "tokenFile": "relative/path"}}, "tokenFile"),
        ({"auth": {"method": "approle", "roleId": "r", "secretId": "s3cr3t"}}, "secretId"),  # never inline
        ({"rotation": {"window": "0 3 * *"}}, "rotation.window: '0 3 * *' has 4 fields"),
        ({"rotation": {"window": "0 25 * * *"}}, "rotation.window: '0 25 * * *' is not a cron schedule"),
        ({"rotation": {"checkEvery": "0s"}}, "rotation.checkEvery: '0s' is outside 1s..86400s"),
        ({"rotation": {"settleTimeout": "2h"}}, "rotation.settleTimeout: '2h' is outside 1s..3600s"),
        ({"address": "vault:8200"}, "address"),
    ],
)
def test_vault_settings_are_refused_naming_the_field(fields, message):
    with pytest.raises(pydantic.ValidationError) as caught:
        TradingAccountSpec.model_validate(vault(**fields))
    assert message in str(caught.value)
