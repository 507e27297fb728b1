"""What the control plane lets a Strategy run: which container images, which Secrets as exchange credentials, and
which service account its pod runs as.

Whoever may create a Strategy and a TradingAccount in a namespace would otherwise run any image there and mount any
Secret of the namespace into it, including another bot's control-token Secret, whose token pauses, shuts down or
flattens that bot. So, before anything is created:

* ``spec.runtime.image`` must come from an allowed repository (``ImageAllowList``; the operator's setting
  ``SLSBOT_OPERATOR_ALLOWED_IMAGES``, by default the project's own image), any tag or digest of it;
* ``spec.credentials.secretRef.name`` must not be one of the operator's own Secrets, and the Secret must carry the
  label ``slsbot.io/credentials: "true"``: whoever labels a Secret so says it holds exchange credentials for slsbot;
* ``spec.credentials.vault.auth.serviceAccountName`` must name a ServiceAccount of the account's namespace that carries
  the label ``slsbot.io/runtime-service-account: "true"``. The operator creates the runtime's pod with its own rights,
  so without this whoever may edit a TradingAccount could run a pod as any service account of the namespace (one
  bound to a powerful Role included) and act with its token; whoever labels a ServiceAccount so says slsbot runtimes
  may run as it. The operator's own (``slsbot-operator``, ``slsbot-backup``: they hold its rights and the backup
  jobs') are refused by name, labelled or not. No name (the namespace's default service account) is not checked.

Pure: the adapters look the Secret and the ServiceAccount up (their labels, never a Secret's data) and pass in what
they saw, as ``SecretSeen`` and ``ServiceAccountSeen``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from slsbot.api import TradingAccount
from slsbot.domain.resolve import INVALID_SPEC, WAITING, Problem

CREDENTIALS_LABEL = "slsbot.io/credentials"
CREDENTIALS_LABEL_VALUE = "true"
RUNTIME_SERVICE_ACCOUNT_LABEL = "slsbot.io/runtime-service-account"
RUNTIME_SERVICE_ACCOUNT_LABEL_VALUE = "true"
IMAGE_FIELD = "spec.runtime.image"
CREDENTIALS_REF_FIELD = "spec.credentials.secretRef.name"
SERVICE_ACCOUNT_FIELD = "spec.credentials.vault.auth.serviceAccountName"
#: The ServiceAccounts slsbot itself runs as: the operator (the chart's and deploy/operator's) and, in each namespace,
#: the backup and report jobs (``adapters.kubernetes.backup_manifests``). A runtime never runs as one of them.
OPERATOR_SERVICE_ACCOUNT = "slsbot-operator"
BACKUP_SERVICE_ACCOUNT = "slsbot-backup"
OPERATORS_OWN_SERVICE_ACCOUNTS = frozenset({OPERATOR_SERVICE_ACCOUNT, BACKUP_SERVICE_ACCOUNT})


def image_repository(image: str) -> str:
    """``registry/path/name`` of an image reference, without its ``:tag`` and ``@digest``."""
    repository = image.split("@", 1)[0]
    head, slash, last = repository.rpartition("/")
    return f"{head}{slash}{last.split(':', 1)[0]}"


@dataclass(frozen=True, slots=True)
class ImageAllowList:
    """Repositories a runtime image may come from, as written (no registry is assumed: ``docker.io/library/x`` and
    ``x`` differ). ``ghcr.io/slsbot/runtime`` allows that repository with any tag or digest, not
    ``ghcr.io/slsbot/runtime-other``; an entry ending in ``/`` allows every repository under it."""

    repositories: tuple[str, ...]

    def allows(self, image: str) -> bool:
        repository = image_repository(image)
        return any(
            repository.startswith(entry) if entry.endswith("/") else repository == entry for entry in self.repositories
        )


def check_image(image: str, allowed: ImageAllowList) -> list[Problem]:
    if allowed.allows(image):
        return []
    return [
        Problem(
            INVALID_SPEC,
            IMAGE_FIELD,
            f"{image!r} is not an allowed runtime image: this operator runs images from "
            f"{', '.join(allowed.repositories)} (any tag or digest); use one of those, or ask the operator's "
            "administrator to add the repository to SLSBOT_OPERATOR_ALLOWED_IMAGES",
        )
    ]


def label_command(namespace: str, name: str) -> str:
    return f"kubectl -n {namespace} label secret {name} {CREDENTIALS_LABEL}={CREDENTIALS_LABEL_VALUE}"


@dataclass(frozen=True, slots=True)
class SecretSeen:
    """What the control plane saw of a Secret: whether it exists, and its labels. Never its data."""

    exists: bool
    labels: Mapping[str, str] = field(default_factory=dict)


def check_credentials_secret(
    account: TradingAccount, seen: SecretSeen | None, *, operators_own: Callable[[str], bool]
) -> list[Problem]:
    """Problems of the account's ``credentials.secretRef``, each naming ``spec.credentials.secretRef.name``.

    ``seen`` is None when the Secret was not looked up (the account names none, or it is the operator's own).
    An operator's own Secret is InvalidSpec (the account must change); a missing or unlabelled Secret is
    WaitingForDependency (the Secret must change, and the reconciler looks again).
    """
    credentials = account.spec.credentials
    if credentials is None or credentials.secret_ref is None:
        return []
    name, namespace = credentials.secret_ref.name, account.namespace
    if operators_own(name):
        return [
            Problem(
                INVALID_SPEC,
                CREDENTIALS_REF_FIELD,
                f"Secret {name!r} is one of the slsbot operator's own Secrets (a runtime's control token or the "
                "operator's key) and can never be used as credentials; name a Secret that holds this account's "
                "exchange API key",
            )
        ]
    if seen is None or not seen.exists:
        return [
            Problem(
                WAITING,
                CREDENTIALS_REF_FIELD,
                f"Secret {name!r} does not exist in namespace {namespace!r}; create it with the exchange API key "
                f"and label it: {label_command(namespace, name)}",
            )
        ]
    if seen.labels.get(CREDENTIALS_LABEL) != CREDENTIALS_LABEL_VALUE:
        return [
            Problem(
                WAITING,
                CREDENTIALS_REF_FIELD,
                f"Secret {name!r} is not labelled for slsbot; if it holds this account's exchange credentials, "
                f"run: {label_command(namespace, name)}",
            )
        ]
    return []


def runtime_service_account(account: TradingAccount) -> str | None:
    """The service account the account's runtime pods run as, when the account names one
    (``credentials.vault.auth.serviceAccountName``, which only the Kubernetes login method takes); None otherwise."""
    credentials = account.spec.credentials
    vault = credentials.vault if credentials is not None else None
    auth = vault.auth if vault is not None else None
    return auth.service_account_name if auth is not None else None


def service_account_label_command(namespace: str, name: str) -> str:
    return (
        f"kubectl -n {namespace} label serviceaccount {name} "
        f"{RUNTIME_SERVICE_ACCOUNT_LABEL}={RUNTIME_SERVICE_ACCOUNT_LABEL_VALUE}"
    )


@dataclass(frozen=True, slots=True)
class ServiceAccountSeen:
    """What the control plane saw of a ServiceAccount: whether it exists, and its labels."""

    exists: bool
    labels: Mapping[str, str] = field(default_factory=dict)


def check_runtime_service_account(account: TradingAccount, seen: ServiceAccountSeen | None) -> list[Problem]:
    """Problems of the service account the account's runtime pods would run as, each naming
    ``spec.credentials.vault.auth.serviceAccountName``: a missing or unlabelled ServiceAccount is WaitingForDependency
    (an administrator creates or labels it, and the reconciler looks again); one of slsbot's own is InvalidSpec (the
    account must change). ``seen`` is None when it was not looked up. An account that names none runs its pods as the
    namespace's default service account: nothing to check."""
    name = runtime_service_account(account)
    if name is None:
        return []
    if name in OPERATORS_OWN_SERVICE_ACCOUNTS:
        return [
            Problem(
                INVALID_SPEC,
                SERVICE_ACCOUNT_FIELD,
                f"ServiceAccount {name!r} is one of slsbot's own (the operator's, or the backup and report jobs') "
                "and a runtime never runs as it, labelled or not; name a ServiceAccount created for this account's "
                "runtimes (bound to the Vault role) and labelled "
                f"{RUNTIME_SERVICE_ACCOUNT_LABEL}={RUNTIME_SERVICE_ACCOUNT_LABEL_VALUE}",
            )
        ]
    namespace = account.namespace
    if seen is None or not seen.exists:
        return [
            Problem(
                WAITING,
                SERVICE_ACCOUNT_FIELD,
                f"ServiceAccount {name!r} does not exist in namespace {namespace!r}; an administrator creates it "
                "(bound to the Vault role), and labels it as one slsbot runtimes may run as: "
                f"{service_account_label_command(namespace, name)}",
            )
        ]
    if seen.labels.get(RUNTIME_SERVICE_ACCOUNT_LABEL) != RUNTIME_SERVICE_ACCOUNT_LABEL_VALUE:
        return [
            Problem(
                WAITING,
                SERVICE_ACCOUNT_FIELD,
                f"ServiceAccount {name!r} is not labelled for slsbot runtimes: the operator would run the runtime pod "
                "as it, with that account's rights; if an administrator chose it for slsbot runtimes, they run: "
                f"{service_account_label_command(namespace, name)}",
            )
        ]
    return []


def as_account_problems(account: TradingAccount, problems: Iterable[Problem]) -> list[Problem]:
    """The account's problems as a Strategy that uses it reports them: on ``spec.accountRef.name``, same reason."""
    return [
        Problem(p.reason, "spec.accountRef.name", f"TradingAccount {account.name!r}: {p.field}: {p.message}")
        for p in problems
    ]
