"""What a Strategy may run: allowed images, credentials Secrets that are labelled and not the operator's, and a runtime
service account that an administrator labelled for slsbot runtimes."""

from __future__ import annotations

import pytest

from slsbot.api import TradingAccount
from slsbot.domain.admission import (
    ImageAllowList,
    SecretSeen,
    ServiceAccountSeen,
    as_account_problems,
    check_credentials_secret,
    check_image,
    check_runtime_service_account,
    image_repository,
    runtime_service_account,
)
from slsbot.domain.resolve import INVALID_SPEC, WAITING

PROJECT = ImageAllowList(("ghcr.io/slsbot/runtime",))


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("ghcr.io/slsbot/runtime:0.1.0", "ghcr.io/slsbot/runtime"),
        ("ghcr.io/slsbot/runtime@sha256:" + "a" * 64, "ghcr.io/slsbot/runtime"),
        ("ghcr.io/slsbot/runtime:0.1.0@sha256:" + "a" * 64, "ghcr.io/slsbot/runtime"),
        ("ghcr.io/slsbot/runtime", "ghcr.io/slsbot/runtime"),
        ("localhost:5000/slsbot/runtime:dev", "localhost:5000/slsbot/runtime"),
        ("localhost:5000/runtime", "localhost:5000/runtime"),
        ("busybox", "busybox"),
    ],
)
def test_the_repository_of_an_image_leaves_out_its_tag_and_digest(image, repository):
    assert image_repository(image) == repository


@pytest.mark.parametrize(
    "image",
    ["ghcr.io/slsbot/runtime:0.1.0", "ghcr.io/slsbot/runtime:latest", "ghcr.io/slsbot/runtime@sha256:" + "b" * 64],
)
def test_the_projects_repository_is_allowed_with_any_tag_or_digest(image):
    assert PROJECT.allows(image) and check_image(image, PROJECT) == []


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/slsbot/runtime-evil:0.1.0",  # a longer name is another repository
        "ghcr.io/slsbot/runtime/sub:1",
        "ghcr.io/slsbot:runtime",
        "docker.io/attacker/miner:latest",
        "slsbot/runtime:0.1.0",  # no registry is assumed
    ],
)
def test_other_images_are_invalid_naming_the_field_and_the_setting(image):
    (problem,) = check_image(image, PROJECT)
    assert problem.reason == INVALID_SPEC and problem.field == "spec.runtime.image"
    assert repr(image) in problem.message
    assert "ghcr.io/slsbot/runtime" in problem.message and "SLSBOT_OPERATOR_ALLOWED_IMAGES" in problem.message


def test_an_entry_ending_in_a_slash_allows_every_repository_under_it():
    allowed = ImageAllowList(("registry.example.com/trading/", "ghcr.io/slsbot/runtime"))
    assert allowed.allows("registry.example.com/trading/bot:2")
    assert allowed.allows("registry.example.com/trading/team/bot@sha256:" + "c" * 64)
    assert not allowed.allows("registry.example.com/trading-other/bot:2")
    assert not allowed.allows("registry.example.com/bot:2")


def _account(keys: str | None = "binance-keys") -> TradingAccount:
    spec: dict = {"exchange": "binance", "mode": "paper"}
    if keys is not None:
        spec = {"exchange": "binance", "mode": "live", "credentials": {"secretRef": {"name": keys}}}
    return TradingAccount.model_validate({"metadata": {"name": "live", "namespace": "trading"}, "spec": spec})


def _own(name: str) -> bool:
    return name.endswith("-control")


LABELLED = SecretSeen(exists=True, labels={"slsbot.io/credentials": "true"})


def test_a_labelled_secret_and_an_account_without_one_pass():
    assert check_credentials_secret(_account(), LABELLED, operators_own=_own) == []
    assert check_credentials_secret(_account(None), None, operators_own=_own) == []


def test_the_operators_own_secret_is_invalid_whatever_its_labels():
    (problem,) = check_credentials_secret(_account("slsbot-runtime-eth-control"), LABELLED, operators_own=_own)
    assert problem.reason == INVALID_SPEC and problem.field == "spec.credentials.secretRef.name"
    assert "'slsbot-runtime-eth-control' is one of the slsbot operator's own Secrets" in problem.message


def test_a_missing_secret_waits_saying_how_to_create_and_label_it():
    (problem,) = check_credentials_secret(_account(), SecretSeen(exists=False), operators_own=_own)
    assert problem.reason == WAITING and problem.field == "spec.credentials.secretRef.name"
    assert "'binance-keys' does not exist in namespace 'trading'" in problem.message
    assert "kubectl -n trading label secret binance-keys slsbot.io/credentials=true" in problem.message


@pytest.mark.parametrize("labels", [{}, {"slsbot.io/credentials": "false"}, {"app": "other-bot"}])
def test_an_unlabelled_secret_waits_saying_the_command_that_labels_it(labels):
    seen = SecretSeen(exists=True, labels=labels)
    (problem,) = check_credentials_secret(_account(), seen, operators_own=_own)
    assert problem.reason == WAITING and problem.field == "spec.credentials.secretRef.name"
    assert "not labelled for slsbot" in problem.message
    assert problem.message.endswith("kubectl -n trading label secret binance-keys slsbot.io/credentials=true")


def test_a_strategy_reports_its_accounts_problems_on_its_account_reference():
    problems = check_credentials_secret(_account("slsbot-runtime-eth-control"), None, operators_own=_own)
    (problem,) = as_account_problems(_account(), problems)
    assert problem.reason == INVALID_SPEC and problem.field == "spec.accountRef.name"
    assert str(problem).startswith("spec.accountRef.name: TradingAccount 'live': spec.credentials.secretRef.name: ")


def _vault_account(auth: dict | None) -> TradingAccount:
    vault: dict = {"path": "trading/binance"}
    if auth is not None:
        vault["auth"] = auth
    spec = {"exchange": "binance", "mode": "live", "credentials": {"vault": vault}}
    return TradingAccount.model_validate({"metadata": {"name": "live", "namespace": "trading"}, "spec": spec})


RUNS_AS_BOT = _vault_account({"role": "binance", "serviceAccountName": "binance-runtime"})
SA_FIELD = "spec.credentials.vault.auth.serviceAccountName"
SA_COMMAND = "kubectl -n trading label serviceaccount binance-runtime slsbot.io/runtime-service-account=true"


def test_only_a_named_service_account_is_the_runtimes():
    assert runtime_service_account(RUNS_AS_BOT) == "binance-runtime"
    assert runtime_service_account(_vault_account({"role": "binance"})) is None
    assert runtime_service_account(_vault_account(None)) is None
    assert runtime_service_account(_vault_account({"method": "token", "tokenFile": "/run/vault-token"})) is None
    assert runtime_service_account(_account()) is None and runtime_service_account(_account(None)) is None


def test_a_labelled_service_account_and_an_account_that_names_none_pass():
    labelled = ServiceAccountSeen(exists=True, labels={"slsbot.io/runtime-service-account": "true", "app": "x"})
    assert check_runtime_service_account(RUNS_AS_BOT, labelled) == []
    # The namespace's default service account: nothing is named, nothing is looked up or refused.
    assert check_runtime_service_account(_vault_account({"role": "binance"}), None) == []
    assert check_runtime_service_account(_account(), None) == []


@pytest.mark.parametrize("seen", [None, ServiceAccountSeen(exists=False)])
def test_a_missing_service_account_waits_saying_how_to_label_it(seen):
    (problem,) = check_runtime_service_account(RUNS_AS_BOT, seen)
    assert problem.reason == WAITING and problem.field == SA_FIELD
    assert "ServiceAccount 'binance-runtime' does not exist in namespace 'trading'" in problem.message
    assert problem.message.endswith(SA_COMMAND)


@pytest.mark.parametrize(
    "labels",
    [
        {},
        {"slsbot.io/runtime-service-account": "false"},
        {"slsbot.io/credentials": "true"},  # the credentials label says nothing about running pods as it
        {"app.kubernetes.io/name": "cluster-admin-robot"},
    ],
)
def test_an_unlabelled_service_account_waits_saying_why_and_the_command(labels):
    (problem,) = check_runtime_service_account(RUNS_AS_BOT, ServiceAccountSeen(exists=True, labels=labels))
    assert problem.reason == WAITING and problem.field == SA_FIELD
    assert "ServiceAccount 'binance-runtime' is not labelled for slsbot runtimes" in problem.message
    assert "with that account's rights" in problem.message
    assert problem.message.endswith(SA_COMMAND)
    (on_strategy,) = as_account_problems(RUNS_AS_BOT, [problem])
    assert str(on_strategy).startswith(f"spec.accountRef.name: TradingAccount 'live': {SA_FIELD}: ")


@pytest.mark.parametrize("name", ["slsbot-operator", "slsbot-backup"])
@pytest.mark.parametrize(
    "seen", [None, ServiceAccountSeen(exists=True, labels={"slsbot.io/runtime-service-account": "true"})]
)
def test_slsbots_own_service_accounts_are_refused_by_name_even_labelled(name, seen):
    account = _vault_account({"role": "binance", "serviceAccountName": name})
    (problem,) = check_runtime_service_account(account, seen)
    assert problem.reason == INVALID_SPEC and problem.field == SA_FIELD
    assert f"ServiceAccount {name!r} is one of slsbot's own" in problem.message
    assert "slsbot.io/runtime-service-account=true" in problem.message
