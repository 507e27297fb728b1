"""The backups service with a real restic and a local repository: backup with tags, retention, check, drills that
pass on a faithful snapshot and fail (with an incident) on a tampered one, and no password anywhere."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path

import pytest
from pydantic import SecretStr
from tests.fakes import test_secrets
from tests.fakes.test_secrets import BACKUP_SERVICE_RESTIC_PASSWORD as RESTIC_PASSWORD

from slsbot.adapters.restic import ResticRepository
from slsbot.adapters.sqlite_snapshot import SqliteCopies
from slsbot.adapters.store import create_store_engine
from slsbot.adapters.supervisor_store import SqlIncidentStore
from slsbot.api.backup import BackupJobKind, BackupScheduleSpec, JobOutcome, JobResult
from slsbot.services.backups import BackupService, BackupSource
from slsbot.services.incidents import IncidentService
from slsbot_runtime.domain.types import Fill, Order, OrderStatus, Side
from slsbot_runtime.persistence.store import StateStore

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("restic") is None, reason="no restic binary: apt-get install restic"),
]


def trade(store: StateStore, i: int) -> None:
    cid = f"o-{i}"
    store.stage_order(Order(cid, "BTC/USDT", Side.BUY, 0.01, status=OrderStatus.FILLED, filled_quantity=0.01))
    store.stage_fill(Fill(f"f-{i}", cid, "BTC/USDT", Side.BUY, 0.01, 100.0 + i, 0.01, "USDT", 1_000 + i))
    store.stage_equity(1_000 + i, "BTC/USDT", 10_000.0 + i, 9_000.0)
    store.commit()


def write_state(path: Path, first: int, last: int) -> None:
    store = StateStore.open(path)
    try:
        for i in range(first, last):
            trade(store, i)
    finally:
        store.close()


class Harness:
    def __init__(self, tmp_path: Path, *, with_store: bool = True, **spec: object) -> None:
        self.state = tmp_path / "state" / "trading" / "btc" / "state.db"
        write_state(self.state, 0, 5)
        self.store_path = tmp_path / "state" / "supervisor.db"
        self.engine = create_store_engine(self.store_path)
        self.incidents = IncidentService(SqlIncidentStore(self.engine), None)
        self.repository = ResticRepository(
            str(tmp_path / "repo"), SecretStr(RESTIC_PASSWORD), cache_dir=tmp_path / "cache"
        )
        self.results: list[tuple[BackupJobKind, JobResult]] = []
        self.service = BackupService(
            namespace="trading",
            schedule="nightly",
            spec=BackupScheduleSpec.model_validate(
                {"repository": str(tmp_path / "repo"), "passwordSecretRef": {"name": "r", "key": "p"}, **spec}
            ),
            repository=self.repository,
            databases=SqliteCopies(),
            sources=lambda: [
                BackupSource("state", "btc", self.state, account="binance"),
                *([BackupSource("store", "control-plane", self.store_path)] if with_store else []),
            ],
            work_dir=tmp_path / "work",
            report=lambda job, result: self.results.append((job, result)),
            record_signals=self.incidents.record_signals,
        )

    def active(self) -> list[tuple[str, str]]:
        return [(i.spec.rule, i.spec.cause) for i in self.incidents.store.active_incidents()]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    built = Harness(tmp_path)
    yield built
    built.engine.dispose()


def test_backup_makes_one_tagged_snapshot_per_database_and_a_drill_passes_on_it(
    harness: Harness, tmp_path: Path
) -> None:
    result = harness.service.run("backup")
    assert result.outcome == JobOutcome.SUCCEEDED, result.message
    assert len(result.snapshot_ids) == 2 and result.size_bytes and result.size_bytes > 0
    snapshots = harness.repository.snapshots(tags={"namespace": "trading"})
    tags = sorted(sorted(s["tags"]) for s in snapshots)
    assert tags == [
        ["account=binance", "kind=state", "namespace=trading", "strategy=btc"],
        ["kind=store", "namespace=trading", "strategy=control-plane"],
    ]
    assert {s["hostname"] for s in snapshots} == {"slsbot"}
    state_snapshot = next(s for s in snapshots if "kind=state" in s["tags"])
    harness.repository.restore(state_snapshot["id"], tmp_path / "out")
    record = json.loads(next((tmp_path / "out").rglob("summary.json")).read_text())
    assert record["summary"]["tables"]["orders"]["rows"] == 5
    assert record["account"] == "binance" and record["database"] == "state.db"
    assert harness.results == [(BackupJobKind.BACKUP, result)]
    assert not (tmp_path / "work" / "staging").exists() or not any((tmp_path / "work" / "staging").iterdir())

    write_state(harness.state, 5, 9)  # the live state moved on: the drill compares with the snapshot's record
    drill = harness.service.run("drill")
    assert drill.outcome == JobOutcome.SUCCEEDED, drill.message
    assert len(drill.snapshot_ids) == 2
    assert harness.active() == []


@pytest.mark.long  # four backups, a prune (which repacks) and a check: 15-30 s on a busy machine
def test_prune_keeps_what_the_rules_say_per_database(tmp_path: Path) -> None:
    harness = Harness(
        tmp_path, with_store=False, prune={"keepHourly": 1, "keepDaily": 0, "keepWeekly": 0, "keepMonthly": 0}
    )
    try:
        made = []
        for i in range(3):
            write_state(harness.state, 5 + i, 6 + i)
            made += harness.service.run("backup").snapshot_ids
        other = tmp_path / "other"  # another strategy's snapshot: a group of its own, kept by the same rules
        other.mkdir()
        (other / "state.db").write_bytes(b"x")
        harness.repository.backup(other, tags={"namespace": "trading", "kind": "state", "strategy": "eth"})
        pruned = harness.service.run("prune")
        assert pruned.outcome == JobOutcome.SUCCEEDED, pruned.message
        assert sorted(i[:8] for i in pruned.snapshot_ids) == sorted(made[:2])  # the two older of btc's three
        left = harness.repository.snapshots()
        assert sorted(next(t for t in s["tags"] if t.startswith("strategy=")) for s in left) == [
            "strategy=btc",
            "strategy=eth",
        ]
        assert made[2] in {s["short_id"] for s in left}
        assert harness.service.run("check").outcome == JobOutcome.SUCCEEDED
    finally:
        harness.engine.dispose()


@pytest.mark.long  # a backup, a tampered summary and a drill that restores: 10-15 s
def test_drill_fails_and_opens_an_incident_when_the_restored_data_differs(harness: Harness, tmp_path: Path) -> None:
    assert harness.service.run("backup").outcome == JobOutcome.SUCCEEDED
    # A newer snapshot of the same database whose recorded summary says more than its database holds (a backup
    # that lost rows on the way): the drill restores it and must notice.
    forged = tmp_path / "forged"
    harness.repository.restore(
        next(s["id"] for s in harness.repository.snapshots() if "kind=state" in s["tags"]), forged
    )
    summary_file = next(forged.rglob("summary.json"))
    with sqlite3.connect(summary_file.parent / "state.db") as db:
        db.execute("DELETE FROM orders WHERE client_order_id = 'o-4'")
    harness.repository.backup(
        summary_file.parent,
        tags={"namespace": "trading", "kind": "state", "strategy": "btc", "account": "binance"},
    )
    drill = harness.service.run("drill")
    assert drill.outcome == JobOutcome.FAILED
    assert "orders has 4 rows, 5 were backed up" in drill.message
    assert harness.active() == [("RestoreDrillFailed", "RestoreDrillFailed:trading/nightly:drill")]
    incident = harness.incidents.store.active_incidents()[0]
    assert incident.spec.runbook == "runbooks/restore-drill-failed.md"
    assert incident.spec.objects == ["BackupSchedule/nightly"]
    # a backup succeeding does not clear the drill's incident; the next drill over a faithful snapshot does
    assert harness.service.run("backup").outcome == JobOutcome.SUCCEEDED
    assert [rule for rule, _ in harness.active()] == ["RestoreDrillFailed"]
    assert harness.service.run("drill").outcome == JobOutcome.SUCCEEDED
    incident = harness.incidents.store.get_incident(incident.id)
    assert incident.status.clear_since is not None  # cleared; resolved once recoverAfter passes


def test_drill_and_check_fail_on_damaged_data_and_no_password_shows_anywhere(
    harness: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    assert harness.service.run("backup").outcome == JobOutcome.SUCCEEDED
    packs = sorted((tmp_path / "repo" / "data").rglob("*"))
    for pack in (p for p in packs if p.is_file()):
        pack.chmod(0o644)
        data = bytearray(pack.read_bytes())
        data[len(data) // 2] ^= 0xFF
        pack.write_bytes(bytes(data))
    drill = harness.service.run("drill")
    assert drill.outcome == JobOutcome.FAILED
    assert "ciphertext verification failed" in drill.message
    check = harness.service.run("check")
    assert check.outcome == JobOutcome.FAILED
    assert "repository contains errors" in check.message
    rules = sorted(harness.active())
    assert rules == [
        ("BackupFailed", "BackupFailed:trading/nightly:check"),
        ("RestoreDrillFailed", "RestoreDrillFailed:trading/nightly:drill"),
    ]

    harness.service.repository = ResticRepository(str(tmp_path / "repo"), SecretStr("not-the-" + RESTIC_PASSWORD))
    failed = harness.service.run("check")
    assert failed.outcome == JobOutcome.FAILED and "wrong password" in failed.message
    texts = [caplog.text, *capfd.readouterr()]
    texts += [r.model_dump_json() for _, r in harness.results]
    texts += [i.model_dump_json() for i in harness.incidents.store.active_incidents()]
    for text in texts:
        assert RESTIC_PASSWORD not in text
    assert not list(Path("/tmp").glob("slsbot-restic-*/password"))  # the password files are gone


def test_scrub_removes_the_password_and_backend_values() -> None:
    repository = ResticRepository(
        "s3:127.0.0.1:9/bucket",
        SecretStr(RESTIC_PASSWORD),
        environment={"AWS_SECRET_ACCESS_KEY": SecretStr(test_secrets.BACKUP_AWS_SECRET)},
    )
    text = f"Fatal: key {RESTIC_PASSWORD} and aws-secret-test-Zk3 refused"
    assert repository.scrub(text) == "Fatal: key *** and *** refused"
