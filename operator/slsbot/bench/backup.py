"""``python -m slsbot.bench.backup`` (``make bench``): backup and restore of a runtime's state after a year of trading.

The state file is made by the real runtime: ``slsbot runtime --until-end`` replaying
``examples/backtest/ensemble-8-symbols.yaml`` (twelve members on eight pairs, 1h, paper account) over the shared data
set's last year of 1h candles (``Harthor_marketlab/binance``, 2025-02-19 to 2026-02-19): every order, fill, position
and equity row a live runtime would have written. Then, with Debian's restic on a local repository:

* ``backup_state_mb``: the state file's size; comment lines: its orders, fills and equity rows.
* ``backup_snapshot_s``: the consistent copy (SQLite's online backup API) and its summary (counts and digests).
* ``backup_first_s`` / ``backup_first_added_mb``: the first ``restic backup`` of it (repository created before).
* ``backup_incremental_s`` / ``backup_incremental_added_mb``: a second backup after one more day of trading (a day
  of candles run on the same state file), what restic's deduplication leaves to store.
* ``restore_s``: ``slsbot restore``'s path (restore, integrity check, summary compared, file swapped).
* ``drill_s``: a restore drill of the newest snapshot.

Skipped (saying why) without restic or without the shared data set.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from pydantic import SecretStr

from slsbot.adapters.restic import ResticRepository
from slsbot.adapters.sqlite_snapshot import SqliteCopies, snapshot_database, summarize_state
from slsbot.api.backup import BackupScheduleSpec, JobOutcome
from slsbot.services.backups import BackupService, BackupSource, restore_state
from slsbot_runtime.bench import report

REPO = Path(__file__).resolve().parents[3]
DATA = REPO.parent / "shared" / "data" / "market" / "Harthor_marketlab" / "binance"
YEAR_START = "2025-02-19T00:00:00+00:00"
LAST_DAY_START = "2026-02-18T00:00:00+00:00"


def all_but_the_last_day(target: Path) -> Path:
    """The 1h files of ``DATA`` without their last day's candles (rows dropped, nothing else changed), so that a
    second run on the full files adds exactly one day of trading to the same state file."""
    import pandas as pd

    target.mkdir(parents=True, exist_ok=True)
    cut = pd.Timestamp(LAST_DAY_START)
    for path in sorted(DATA.glob("*-1h.feather")):
        frame = pd.read_feather(path)
        frame[frame["date"] < cut].reset_index(drop=True).to_feather(target / path.name)
    return target


def run_runtime(folder: Path, state: Path, *, data: Path) -> float:
    raw = yaml.safe_load((REPO / "examples/backtest/ensemble-8-symbols.yaml").read_text())
    raw["marketData"].update({"dataDir": str(data), "start": YEAR_START})
    config = folder / f"runtime-{len(list(folder.glob('runtime-*.yaml')))}.yaml"
    config.write_text(yaml.safe_dump(raw))
    command = [sys.executable, "-m", "slsbot.interfaces.cli", "runtime", "--config", str(config), "--state", str(state)]
    started = time.perf_counter()
    env = {**os.environ, "SLSBOT_RUNTIME_TOKEN": secrets.token_urlsafe(24)}  # its control endpoints stay closed
    subprocess.run(
        [*command, "--until-end", "--port", "0", "--log-level", "WARNING"],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    return time.perf_counter() - started


def rows(state: Path, table: str) -> int:
    with sqlite3.connect(state) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # a fixed table name


def main() -> int:
    if shutil.which("restic") is None:
        print("# backup: skipped, no restic binary (make restic installs Debian's)", flush=True)
        return 0
    if not DATA.is_dir():
        print(f"# backup: skipped, no shared data set at {DATA}", flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="slsbot-bench-backup-") as name:
        folder = Path(name)
        live = folder / "trading" / "bench" / "state.db"
        live.parent.mkdir(parents=True)
        elapsed = run_runtime(folder, live, data=all_but_the_last_day(folder / "data"))
        print(
            f"# backup: state of slsbot runtime --until-end, 12 members x 8 symbols 1h, {YEAR_START[:10]} to "
            f"{LAST_DAY_START[:10]} ({elapsed:.0f}s): {rows(live, 'orders'):,} orders, {rows(live, 'fills'):,} fills, "
            f"{rows(live, 'equity'):,} equity rows",
            flush=True,
        )
        report("backup_state_mb", live.stat().st_size / 1e6)

        started = time.perf_counter()
        snapshot_database(live, folder / "copy.db")
        summarize_state(folder / "copy.db")
        report("backup_snapshot_s", time.perf_counter() - started)

        repository = ResticRepository(  # a throwaway local repository, removed with the folder
            str(folder / "repo"), SecretStr(secrets.token_urlsafe(24)), cache_dir=folder / "cache", timeout=3600
        )
        repository.ensure_initialized()
        service = BackupService(
            namespace="trading",
            schedule="bench",
            spec=BackupScheduleSpec.model_validate(
                {"repository": str(folder / "repo"), "passwordSecretRef": {"name": "r", "key": "p"}}
            ),
            repository=repository,
            databases=SqliteCopies(),
            sources=lambda: [BackupSource("state", "bench", live, account="backtest")],
            work_dir=folder / "work",
        )
        for label in ("first", "incremental"):
            if label == "incremental":
                run_runtime(folder, live, data=DATA)  # one more day of trading on the same state file
            started = time.perf_counter()
            result = service.run("backup")
            seconds = time.perf_counter() - started
            if result.outcome != JobOutcome.SUCCEEDED:
                print(f"# backup failed: {result.message}", flush=True)
                return 1
            report(f"backup_{label}_s", seconds)
            report(f"backup_{label}_added_mb", (result.size_bytes or 0) / 1e6)

        started = time.perf_counter()
        restore_state(
            repository,
            SqliteCopies(),
            namespace="trading",
            strategy="bench",
            state_file=live,
            now=datetime.now(UTC),
        )
        report("restore_s", time.perf_counter() - started)

        started = time.perf_counter()
        drill = service.run("drill")
        report("drill_s", time.perf_counter() - started)
        if drill.outcome != JobOutcome.SUCCEEDED:
            print(f"# drill failed: {drill.message}", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
