"""Objects the Experiment controllers own under ``slsbot up`` (``SqlOwnedObjects``, the local ``OwnedObjects``):
the manifest folder's sync leaves them alone while their owner is there and removes them with it; a spec a
controller replaced (an A/B promotion) stands until the file itself changes. On a real SQLite file per test."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from slsbot.adapters.store import create_store_engine, get_stored_object, sync_desired_objects
from slsbot.adapters.supervisor_store import SqlOwnedObjects
from slsbot.api import parse_resource
from slsbot.domain.errors import ConflictError, NotFoundError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def strategy(name: str, *, fast: int = 10) -> Any:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": name},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": fast}}]},
            },
        }
    )


def experiment(name: str = "tune", target: str = "btc") -> Any:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": name},
            "spec": {
                "type": "tuning",
                "strategyRef": {"name": target},
                "searchSpace": [{"name": "sma.fast", "type": "int", "low": 5, "high": 30}],
            },
        }
    )


def ab(name: str, baseline: str, candidate: str) -> Any:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": name},
            "spec": {
                "type": "ab",
                "strategyRef": {"name": baseline},
                "variants": [
                    {"name": "baseline", "strategyRef": {"name": baseline}},
                    {"name": "candidate", "strategyRef": {"name": candidate}},
                ],
            },
        }
    )


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    return create_store_engine(tmp_path / "store.db")


def sync(engine: Any, resources: list[Any]) -> dict[str, list[str]]:
    with Session(engine) as session:
        return sync_desired_objects(session, resources=resources, now=NOW)


def row(engine: Any, kind: str, name: str) -> Any:
    with Session(engine) as session:
        return get_stored_object(session, kind=kind, namespace="default", name=name)


def test_owned_objects_survive_the_folder_sync_and_go_with_their_owner(engine: Any) -> None:
    owned = SqlOwnedObjects(engine, clock=lambda: NOW)
    tuning = experiment()
    sync(engine, [strategy("btc"), tuning])
    owned.apply_owned(strategy("btc-tune-r1", fast=17), owner=tuning)
    owned.apply_owned(ab("tune-r1-ab", "btc", "btc-tune-r1"), owner=tuning)
    assert row(engine, "Strategy", "btc-tune-r1").owner == "Experiment/tune"

    outcome = sync(engine, [strategy("btc"), tuning])  # the folder changed elsewhere: its owner is still there
    assert outcome["deleting"] == [] and outcome["removed"] == []
    assert not row(engine, "Strategy", "btc-tune-r1").deleting

    outcome = sync(engine, [strategy("btc")])  # the tuning Experiment's file is gone: what it owns goes too
    assert sorted(outcome["removed"]) == ["Experiment default/tune", "Experiment default/tune-r1-ab"]
    assert outcome["deleting"] == ["Strategy default/btc-tune-r1"]  # drained first, as any Strategy
    assert row(engine, "Strategy", "btc-tune-r1").deleting


def test_apply_owned_replaces_its_own_spec_and_refuses_someone_elses_object(engine: Any) -> None:
    owned = SqlOwnedObjects(engine, clock=lambda: NOW)
    tuning = experiment()
    sync(engine, [strategy("btc"), tuning])
    owned.apply_owned(strategy("btc-tune-r1", fast=17), owner=tuning)
    owned.apply_owned(strategy("btc-tune-r1", fast=17), owner=tuning)  # idempotent
    assert row(engine, "Strategy", "btc-tune-r1").generation == 1
    owned.apply_owned(strategy("btc-tune-r1", fast=18), owner=tuning)
    assert row(engine, "Strategy", "btc-tune-r1").generation == 2
    before = row(engine, "Strategy", "btc").document
    with pytest.raises(ConflictError, match=r"Strategy default/btc exists and is not owned by Experiment/tune"):
        owned.apply_owned(strategy("btc", fast=3), owner=tuning)
    assert row(engine, "Strategy", "btc").document == before  # left as it was


def test_a_replaced_spec_stands_until_the_file_itself_changes(engine: Any) -> None:
    owned = SqlOwnedObjects(engine, clock=lambda: NOW)
    sync(engine, [strategy("btc", fast=10)])
    owned.replace_spec(strategy("btc", fast=20))  # an A/B promotion
    promoted = row(engine, "Strategy", "btc")
    assert promoted.generation == 2 and promoted.document["spec"]["ensemble"]["members"][0]["params"]["fast"] == 20

    sync(engine, [strategy("btc", fast=10), experiment("other")])  # another file changed: the promotion stands
    assert row(engine, "Strategy", "btc").document["spec"]["ensemble"]["members"][0]["params"]["fast"] == 20

    sync(engine, [strategy("btc", fast=12), experiment("other")])  # its own file changed: the file wins again
    edited = row(engine, "Strategy", "btc")
    assert edited.generation == 3 and edited.document["spec"]["ensemble"]["members"][0]["params"]["fast"] == 12
    with pytest.raises(NotFoundError, match="Strategy default/gone is not there"):
        owned.replace_spec(strategy("gone"))


def test_delete_takes_what_the_object_owns_with_it(engine: Any) -> None:
    owned = SqlOwnedObjects(engine, clock=lambda: NOW)
    tuning = experiment()
    sync(engine, [strategy("btc"), tuning])
    rollout = ab("tune-r1-ab", "btc", "btc-tune-r1")
    owned.apply_owned(rollout, owner=tuning)
    owned.apply_owned(strategy("btc-tune-r1-x", fast=9), owner=rollout)
    owned.delete("Experiment", "default", "tune-r1-ab")
    assert row(engine, "Experiment", "tune-r1-ab") is None
    assert row(engine, "Strategy", "btc-tune-r1-x").deleting
    owned.delete("Experiment", "default", "tune-r1-ab")  # gone already: nothing to do
    assert row(engine, "Experiment", "tune") is not None
