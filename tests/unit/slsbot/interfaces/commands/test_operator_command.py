"""``slsbot operator``: its options, and a clear exit code 2 when it cannot start."""

from __future__ import annotations

import argparse

import pytest

from slsbot.interfaces.cli import main
from slsbot.interfaces.commands import operator


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    operator.add_arguments(parser)
    return parser.parse_args(argv)


CONTROL_KEY = "0123456789abcdef" * 4


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("SLSBOT_OPERATOR_CONTROL_KEY", CONTROL_KEY)


def test_namespaces_repeat_and_map_onto_the_settings():
    settings = operator.settings_from_arguments(parse("-n", "a", "--namespace", "b", "--verbose"))
    assert settings.namespaces == ["a", "b"] and settings.all_namespaces is False and settings.verbose is True


def test_all_namespaces_and_liveness():
    settings = operator.settings_from_arguments(parse("--all-namespaces", "--liveness", "http://0.0.0.0:8080/healthz"))
    assert settings.all_namespaces is True
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"


def test_namespace_and_all_namespaces_cannot_be_combined():
    with pytest.raises(SystemExit):
        parse("-n", "a", "-A")


def test_a_bad_namespace_exits_2_naming_it(capsys):
    assert main(["operator", "--namespace", "Not_A_Name"]) == 2
    assert "namespaces: Value error, 'Not_A_Name' is not a namespace name" in capsys.readouterr().err


def test_without_credentials_it_exits_2_saying_where_it_looked(tmp_path, capsys):
    missing = tmp_path / "no-such-kubeconfig"
    assert main(["operator", "--kubeconfig", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "cannot load Kubernetes credentials" in err and str(missing) in err


def test_without_the_control_key_it_exits_2_naming_the_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SLSBOT_OPERATOR_CONTROL_KEY")
    assert main(["operator", "--kubeconfig", str(tmp_path / "no-such-kubeconfig")]) == 2
    err = capsys.readouterr().err
    assert "SLSBOT_OPERATOR_CONTROL_KEY is not set" in err and "slsbot-operator-control-key" in err


def test_a_placeholder_or_short_control_key_is_refused_and_not_echoed(monkeypatch, capsys):
    for key in ("changeme", "short-but-random-9f3a"):
        monkeypatch.setenv("SLSBOT_OPERATOR_CONTROL_KEY", key)
        assert main(["operator"]) == 2
        err = capsys.readouterr().err
        assert "SLSBOT_OPERATOR_CONTROL_KEY" in err and key not in err
