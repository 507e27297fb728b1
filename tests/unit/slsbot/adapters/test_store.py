"""The supervisor's SQLite store: desired state with generations, the paused override, status, runtime
records, aggregated events and the audit trail, on a real SQLite file per test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from slsbot.adapters.store import (
    AUDIT_FIELD_LIMITS,
    NO_ROUTE,
    RuntimeRecord,
    count_refused_request,
    create_store_engine,
    forget_object,
    get_runtime_record,
    get_stored_object,
    list_audit,
    list_events,
    list_refused_requests,
    list_stored_objects,
    mark_drained,
    record_audit,
    record_event,
    save_object_status,
    save_runtime_record,
    set_experiment_control,
    set_paused_override,
    sync_desired_objects,
)
from slsbot.adapters.supervisor_store import SqlSupervisorStore
from slsbot.api import Strategy, parse_resource
from slsbot.domain.errors import NotFoundError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def account(name: str = "paper") -> Any:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": name},
            "spec": {"exchange": "binance"},
        }
    )


def strategy(name: str = "btc", *, fast: int = 10, labels: dict | None = None, paused: bool = False) -> Any:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "paused": paused,
                "ensemble": {
                    "members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": fast, "slow": 30}}]
                },
            },
        }
    )


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_store_engine(tmp_path / "nested" / "supervisor.db")
    yield engine
    engine.dispose()


def sync(engine, resources, now=NOW) -> dict[str, list[str]]:
    with Session(engine) as session:
        return sync_desired_objects(session, resources=resources, now=now)


def stored(engine, kind: str, name: str):
    with Session(engine) as session:
        return get_stored_object(session, kind=kind, namespace="default", name=name)


def test_engine_creates_its_folder_and_uses_wal(tmp_path: Path) -> None:
    engine = create_store_engine(tmp_path / "a" / "b" / "s.db")
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    engine.dispose()
    assert (tmp_path / "a" / "b" / "s.db").exists()
    assert mode == "wal"


def test_sync_inserts_new_objects_at_generation_one(engine) -> None:
    outcome = sync(engine, [account(), strategy()])
    assert outcome["created"] == ["TradingAccount default/paper", "Strategy default/btc"]
    row = stored(engine, "Strategy", "btc")
    assert row.generation == 1
    assert row.created_at == NOW and row.created_at.tzinfo is not None
    resource = row.as_resource()
    assert isinstance(resource, Strategy)
    assert resource.metadata.generation == 1
    assert resource.spec.ensemble.members[0].params == {"fast": 10, "slow": 30}


def test_a_spec_change_bumps_the_generation_and_metadata_does_not(engine) -> None:
    sync(engine, [account(), strategy()])
    outcome = sync(engine, [account(), strategy(labels={"team": "a"})])
    assert outcome["unchanged"] == ["TradingAccount default/paper", "Strategy default/btc"]
    assert stored(engine, "Strategy", "btc").generation == 1
    assert stored(engine, "Strategy", "btc").as_resource().metadata.labels == {"team": "a"}
    outcome = sync(engine, [account(), strategy(fast=12)])
    assert outcome["changed"] == ["Strategy default/btc"]
    row = stored(engine, "Strategy", "btc")
    assert row.generation == 2
    assert row.as_resource().metadata.generation == 2
    assert row.as_resource().spec.ensemble.members[0].params["fast"] == 12


def test_a_vanished_strategy_is_marked_deleting_and_other_kinds_are_removed(engine) -> None:
    sync(engine, [account(), strategy("btc"), strategy("eth")])
    outcome = sync(engine, [strategy("btc")])
    assert outcome["deleting"] == ["Strategy default/eth"]
    assert outcome["removed"] == ["TradingAccount default/paper"]
    assert stored(engine, "Strategy", "eth").deleting is True
    assert stored(engine, "TradingAccount", "paper") is None
    sync(engine, [account(), strategy("btc"), strategy("eth")])  # back in the YAML: no longer deleting
    assert stored(engine, "Strategy", "eth").deleting is False


def test_paused_override_is_layered_on_the_spec_and_survives_a_reload(engine) -> None:
    sync(engine, [account(), strategy(paused=False)])
    with Session(engine) as session:
        row = set_paused_override(session, namespace="default", name="btc", paused=True, now=NOW)
    assert row.paused_override is True
    sync(engine, [account(), strategy(paused=False)])  # the supervisor restarts and reloads the same YAML
    row = stored(engine, "Strategy", "btc")
    assert row.paused_override is True
    assert row.as_resource().spec.paused is True
    assert row.document["spec"].get("paused", False) is False  # the YAML itself is kept as written
    assert row.generation == 1  # pausing is not a spec change


def test_paused_override_of_an_unknown_strategy_is_not_found(engine) -> None:
    sync(engine, [account()])
    with Session(engine) as session, pytest.raises(NotFoundError, match="default/nope"):
        set_paused_override(session, namespace="default", name="nope", paused=True, now=NOW)


def experiment(name: str = "btc-ab", **spec: Any) -> Any:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": name},
            "spec": {
                "type": "ab",
                "strategyRef": {"name": "btc"},
                "variants": [
                    {"name": "baseline", "strategyRef": {"name": "btc"}},
                    {"name": "candidate", "strategyRef": {"name": "btc-v2"}},
                ],
                **spec,
            },
        }
    )


def test_experiment_controls_are_layered_on_the_spec_survive_a_reload_and_move_the_generation(engine) -> None:
    sync(engine, [experiment(paused=True)])
    with Session(engine) as session:
        row = set_experiment_control(
            session, namespace="default", name="btc-ab", control="paused", value=False, now=NOW
        )
        row = set_experiment_control(session, namespace="default", name="btc-ab", control="abort", value=True, now=NOW)
        again = set_experiment_control(
            session, namespace="default", name="btc-ab", control="abort", value=True, now=NOW
        )
    assert row.controls_override == {"paused": False, "abort": True}
    assert again.generation == row.generation == 3  # each change once; setting it again changes nothing
    sync(engine, [experiment(paused=True)])  # the supervisor restarts and reloads the same YAML
    row = stored(engine, "Experiment", "btc-ab")
    spec = row.as_resource().spec
    assert (spec.paused, spec.abort, spec.promote) == (False, True, False)
    assert row.document["spec"]["paused"] is True  # the YAML itself is kept as written


def test_an_experiment_control_of_an_unknown_experiment_is_not_found(engine) -> None:
    sync(engine, [experiment()])
    with Session(engine) as session, pytest.raises(NotFoundError, match="default/nope"):
        set_experiment_control(session, namespace="default", name="nope", control="promote", value=True, now=NOW)


def test_status_is_written_only_when_it_changes(engine) -> None:
    sync(engine, [account(), strategy()])
    with Session(engine) as session:
        assert (
            save_object_status(
                session, kind="Strategy", namespace="default", name="btc", status={"phase": "Running"}, now=NOW
            )
            is True
        )
        assert (
            save_object_status(
                session, kind="Strategy", namespace="default", name="btc", status={"phase": "Running"}, now=NOW
            )
            is False
        )
        assert (
            save_object_status(
                session, kind="Strategy", namespace="default", name="ghost", status={"phase": "Running"}, now=NOW
            )
            is False
        )
    assert stored(engine, "Strategy", "btc").as_resource().status.phase == "Running"


def test_runtime_record_round_trip_keeps_utc(engine) -> None:
    with Session(engine) as session:
        save_runtime_record(
            session,
            record=RuntimeRecord(
                namespace="default", name="btc", pid=42, port=9000, started_at=NOW, last_status={"equity": 1.5}
            ),
            now=NOW,
        )
        row = save_runtime_record(
            session,
            record=RuntimeRecord(namespace="default", name="btc", pid=43, port=9000, restarts=1),
            now=NOW + timedelta(seconds=1),
        )
    with Session(engine) as session:
        row = get_runtime_record(session, namespace="default", name="btc")
    assert (row.pid, row.restarts, row.port) == (43, 1, 9000)
    assert row.updated_at == NOW + timedelta(seconds=1)
    assert row.updated_at.tzinfo is UTC


def test_naive_datetimes_are_refused(engine) -> None:
    with Session(engine) as session, pytest.raises(Exception, match="time zone"):
        save_runtime_record(session, record=RuntimeRecord(namespace="default", name="x"), now=datetime(2026, 1, 1))


def test_forget_removes_the_object_and_its_runtime_record(engine) -> None:
    sync(engine, [account(), strategy()])
    with Session(engine) as session:
        save_runtime_record(session, record=RuntimeRecord(namespace="default", name="btc", port=1), now=NOW)
        mark_drained(session, namespace="default", name="btc")
        assert get_stored_object(session, kind="Strategy", namespace="default", name="btc").drained is True
        forget_object(session, kind="Strategy", namespace="default", name="btc")
        assert get_runtime_record(session, namespace="default", name="btc") is None
        assert [r.name for r in list_stored_objects(session)] == ["paper"]


def test_equal_consecutive_events_are_aggregated(engine) -> None:
    with Session(engine) as session:
        for second in range(3):
            record_event(
                session,
                kind="Strategy",
                namespace="default",
                name="btc",
                type="Warning",
                reason="RuntimeUnreachable",
                message="no answer",
                now=NOW + timedelta(seconds=second),
            )
        record_event(
            session,
            kind="Strategy",
            namespace="default",
            name="btc",
            type="Normal",
            reason="Restarting",
            message="restarting",
            now=NOW + timedelta(seconds=5),
        )
        record_event(
            session,
            kind="Strategy",
            namespace="default",
            name="eth",
            type="Normal",
            reason="Creating",
            message="creating",
            now=NOW + timedelta(seconds=6),
        )
        events = list_events(session)
        only_btc = list_events(session, name="btc", limit=1)
    assert [(e.name, e.reason, e.count) for e in events] == [
        ("eth", "Creating", 1),
        ("btc", "Restarting", 1),
        ("btc", "RuntimeUnreachable", 3),
    ]
    assert events[2].first_seen == NOW and events[2].last_seen == NOW + timedelta(seconds=2)
    assert [e.reason for e in only_btc] == ["Restarting"]


def test_audit_is_listed_newest_first(engine) -> None:
    with Session(engine) as session:
        record_audit(session, actor="operator:aa", action="POST /a", target=None, result="200", now=NOW)
        record_audit(session, actor="viewer:bb", action="POST /b", target="x", result="403", now=NOW)
        assert [a.action for a in list_audit(session)] == ["POST /b", "POST /a"]
        assert [a.action for a in list_audit(session, limit=1)] == ["POST /b"]


def test_every_audit_field_is_bounded_whatever_the_caller_passes(engine) -> None:
    huge = "x" * 60_000
    with Session(engine) as session:
        record_audit(session, actor=huge, action=huge, target=huge, result=huge, now=NOW)
        (row,) = list_audit(session)
    for field, limit in AUDIT_FIELD_LIMITS.items():
        value = getattr(row, field)
        assert len(value) == limit and value.endswith("\u2026"), field


def test_refused_requests_are_counted_per_method_route_and_status(engine) -> None:
    with Session(engine) as session:
        for second in range(3):
            count_refused_request(
                session,
                method="POST",
                route="/api/v1/strategies/{name}/pause",
                status=401,
                now=NOW + timedelta(seconds=second),
            )
        count_refused_request(session, method="POST", route=NO_ROUTE, status=404, now=NOW)
        counted = [
            (r.method, r.route, r.status, r.count, r.first_seen, r.last_seen) for r in list_refused_requests(session)
        ]
    assert counted == [
        ("POST", "/api/v1/strategies/{name}/pause", 401, 3, NOW, NOW + timedelta(seconds=2)),
        ("POST", NO_ROUTE, 404, 1, NOW, NOW),
    ]


def test_supervisor_store_reads_desired_objects_with_flags(engine) -> None:
    sync(engine, [account(), strategy("btc"), strategy("eth")])
    sync(engine, [account(), strategy("btc")])
    with Session(engine) as session:
        set_paused_override(session, namespace="default", name="btc", paused=True, now=NOW)
    store = SqlSupervisorStore(engine, clock=lambda: NOW)
    objects = {o.resource.name: o for o in store.desired_objects()}
    assert objects["btc"].resource.spec.paused is True
    assert objects["eth"].deleting is True and objects["eth"].drained is False
    store.mark_drained(namespace="default", name="eth")
    assert {o.resource.name: o for o in store.desired_objects()}["eth"].drained is True


def test_a_state_folder_from_before_deleting_since_keeps_working(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    engine = create_store_engine(path)
    engine.dispose()
    with sqlite3.connect(path) as db:  # what a store written before the column existed looks like
        db.execute("ALTER TABLE stored_object DROP COLUMN deleting_since")
        assert "deleting_since" not in {row[1] for row in db.execute("PRAGMA table_info(stored_object)")}
    engine = create_store_engine(path)
    with sqlite3.connect(path) as db:
        assert "deleting_since" in {row[1] for row in db.execute("PRAGMA table_info(stored_object)")}
    engine.dispose()
