"""Whole objects: parse_resource picks the kind's model, durations parse, and errors name the field."""

from __future__ import annotations

from datetime import timedelta

import pydantic
import pytest

from slsbot.api import KINDS, TradingAccount, parse_duration, parse_resource


def _account(**changes) -> dict:
    document = {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": "paper-binance", "namespace": "slsbot", "labels": {"team": "quant"}},
        "spec": {"exchange": "binance"},
    }
    document.update(changes)
    return document


def test_parse_resource_returns_the_kinds_model():
    account = parse_resource(_account())
    assert isinstance(account, TradingAccount)
    assert (account.name, account.namespace) == ("paper-binance", "slsbot")
    assert account.metadata.labels == {"team": "quant"}


def test_metadata_defaults_to_the_default_namespace():
    assert parse_resource(_account(metadata={"name": "a"})).namespace == "default"


def test_an_unknown_kind_is_rejected_listing_the_kinds():
    with pytest.raises(ValueError, match=r"kind: 'Bot' is not a slsbot kind; use one of BackupSchedule, Experiment"):
        parse_resource(_account(kind="Bot"))
    with pytest.raises(ValueError, match=r"kind: Incident objects are written by the control plane only"):
        parse_resource(_account(kind="Incident"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"apiVersion": "slsbot.io/v2"}, "apiVersion"),
        ({"metadata": {"name": "Paper_Binance"}}, "metadata.name"),
        ({"spec": {}}, "spec.exchange"),
        ({"spc": {}}, "spc"),
    ],
)
def test_bad_objects_are_rejected_naming_the_field(change, field):
    with pytest.raises(pydantic.ValidationError) as caught:
        parse_resource(_account(**change))
    assert field in str(caught.value)


def test_each_kind_knows_its_crd_facts():
    assert set(KINDS) == {"TradingAccount", "Strategy", "Experiment", "RiskPolicy", "Incident", "BackupSchedule"}
    plurals = {kind: cls.kind_info.plural for kind, cls in KINDS.items()}
    assert plurals == {
        "TradingAccount": "tradingaccounts",
        "Strategy": "strategies",
        "Experiment": "experiments",
        "RiskPolicy": "riskpolicies",
        "Incident": "incidents",
        "BackupSchedule": "backupschedules",
    }
    short_names = [name for cls in KINDS.values() for name in cls.kind_info.short_names]
    assert len(short_names) == len(set(short_names))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("250ms", timedelta(milliseconds=250)),
    ],
)
def test_durations_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "1x", "h1", "1.5h", "-1h"])
def test_bad_durations_say_how_to_write_one(text):
    with pytest.raises(ValueError, match="write it like 30s, 15m, 1h30m or 2d"):
        parse_duration(text)
