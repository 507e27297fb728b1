"""The reconcile service refuses to run what the operator does not allow: an image outside the allow-list,
credentials that are the operator's own Secrets or that are not labelled for slsbot, and a runtime service account
that is not labelled for slsbot runtimes. The service is under test; the backend, the Secrets and the
ServiceAccounts are in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from slsbot.api import ConditionStatus, Strategy, TradingAccount
from slsbot.domain.admission import ImageAllowList, SecretSeen, ServiceAccountSeen
from slsbot.domain.conditions import get_condition
from slsbot.domain.errors import BackendUnavailable
from slsbot.domain.plan import ActionKind, ObservedRuntime, RuntimeState
from slsbot.domain.runtime_spec import build_runtime_config
from slsbot.services.reconcile import Catalog, reconcile_account, reconcile_strategy

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ALLOWED = ImageAllowList(("ghcr.io/slsbot/runtime",))


@dataclass
class MemoryBackend:
    executed: list[ActionKind] = field(default_factory=list)

    def render_config(self, resolved):
        return build_runtime_config(resolved, state_path="/tmp/x.db", port=8000)

    def observe(self, namespace, name):
        return ObservedRuntime(state=RuntimeState.ABSENT)

    def execute(self, namespace, name, action):
        self.executed.append(action.kind)


@dataclass
class MemorySecrets:
    """The CredentialSecrets port over a dict of labels per (namespace, name); counts its lookups."""

    labels: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    lookups: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False

    def operators_own(self, name: str) -> bool:
        return name == "slsbot-operator-control-key" or name.endswith("-control")

    def seen(self, namespace: str, name: str) -> SecretSeen:
        self.lookups.append((namespace, name))
        if self.down:
            raise BackendUnavailable("GET /api/v1/namespaces/trading/secrets: no answer")
        found = self.labels.get((namespace, name))
        return SecretSeen(exists=found is not None, labels=found or {})


def _account(secret: str | None) -> TradingAccount:
    spec: dict = {"exchange": "binance", "mode": "paper"}
    if secret is not None:
        spec = {"exchange": "binance", "mode": "live", "credentials": {"secretRef": {"name": secret}}}
    return TradingAccount.model_validate({"metadata": {"name": "live", "namespace": "trading"}, "spec": spec})


def _strategy(image: str = "ghcr.io/slsbot/runtime:0.1.0") -> Strategy:
    return Strategy.model_validate(
        {
            "metadata": {"name": "btc", "namespace": "trading"},
            "spec": {
                "accountRef": {"name": "live"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
                "runtime": {"image": image},
            },
        }
    )


def _reconcile(strategy: Strategy, account: TradingAccount, secrets: MemorySecrets, backend: MemoryBackend):
    catalog = Catalog(allowed_images=ALLOWED, credential_secrets=secrets)
    return reconcile_strategy(
        strategy, accounts={"live": account}, policies={}, backend=backend, now=NOW, catalog=catalog
    )


def _ready(result):
    return get_condition(result.status.conditions, "Ready")


def test_an_image_outside_the_allow_list_is_invalid_and_nothing_is_created():
    backend = MemoryBackend()
    result = _reconcile(_strategy("docker.io/someone/miner:1"), _account(None), MemorySecrets(), backend)
    assert backend.executed == []
    ready = _ready(result)
    assert ready.status == ConditionStatus.FALSE and ready.reason == "InvalidSpec"
    assert ready.message.startswith("spec.runtime.image: 'docker.io/someone/miner:1' is not an allowed runtime image")
    assert result.status.phase == "Failed"
    assert result.events[0].type == "Warning" and result.events[0].reason == "InvalidSpec"


def test_an_allowed_image_with_labelled_credentials_is_created():
    backend = MemoryBackend()
    secrets = MemorySecrets({("trading", "keys"): {"slsbot.io/credentials": "true"}})
    _reconcile(_strategy(), _account("keys"), secrets, backend)
    assert backend.executed == [ActionKind.CREATE]
    assert secrets.lookups == [("trading", "keys")]


def test_an_unlabelled_secret_holds_the_strategy_back_until_it_is_labelled():
    backend = MemoryBackend()
    secrets = MemorySecrets({("trading", "other-bots-keys"): {"app": "other-bot"}})
    waiting = _reconcile(_strategy(), _account("other-bots-keys"), secrets, backend)
    assert backend.executed == []
    ready = _ready(waiting)
    assert ready.reason == "WaitingForDependency" and waiting.requeue_after is not None
    assert ready.message.startswith(
        "spec.accountRef.name: TradingAccount 'live': spec.credentials.secretRef.name: Secret 'other-bots-keys' is "
        "not labelled for slsbot"
    )
    assert "kubectl -n trading label secret other-bots-keys slsbot.io/credentials=true" in ready.message

    secrets.labels[("trading", "other-bots-keys")]["slsbot.io/credentials"] = "true"
    _reconcile(_strategy(), _account("other-bots-keys"), secrets, backend)
    assert backend.executed == [ActionKind.CREATE]


def test_the_operators_own_secret_is_invalid_on_the_account_and_its_strategies_and_is_never_looked_up():
    backend, secrets = MemoryBackend(), MemorySecrets()
    stolen = _account("slsbot-runtime-eth-control")
    strategy = _reconcile(_strategy(), stolen, secrets, backend)
    assert backend.executed == []
    assert _ready(strategy).reason == "InvalidSpec"
    assert "spec.accountRef.name: TradingAccount 'live': spec.credentials.secretRef.name: " in _ready(strategy).message
    account = reconcile_account(stolen, now=NOW, catalog=Catalog(credential_secrets=secrets))
    assert account.status.phase == "Invalid"
    assert _ready(account).reason == "InvalidSpec"
    assert _ready(account).message.startswith("spec.credentials.secretRef.name: Secret 'slsbot-runtime-eth-control'")
    assert secrets.lookups == []


def test_an_account_whose_secret_is_missing_is_pending_naming_the_field():
    result = reconcile_account(_account("keys"), now=NOW, catalog=Catalog(credential_secrets=MemorySecrets()))
    assert result.status.phase == "Pending"
    assert _ready(result).reason == "WaitingForDependency"
    assert _ready(result).message.startswith("spec.credentials.secretRef.name: Secret 'keys' does not exist")


def test_an_api_that_cannot_say_is_a_retry_not_a_verdict():
    backend = MemoryBackend()
    result = _reconcile(_strategy(), _account("keys"), MemorySecrets(down=True), backend)
    assert backend.executed == []
    assert result.events[0].reason == "BackendUnavailable" and result.requeue_after is not None


def test_without_the_checks_in_the_catalog_nothing_is_refused():
    backend = MemoryBackend()
    reconcile_strategy(
        _strategy("docker.io/someone/miner:1"), accounts={"live": _account("x")}, policies={}, backend=backend, now=NOW
    )
    assert backend.executed == [ActionKind.CREATE]  # slsbot up runs no images and mounts no Secrets


@dataclass
class MemoryServiceAccounts:
    """The RuntimeServiceAccounts port over a dict of labels per (namespace, name); counts its lookups."""

    labels: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    lookups: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False

    def seen(self, namespace: str, name: str) -> ServiceAccountSeen:
        self.lookups.append((namespace, name))
        if self.down:
            raise BackendUnavailable("GET /api/v1/namespaces/trading/serviceaccounts: no answer")
        found = self.labels.get((namespace, name))
        return ServiceAccountSeen(exists=found is not None, labels=found or {})


def _vault_account(service_account: str | None) -> TradingAccount:
    auth = {"role": "binance"} | ({"serviceAccountName": service_account} if service_account else {})
    spec = {"exchange": "binance", "mode": "live", "credentials": {"vault": {"path": "trading/binance", "auth": auth}}}
    return TradingAccount.model_validate({"metadata": {"name": "live", "namespace": "trading"}, "spec": spec})


def _reconcile_as(account: TradingAccount, accounts: MemoryServiceAccounts, backend: MemoryBackend):
    catalog = Catalog(allowed_images=ALLOWED, credential_secrets=MemorySecrets(), runtime_service_accounts=accounts)
    return reconcile_strategy(
        _strategy(), accounts={"live": account}, policies={}, backend=backend, now=NOW, catalog=catalog
    )


SA_LABEL = "slsbot.io/runtime-service-account"


def test_an_unlabelled_runtime_service_account_holds_the_strategy_back_until_it_is_labelled():
    backend = MemoryBackend()
    accounts = MemoryServiceAccounts({("trading", "ci-deployer"): {"app": "ci"}})
    waiting = _reconcile_as(_vault_account("ci-deployer"), accounts, backend)
    assert backend.executed == []
    ready = _ready(waiting)
    assert ready.reason == "WaitingForDependency" and waiting.requeue_after is not None
    assert ready.message.startswith(
        "spec.accountRef.name: TradingAccount 'live': spec.credentials.vault.auth.serviceAccountName: "
        "ServiceAccount 'ci-deployer' is not labelled for slsbot runtimes"
    )
    assert f"kubectl -n trading label serviceaccount ci-deployer {SA_LABEL}=true" in ready.message
    assert accounts.lookups == [("trading", "ci-deployer")]

    accounts.labels[("trading", "ci-deployer")][SA_LABEL] = "true"
    _reconcile_as(_vault_account("ci-deployer"), accounts, backend)
    assert backend.executed == [ActionKind.CREATE]


def test_the_default_service_account_is_not_looked_up():
    backend, accounts = MemoryBackend(), MemoryServiceAccounts()
    _reconcile_as(_vault_account(None), accounts, backend)
    assert backend.executed == [ActionKind.CREATE] and accounts.lookups == []


def test_an_account_whose_service_account_is_missing_is_pending_naming_the_field():
    catalog = Catalog(runtime_service_accounts=MemoryServiceAccounts())
    result = reconcile_account(_vault_account("binance-runtime"), now=NOW, catalog=catalog)
    assert result.status.phase == "Pending"
    assert _ready(result).reason == "WaitingForDependency"
    assert _ready(result).message.startswith(
        "spec.credentials.vault.auth.serviceAccountName: ServiceAccount 'binance-runtime' does not exist"
    )
    assert result.events and result.events[0].reason == "WaitingForDependency"


def test_a_service_account_the_api_cannot_say_about_is_a_retry_not_a_verdict():
    backend = MemoryBackend()
    result = _reconcile_as(_vault_account("binance-runtime"), MemoryServiceAccounts(down=True), backend)
    assert backend.executed == []
    assert result.events[0].reason == "BackendUnavailable" and result.requeue_after is not None


def test_without_the_service_account_check_in_the_catalog_a_named_account_runs():
    backend = MemoryBackend()
    reconcile_strategy(_strategy(), accounts={"live": _vault_account("any")}, policies={}, backend=backend, now=NOW)
    assert backend.executed == [ActionKind.CREATE]  # slsbot up runs no pods


@dataclass
class RunningBackend(MemoryBackend):
    """A runtime that already runs, on an older config."""

    def observe(self, namespace, name):
        return ObservedRuntime(state=RuntimeState.READY, config_hash="an-older-config", workload="slsbot-runtime-btc")


def test_an_edit_to_an_unlabelled_service_account_leaves_a_running_runtime_as_it_runs():
    # The escalation path: an account whose runtime runs is edited to name a powerful ServiceAccount.
    backend = RunningBackend()
    accounts = MemoryServiceAccounts({("trading", "binance-runtime"): {SA_LABEL: "true"}, ("trading", "deployer"): {}})
    result = _reconcile_as(_vault_account("deployer"), accounts, backend)
    assert backend.executed == []  # no rollout onto the new pod spec, no restart, no stop
    assert _ready(result).reason == "RunningLastGoodConfig" and result.requeue_after is not None
    assert "ServiceAccount 'deployer' is not labelled for slsbot runtimes" in _ready(result).message
    assert result.events[0].type == "Warning" and result.events[0].reason == "WaitingForDependency"
