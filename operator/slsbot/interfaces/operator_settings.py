"""Settings of ``slsbot operator``: read once when the command starts, then passed down; never read at import.

Each field comes from a command-line option, else from the environment (``SLSBOT_OPERATOR_<FIELD>``, and the
standard ``KUBECONFIG``), else its default. A bad value stops the command with exit code 2 and names the field.
"""

from __future__ import annotations

import json
import re
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, AwareDatetime, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from slsbot.adapters.control_tokens import ControlKey, ControlKeyError, ControlKeys
from slsbot.adapters.kubernetes import BackendOptions, RuntimePodOptions, StateVolumeKind
from slsbot.adapters.kubernetes.backend import DEFAULT_RUNTIME_URL
from slsbot.adapters.kubernetes.manifests import (
    NAMESPACE_NAME_LABEL,
    OPERATOR_PODS,
    PROMETHEUS_PODS,
    PeerSelector,
    RuntimeNetworkOptions,
)
from slsbot.api.base import DNS_LABEL
from slsbot.api.strategy import RuntimeSettings
from slsbot.domain.admission import ImageAllowList, image_repository
from slsbot.settings import AdminApiSettings

CONTROL_KEY_ENVIRONMENT = "SLSBOT_OPERATOR_CONTROL_KEY"
PREVIOUS_CONTROL_KEY_ENVIRONMENT = "SLSBOT_OPERATOR_CONTROL_KEY_PREVIOUS"
GRACE_ENVIRONMENT = "SLSBOT_OPERATOR_CONTROL_KEY_GRACE_UNTIL"
PROJECT_IMAGE = image_repository(RuntimeSettings.model_fields["image"].default)  # ghcr.io/slsbot/runtime
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
Labels = Annotated[dict[str, str], NoDecode]  # from the environment: k=v,k2=v2 or a JSON object


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SLSBOT_OPERATOR_", extra="ignore", populate_by_name=True, env_nested_delimiter="__"
    )

    # Which objects to serve.
    namespaces: list[str] = Field(default_factory=list, description="Serve only these namespaces.")
    all_namespaces: bool = Field(default=False, description="Serve every namespace (the default with none named).")
    # How to reach the cluster.
    kubeconfig: str | None = Field(
        default=None,
        validation_alias=AliasChoices("kubeconfig", "SLSBOT_OPERATOR_KUBECONFIG", "KUBECONFIG"),
        description="kubeconfig file(s); the pod's service account in a cluster when unset.",
    )
    context: str | None = Field(default=None, description="kubeconfig context; its current one when unset.")
    api_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # How to reach the runtimes.
    runtime_url: str = Field(
        default=DEFAULT_RUNTIME_URL,
        description="Base URL of a runtime's control endpoints; fields {service} {namespace} {port} {strategy}.",
    )
    runtime_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    control_key: SecretStr | None = Field(
        default=None,
        description="Master key each runtime's control token is derived from (SLSBOT_OPERATOR_CONTROL_KEY); "
        "required to start.",
    )
    control_key_previous: SecretStr | None = Field(
        default=None,
        description="The control key a rotation replaced (SLSBOT_OPERATOR_CONTROL_KEY_PREVIOUS): the runtimes accept "
        "tokens derived from it until control_key_grace_until, and the operator falls back to it on a 401 meanwhile.",
    )
    control_key_grace_until: AwareDatetime | None = Field(
        default=None,
        description="End of the control key rotation's grace period, ISO 8601 with a zone "
        "(SLSBOT_OPERATOR_CONTROL_KEY_GRACE_UNTIL); required with control_key_previous.",
    )
    vault_address: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        validation_alias=AliasChoices("vault_address", "SLSBOT_OPERATOR_VAULT_ADDRESS", "SLSBOT_VAULT_ADDR"),
        description="Vault's URL for TradingAccounts whose credentials.vault names no address (e.g. "
        "https://vault.vault.svc:8200); the runtimes log in there with their service account.",
    )
    # What each runtime pod gets.
    state_volume: StateVolumeKind = StateVolumeKind.PERSISTENT_VOLUME_CLAIM
    state_storage: str = Field(default="1Gi", pattern=r"^[0-9]+(Ki|Mi|Gi|Ti)$")
    storage_class: str | None = None
    default_data_dir: str | None = Field(
        default="/app/data/market/binance-spot-1h-2024",
        description="Recorded candles for replay strategies without marketData.dataDir (inside the image).",
    )
    backup_image: str = Field(
        default=RuntimeSettings.model_fields["image"].default,
        min_length=1,
        description="Image of the BackupSchedules' CronJobs (slsbot backup run; it must carry restic, as the "
        "project's image does).",
    )
    # What a Strategy may run, and who may reach it (slsbot.domain.admission, RuntimeNetworkOptions).
    allowed_images: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [PROJECT_IMAGE],
        description="Repositories runtime images may come from, any tag or digest; comma-separated in the "
        "environment. An entry ending in / allows every repository under it.",
    )
    operator_namespace: str = Field(
        default=OPERATOR_PODS.namespace_labels[NAMESPACE_NAME_LABEL],
        description="The operator's own namespace, whose operator pods may reach the runtimes.",
    )
    operator_pod_labels: Labels = Field(default_factory=lambda: dict(OPERATOR_PODS.pod_labels))
    prometheus_namespace_labels: Labels = Field(default_factory=lambda: dict(PROMETHEUS_PODS.namespace_labels))
    prometheus_pod_labels: Labels = Field(default_factory=lambda: dict(PROMETHEUS_PODS.pod_labels))
    # The operator itself.
    verbose: bool = False
    liveness_endpoint: str | None = Field(default=None, description="e.g. http://0.0.0.0:8080/healthz")
    metrics_port: int | None = Field(
        default=9090,
        ge=0,
        le=65535,
        description="Serve the control plane's Prometheus metrics (healing, incidents) at /metrics on this port; "
        "0 picks a free one, off (SLSBOT_OPERATOR_METRICS_PORT=off) serves none.",
    )
    metrics_address: str = Field(default="0.0.0.0", description="The address the metrics port listens on.")
    check_exchanges: bool = Field(default=True, description="Check TradingAccount.spec.exchange against ccxt.")
    event_repeat_seconds: float = Field(default=300.0, ge=0, description="Hold back an identical event this long.")
    validation_resync_seconds: float = Field(default=60.0, gt=0, description="Revalidate accounts and policies.")
    max_requeue_seconds: float = Field(default=300.0, gt=0, description="Look at every Strategy at least this often.")
    # Tuning Experiments (docs/concepts/experiments.md).
    study_storage: SecretStr | None = Field(
        default=None,
        description="The Optuna study storage every tuning worker pod and the operator reach: a SQLAlchemy URL, "
        "e.g. postgresql://user:password@postgres.slsbot-system.svc/optuna (SLSBOT_OPERATOR_STUDY_STORAGE). "
        "Unset: tuning Experiments are refused with a condition naming this setting.",
    )
    tuning_dir: Path = Field(
        default=Path("/tmp/slsbot-tuning"),  # noqa: S108 - the operator pod's own emptyDir
        description="Where the operator runs each tuning run's finalize step and keeps its result and report.",
    )
    incidents_interval_seconds: float = Field(
        default=15.0, gt=0, le=3600, description="How often each namespace's incident rules run (and notifications go)."
    )
    runbook_base_url: str = Field(
        default="", max_length=1024, description="Prefix of runbook links in notifications; unset: runbooks/<file>.md."
    )
    notify_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Timeout of one delivery to a notification receiver."
    )
    experiment_interval_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="How often each Experiment is looked at while it runs."
    )
    # The admin API over the cluster's objects (docs/how-to/admin-api-on-a-cluster.md).
    admin_api_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve the admin API (the same routes as slsbot up's) on this port, authenticated by TokenReview "
        "and authorised by SubjectAccessReview; unset or off: not served (deploy/operator sets 8443).",
    )
    admin_api_address: str = Field(default="0.0.0.0", description="The address the admin API listens on.")
    admin_api_tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate the admin API serves HTTPS with (with admin_api_tls_key); unset: HTTP.",
    )
    admin_api_tls_key: Path | None = Field(default=None, description="The certificate's PEM private key.")
    admin_api_protection: AdminApiSettings = Field(
        default_factory=AdminApiSettings,
        description="Rate limit, lockout, CORS and request size of the admin API (docs/concepts/admin-api-security.md),"
        " e.g. SLSBOT_OPERATOR_ADMIN_API_PROTECTION__RATE_LIMIT_PER_SECOND=20.",
    )
    admin_api_review_ttl_seconds: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="How long a TokenReview's and a SubjectAccessReview's answer is kept, per token: a page of "
        "requests costs one review, and a revoked token or role stops working within this time.",
    )
    state_dir: Path | None = Field(
        default=None,
        description="The operator's state folder: the admin API's audit trail and refused-request counts (SQLite), "
        "post-mortem bundles. Unset: a new temporary folder each start; mount a volume here to keep them.",
    )
    drain_wait_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="How long deleting a Strategy waits for its runtime to answer and finish draining before it is "
        "deleted anyway, with a DeletedWithoutDrain warning.",
    )

    @field_validator("metrics_port", "admin_api_port", mode="before")
    @classmethod
    def _metrics_off(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("", "off", "none") else value

    @field_validator("namespaces")
    @classmethod
    def _namespace_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(DNS_LABEL, name):
                raise ValueError(f"{name!r} is not a namespace name (lowercase letters, digits and '-')")
        return value

    @field_validator("allowed_images", mode="before")
    @classmethod
    def _image_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_images")
    @classmethod
    def _image_repositories(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"no repository listed, so no Strategy could run; the project's image is {PROJECT_IMAGE}")
        for entry in value:
            if not entry.endswith("/") and image_repository(entry) != entry:
                raise ValueError(
                    f"{entry!r} names a tag or digest; list repositories ({image_repository(entry)}): any tag or "
                    "digest of one is allowed"
                )
        return value

    @field_validator("operator_namespace")
    @classmethod
    def _operator_namespace(cls, value: str) -> str:
        if not re.fullmatch(DNS_LABEL, value):
            raise ValueError(f"{value!r} is not a namespace name (lowercase letters, digits and '-')")
        return value

    @field_validator("operator_pod_labels", "prometheus_namespace_labels", "prometheus_pod_labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                return json.loads(text)
            pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError(f"{value!r} is not a list of labels: write key=value,key2=value2")
            return {key.strip(): val.strip() for key, val in pairs}
        return value

    @field_validator("operator_pod_labels", "prometheus_namespace_labels", "prometheus_pod_labels")
    @classmethod
    def _label_syntax(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            if not _LABEL_KEY.fullmatch(key) or len(key.rpartition("/")[2]) > 63:
                raise ValueError(f"{key!r} is not a label key")
            if not _LABEL_VALUE.fullmatch(val) or len(val) > 63:
                raise ValueError(f"{val!r} (of {key!r}) is not a label value")
        return value

    @field_validator("runtime_url")
    @classmethod
    def _runtime_url(cls, value: str) -> str:
        try:
            value.format(service="s", namespace="n", port=1, strategy="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{value!r} is not a URL template: use only {{service}}, {{namespace}}, {{port}} and {{strategy}}"
            ) from exc
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value

    @field_validator("control_key", "control_key_previous")
    @classmethod
    def _usable_control_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None:
            source = CONTROL_KEY_ENVIRONMENT if info.field_name == "control_key" else PREVIOUS_CONTROL_KEY_ENVIRONMENT
            try:
                ControlKey(value.get_secret_value(), source=source)
            except ControlKeyError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> OperatorSettings:
        if (self.admin_api_tls_cert is None) != (self.admin_api_tls_key is None):
            raise ValueError("admin_api_tls_cert and admin_api_tls_key: set both (HTTPS) or neither (HTTP)")
        return self

    @model_validator(mode="after")
    def _previous_key_with_its_grace(self) -> OperatorSettings:
        if (self.control_key_previous is None) != (self.control_key_grace_until is None):
            raise ValueError(
                f"{PREVIOUS_CONTROL_KEY_ENVIRONMENT} and {GRACE_ENVIRONMENT} go together: the previous key is "
                "accepted until the end of the grace period (ISO 8601 with a zone, e.g. 2026-12-06T12:00:00Z)"
            )
        if (
            self.control_key is not None
            and self.control_key_previous is not None
            and self.control_key.get_secret_value().strip() == self.control_key_previous.get_secret_value().strip()
        ):
            raise ValueError(f"{PREVIOUS_CONTROL_KEY_ENVIRONMENT} must differ from {CONTROL_KEY_ENVIRONMENT}")
        return self

    @model_validator(mode="after")
    def _one_scope(self) -> OperatorSettings:
        if self.all_namespaces and self.namespaces:
            raise ValueError("namespaces: pass either --namespace NS (any number of times) or --all-namespaces")
        if not self.namespaces:
            self.all_namespaces = True
        return self

    @classmethod
    def from_arguments(cls, **overrides: Any) -> OperatorSettings:
        """Environment and defaults, with the command line's values (the ones not None) on top."""
        return cls(**{key: value for key, value in overrides.items() if value not in (None, [], False)})

    def runtime_control_keys(self) -> ControlKeys:
        """The master key and, during a rotation's grace, the previous one; ControlKeyError naming
        SLSBOT_OPERATOR_CONTROL_KEY when it is not set."""
        current = self.runtime_control_key()
        if self.control_key_previous is None:
            return ControlKeys(current)
        previous = ControlKey(self.control_key_previous.get_secret_value(), source=PREVIOUS_CONTROL_KEY_ENVIRONMENT)
        return ControlKeys(current, previous, self.control_key_grace_until)

    def runtime_control_key(self) -> ControlKey:
        """The master key; ControlKeyError naming SLSBOT_OPERATOR_CONTROL_KEY when it is not set."""
        if self.control_key is None:
            raise ControlKeyError(
                f"{CONTROL_KEY_ENVIRONMENT} is not set: the operator derives each runtime's control token from it. "
                "Create it once: kubectl -n slsbot-system create secret generic slsbot-operator-control-key "
                '--from-literal=key="$(openssl rand -hex 32)" (deploy/operator reads it from there)'
            )
        return ControlKey(self.control_key.get_secret_value(), source=CONTROL_KEY_ENVIRONMENT)

    def backend_options(self) -> BackendOptions:
        return BackendOptions(
            runtime_url=self.runtime_url,
            default_data_dir=self.default_data_dir,
            vault_address=self.vault_address,
            pod=RuntimePodOptions(
                state_volume=self.state_volume,
                state_storage=self.state_storage,
                storage_class=self.storage_class,
                network=RuntimeNetworkOptions(
                    operator=PeerSelector({NAMESPACE_NAME_LABEL: self.operator_namespace}, self.operator_pod_labels),
                    prometheus=PeerSelector(self.prometheus_namespace_labels, self.prometheus_pod_labels),
                ),
            ),
        )

    def operator_state_dir(self) -> Path:
        """``state_dir``, created if missing; a new temporary folder when unset."""
        if self.state_dir is None:
            return Path(tempfile.mkdtemp(prefix="slsbot-operator-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return self.state_dir

    def image_allow_list(self) -> ImageAllowList:
        return ImageAllowList(tuple(self.allowed_images))

    @property
    def event_repeat(self) -> timedelta:
        return timedelta(seconds=self.event_repeat_seconds)
