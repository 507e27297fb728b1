"""OperatorSettings: defaults, the environment, the command line on top, and errors that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from slsbot.adapters.kubernetes import StateVolumeKind
from slsbot.api.strategy import RuntimeSettings
from slsbot.interfaces.operator_settings import OperatorSettings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in (
        "KUBECONFIG",
        "SLSBOT_OPERATOR_KUBECONFIG",
        "SLSBOT_OPERATOR_RUNTIME_URL",
        "SLSBOT_OPERATOR_STATE_VOLUME",
        "SLSBOT_OPERATOR_CONTROL_KEY",
        "SLSBOT_OPERATOR_CONTROL_KEY_PREVIOUS",
        "SLSBOT_OPERATOR_CONTROL_KEY_GRACE_UNTIL",
        "SLSBOT_OPERATOR_ALLOWED_IMAGES",
        "SLSBOT_OPERATOR_OPERATOR_NAMESPACE",
        "SLSBOT_OPERATOR_OPERATOR_POD_LABELS",
        "SLSBOT_OPERATOR_PROMETHEUS_NAMESPACE_LABELS",
        "SLSBOT_OPERATOR_PROMETHEUS_POD_LABELS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_with_no_namespace_named_it_serves_all_of_them():
    settings = OperatorSettings.from_arguments()
    assert settings.all_namespaces is True and settings.namespaces == []
    assert settings.runtime_url == "http://{service}.{namespace}.svc:{port}"
    assert settings.state_volume is StateVolumeKind.PERSISTENT_VOLUME_CLAIM


def test_named_namespaces_and_all_namespaces_exclude_each_other():
    assert OperatorSettings.from_arguments(namespaces=["a", "b"]).all_namespaces is False
    with pytest.raises(ValidationError, match="either --namespace NS"):
        OperatorSettings(namespaces=["a"], all_namespaces=True)


def test_a_bad_namespace_name_is_refused_naming_it():
    with pytest.raises(ValidationError, match="'Bad_NS' is not a namespace name"):
        OperatorSettings.from_arguments(namespaces=["Bad_NS"])


def test_kubeconfig_honours_the_standard_variable_and_the_command_line_wins(monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/home/me/.kube/kind")
    assert OperatorSettings.from_arguments().kubeconfig == "/home/me/.kube/kind"
    assert OperatorSettings.from_arguments(kubeconfig="/tmp/other").kubeconfig == "/tmp/other"


def test_environment_variables_set_the_rest(monkeypatch):
    monkeypatch.setenv("SLSBOT_OPERATOR_RUNTIME_URL", "http://127.0.0.1:{port}")
    monkeypatch.setenv("SLSBOT_OPERATOR_STATE_VOLUME", "emptyDir")
    settings = OperatorSettings.from_arguments()
    assert settings.runtime_url == "http://127.0.0.1:{port}"
    options = settings.backend_options()
    assert options.pod.state_volume is StateVolumeKind.EMPTY_DIR
    assert options.runtime_url == "http://127.0.0.1:{port}"


@pytest.mark.parametrize("url", ["http://{host}:{port}", "ftp://{service}", "http://{service"])
def test_a_runtime_url_template_with_unknown_fields_is_refused(url):
    with pytest.raises(ValidationError, match="runtime_url"):
        OperatorSettings(runtime_url=url)


def test_a_bad_storage_size_is_refused():
    with pytest.raises(ValidationError, match="state_storage"):
        OperatorSettings(state_storage="lots")


def test_the_control_key_comes_from_its_variable_and_never_shows(monkeypatch):
    from slsbot.adapters.control_tokens import ControlKeyError

    with pytest.raises(ControlKeyError, match="SLSBOT_OPERATOR_CONTROL_KEY is not set"):
        OperatorSettings.from_arguments().runtime_control_key()
    key = "9f" * 24
    monkeypatch.setenv("SLSBOT_OPERATOR_CONTROL_KEY", key)
    settings = OperatorSettings.from_arguments()
    assert key not in repr(settings) and key not in repr(settings.runtime_control_key())
    token = settings.runtime_control_key().token_for("trading", "btc")
    import hashlib
    import hmac

    assert token == hmac.new(key.encode(), b"trading/btc", hashlib.sha256).hexdigest()


def test_a_rotated_control_key_is_the_previous_one_until_its_grace_ends(monkeypatch):
    from datetime import UTC, datetime, timedelta

    new, old = "9f" * 24, "8e" * 24
    monkeypatch.setenv("SLSBOT_OPERATOR_CONTROL_KEY", new)
    monkeypatch.setenv("SLSBOT_OPERATOR_CONTROL_KEY_PREVIOUS", old)
    with pytest.raises(ValidationError) as caught:  # a previous key without the end of its grace
        OperatorSettings.from_arguments()
    said = " ".join(error["msg"] for error in caught.value.errors(include_input=False))
    assert "SLSBOT_OPERATOR_CONTROL_KEY_GRACE_UNTIL" in said and old not in said and new not in said
    monkeypatch.setenv("SLSBOT_OPERATOR_CONTROL_KEY_GRACE_UNTIL", "2026-12-06T12:00:00Z")
    keys = OperatorSettings.from_arguments().runtime_control_keys()
    grace_ends = datetime(2026, 12, 6, 12, tzinfo=UTC)
    assert keys.previous_until == grace_ends and old not in repr(keys) and new not in repr(keys)
    before = keys.tokens_for("trading", "btc", now=grace_ends - timedelta(seconds=1))
    assert len(before) == 2 and keys.tokens_for("trading", "btc", now=grace_ends) == before[:1]
    monkeypatch.setenv("SLSBOT_OPERATOR_CONTROL_KEY_PREVIOUS", new)
    with pytest.raises(ValidationError, match="must differ"):
        OperatorSettings.from_arguments()
    monkeypatch.setenv("SLSBOT_OPERATOR_CONTROL_KEY_PREVIOUS", "short")
    with pytest.raises(ValidationError, match="SLSBOT_OPERATOR_CONTROL_KEY_PREVIOUS: shorter than 32"):
        OperatorSettings.from_arguments()


def test_only_the_projects_image_is_allowed_by_default():
    allowed = OperatorSettings.from_arguments().image_allow_list()
    assert allowed.repositories == ("ghcr.io/slsbot/runtime",)
    assert allowed.allows(RuntimeSettings().image)  # a Strategy's default image
    assert not allowed.allows("docker.io/someone/miner:1")


def test_allowed_images_come_comma_separated_from_the_environment(monkeypatch):
    monkeypatch.setenv("SLSBOT_OPERATOR_ALLOWED_IMAGES", "ghcr.io/slsbot/runtime, registry.example.com/trading/")
    allowed = OperatorSettings.from_arguments().image_allow_list()
    assert allowed.repositories == ("ghcr.io/slsbot/runtime", "registry.example.com/trading/")
    assert allowed.allows("registry.example.com/trading/bot:7")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ghcr.io/slsbot/runtime:0.1.0", "names a tag or digest; list repositories (ghcr.io/slsbot/runtime)"),
        ("ghcr.io/slsbot/runtime@sha256:" + "a" * 64, "names a tag or digest"),
        (" , ", "no repository listed"),
    ],
)
def test_a_bad_allow_list_is_refused_naming_the_field(monkeypatch, value, message):
    monkeypatch.setenv("SLSBOT_OPERATOR_ALLOWED_IMAGES", value)
    with pytest.raises(ValidationError, match="allowed_images") as caught:
        OperatorSettings.from_arguments()
    assert message in str(caught.value)


def test_the_network_policy_admits_the_operators_namespace_and_prometheus_as_configured(monkeypatch):
    network = OperatorSettings.from_arguments().backend_options().pod.network
    assert network.operator.namespace_labels == {"kubernetes.io/metadata.name": "slsbot-system"}
    assert network.operator.pod_labels == {"app.kubernetes.io/name": "slsbot-operator"}
    assert network.prometheus.namespace_labels == {"kubernetes.io/metadata.name": "monitoring"}
    assert network.prometheus.pod_labels == {"app.kubernetes.io/name": "prometheus"}
    monkeypatch.setenv("SLSBOT_OPERATOR_OPERATOR_NAMESPACE", "ops")
    monkeypatch.setenv("SLSBOT_OPERATOR_PROMETHEUS_NAMESPACE_LABELS", "team=observability,tier=platform")
    monkeypatch.setenv("SLSBOT_OPERATOR_PROMETHEUS_POD_LABELS", '{"app.kubernetes.io/name": "vmagent"}')
    network = OperatorSettings.from_arguments().backend_options().pod.network
    assert network.operator.namespace_labels == {"kubernetes.io/metadata.name": "ops"}
    assert network.prometheus.namespace_labels == {"team": "observability", "tier": "platform"}
    assert network.prometheus.pod_labels == {"app.kubernetes.io/name": "vmagent"}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SLSBOT_OPERATOR_PROMETHEUS_POD_LABELS", "app", "is not a list of labels: write key=value"),
        ("SLSBOT_OPERATOR_PROMETHEUS_POD_LABELS", "a b=c", "is not a label key"),
        ("SLSBOT_OPERATOR_OPERATOR_POD_LABELS", "app=not ok", "is not a label value"),
        ("SLSBOT_OPERATOR_OPERATOR_NAMESPACE", "Ops_NS", "is not a namespace name"),
    ],
)
def test_bad_network_settings_are_refused_naming_the_field(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    field = variable.removeprefix("SLSBOT_OPERATOR_").lower()
    with pytest.raises(ValidationError, match=field) as caught:
        OperatorSettings.from_arguments()
    assert message in str(caught.value)


def test_the_study_storage_comes_from_the_environment_and_never_shows(monkeypatch):
    url = "postgresql://optuna:pw-9d8f7a6s5@postgres.slsbot-system.svc/optuna"
    monkeypatch.setenv("SLSBOT_OPERATOR_STUDY_STORAGE", url)
    monkeypatch.setenv("SLSBOT_OPERATOR_EXPERIMENT_INTERVAL_SECONDS", "3")
    settings = OperatorSettings()
    assert settings.study_storage is not None and settings.study_storage.get_secret_value() == url
    assert settings.experiment_interval_seconds == 3.0
    assert "pw-9d8f7a6s5" not in repr(settings) and "pw-9d8f7a6s5" not in str(settings.model_dump())


def test_without_a_study_storage_tuning_is_refused_naming_the_setting():
    from slsbot.adapters.kubernetes.tuning import KubernetesTuningRunner
    from slsbot.adapters.tuning_processes import TuningProcesses

    settings = OperatorSettings()
    runner = KubernetesTuningRunner(
        None,  # type: ignore[arg-type] - no call reaches the API before the storage is set
        TuningProcesses(settings.tuning_dir),
        storage_url=settings.study_storage,
        default_data_dir=settings.default_data_dir,
    )
    problem = runner.storage_problem()
    assert problem is not None and problem.startswith("SLSBOT_OPERATOR_STUDY_STORAGE is not set")
