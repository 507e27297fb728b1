"""slsbot up's backups: APScheduler runs a BackupSchedule's due jobs (as ``due_jobs`` decides from the status file),
records the result in the status file and the object's status, an Event and the metrics."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlmodel import Session, select
from tests.fakes.test_secrets import LOCAL_BACKUPS_RESTIC_PASSWORD as RESTIC_PASSWORD

from slsbot.adapters.backup_status import BackupStatusFile
from slsbot.adapters.control_metrics import ControlMetrics
from slsbot.adapters.store import EventRecord, create_store_engine
from slsbot.adapters.supervisor_store import SqlIncidentStore
from slsbot.api import BackupSchedule
from slsbot.api.backup import BackupScheduleStatus, JobResult
from slsbot.domain.incident_rules import backup_signal
from slsbot.domain.incidents import BACKUP_FAMILY
from slsbot.interfaces.local_backups import LocalBackups
from slsbot.services.incidents import IncidentService

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("restic") is None, reason="no restic binary: apt-get install restic"),
]


def test_a_due_backup_runs_on_the_scheduler_and_is_recorded(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    secret = state_dir / "secrets" / "ops" / "restic"
    secret.mkdir(parents=True)
    (secret / "password").touch(mode=0o600)  # a Secret as mounted: owner-only (the secret scan skips those)
    (secret / "password").write_text(RESTIC_PASSWORD)
    (secret / "password").chmod(0o400)  # as a mounted Secret: the secret scan skips owner-only files
    engine = create_store_engine(state_dir / "supervisor.db")  # the control plane's store: backed up, incidents
    schedule = BackupSchedule.model_validate(
        {
            "metadata": {"name": "hourly", "namespace": "ops"},
            "spec": {"repository": str(tmp_path / "repo"), "passwordSecretRef": {"name": "restic", "key": "password"}},
        }
    )
    statuses: list[BackupScheduleStatus] = []
    metrics = ControlMetrics(CollectorRegistry())
    incidents = IncidentService(SqlIncidentStore(engine), None)
    # Before this supervisor started, the drill had failed and its incident was open.
    failed_at = datetime.now(UTC) - timedelta(hours=1)
    drill = JobResult(started_at=failed_at, duration_seconds=1.0, outcome="Failed", message="orders differ")
    incidents.record_signals(
        [backup_signal("ops", "hourly", "drill", "orders differ", failed_at)], failed_at, evaluated=(BACKUP_FAMILY,)
    )
    backups = LocalBackups(
        resources=lambda: [schedule],
        state_dir=state_dir,
        secrets_dir=state_dir / "secrets",
        store_path=state_dir / "supervisor.db",
        metrics=metrics.backups,
        engine=engine,
        record_status=lambda **kw: statuses.append(kw["status"]),
        record_signals=incidents.record_signals,
    )
    status_file = BackupStatusFile(state_dir / "backups" / "ops" / "hourly")
    status_file.write(BackupScheduleStatus(last_drill=drill), datetime.now(UTC) - timedelta(hours=2))  # seen 2 h ago
    backups.start()
    try:
        deadline = time.monotonic() + 60
        while not statuses and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        backups.stop()
        engine.dispose()
    assert statuses, "the due backup did not run within 60 s"
    status, _since = status_file.read()
    assert status.last_backup is not None and status.last_backup.outcome == "Succeeded", status.last_backup
    assert status.last_drill == drill  # the drill's Sunday has not come since
    # the backup's success leaves the drill's incident open: only a drill that passes clears it
    active = incidents.store.active_incidents()
    assert [(i.spec.rule, i.status.clear_since) for i in active] == [("RestoreDrillFailed", None)]
    assert status.conditions[0].status == "False" and status.conditions[0].reason == "DrillFailed"
    with Session(create_store_engine(state_dir / "supervisor.db")) as session:
        events = session.exec(select(EventRecord).where(EventRecord.kind == "BackupSchedule")).all()
    assert [(e.reason, e.type) for e in events] == [("BackupSucceeded", "Normal")]
    exposition = metrics.exposition().decode()
    runs = 'slsbot_backup_runs_total{kind="backup",namespace="ops",outcome="succeeded",schedule="hourly"} 1.0'
    assert runs in exposition
    assert "slsbot_backup_last_size_bytes" in exposition
    assert RESTIC_PASSWORD not in exposition
