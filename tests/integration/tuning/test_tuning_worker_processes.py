"""Tuning workers as the controller runs them: real processes on one study in a sqlite or journal file. Two at once
share the work without running a trial twice and stop at exactly the plan's number of finished trials; a worker
killed in the middle of a trial leaves it to the next worker, which runs it again and finishes the study at exactly
that number; finalize writes its result; bad input exits 2 naming the field."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from slsbot_runtime.tuning.accounting import SURPLUS, count_trials
from slsbot_runtime.tuning.storage import StorageSettings, open_storage
from slsbot_runtime.tuning.study import load_study
from slsbot_runtime.tuning.summary import study_summary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
BASE: dict[str, Any] = {
    "apiVersion": "slsbot.io/v1alpha1",
    "kind": "RuntimeConfig",
    "name": "btc-eth-trend",
    "account": {"name": "backtest", "exchange": "binance", "paper": {"startingBalance": 100000, "feeRate": 0.001}},
    "symbols": ["BTC/USDT", "ETH/USDT"],
    "timeframe": "1h",
    "ensemble": {
        "members": [
            {"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30, "mode": "level"}},
            {"name": "rsi", "strategy": "rsi_reversion"},
        ]
    },
    "sizing": {"method": "fixedQuantity", "quantity": 0.1},
    "risk": {
        "perTrade": {"minPercent": 0.001, "maxPercent": 100},
        "maxSymbolExposurePercent": 1000,
        "maxTotalExposurePercent": 1000,
        "dailyLossLimitPercent": 100,
        "maxDrawdownPercent": 100,
        "circuitBreaker": {"levels": []},
        "volatilityHalt": {"enabled": False},
    },
    "marketData": {"source": "replay", "dataDir": str(REPO / "data/market/binance-spot-1h-2024"), "warmupCandles": 60},
}
STALE = StorageSettings(heartbeat_seconds=1, grace_seconds=2)


@pytest.fixture
def plan_file(tmp_path: Path) -> Callable[..., Path]:
    def write(**changes: Any) -> Path:
        plan: dict[str, Any] = {
            "base": copy.deepcopy(BASE),
            "searchSpace": [
                {"name": "sma.fast", "type": "int", "low": 3, "high": 20},
                {"name": "sma.slow", "type": "int", "low": 25, "high": 80},
                {"name": "rsi.period", "type": "int", "low": 5, "high": 21},
            ],
            "walkForward": {"trainDays": 45, "testDays": 10, "folds": 3},
            "windowEnd": "2026-01-01T00:00:00Z",
            "seed": 11,
        }
        plan.update(changes)
        path = tmp_path / "plan.json"
        path.write_text(json.dumps(plan))
        return path

    return write


def _url(kind: str, folder: Path) -> str:
    return f"sqlite:///{folder}/study.db" if kind == "sqlite" else f"journal://{folder}/study.log"


def _worker(plan: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "slsbot_runtime.tuning.worker", "--plan", str(plan), "--storage", url]
    command += ["--study", "s", "--heartbeat-seconds", "1", "--grace-seconds", "2", *extra]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what}")


def _finished(process: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def test_a_bad_plan_exits_2_naming_the_field(plan_file, tmp_path):
    plan = plan_file(searchSpace=[{"name": "sma.window", "type": "int", "low": 2, "high": 9}])
    code, output = _finished(_worker(plan, _url("journal", tmp_path)), 120)
    assert code == 2
    assert "searchSpace[0].name: sma.window: member sma (sma_cross) has no parameter 'window'" in output
    code, output = _finished(_worker(plan_file(), "journal://relative.log"), 120)
    assert code == 2 and "--storage: journal://relative.log: a journal storage is journal:///" in output


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_share_one_study_and_stop_at_exactly_max_trials(plan_file, tmp_path, kind):
    plan, url = plan_file(maxTrials=24), _url(kind, tmp_path)
    workers = [_worker(plan, url, "--worker-index", str(k)) for k in range(2)]
    for process in workers:
        code, output = _finished(process, 300)
        assert code == 0, output
    trials = load_study(open_storage(url, STALE), "s").get_trials(deepcopy=False)
    counts = count_trials(trials)
    assert counts.finished == 24 and counts.running == counts.waiting == 0
    counted = [t for t in trials if not t.user_attrs.get(SURPLUS)]
    assert len(counted) == 24 and len({t.number for t in trials}) == len(trials)  # no trial twice
    workers_seen = {t.user_attrs["timing"]["worker"] for t in counted if "timing" in t.user_attrs}
    assert len(workers_seen) == 2  # both ran trials
    assert study_summary(url, "s").done


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_killed_worker_s_trial_is_run_again_and_the_study_ends_at_exactly_max_trials(plan_file, tmp_path, kind):
    plan, url = plan_file(maxTrials=14, pruning=False), _url(kind, tmp_path)

    def sampled_trial_running_after_three_finished() -> bool:
        summary = study_summary(url, "s", STALE)
        if summary is None or summary.finished < 3:
            return False
        trials = load_study(open_storage(url, STALE), "s").get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return len(trials) == 1 and len(trials[0].params) == 3  # backtesting its parameters

    dead = None
    for _ in range(5):  # kill in the middle of a trial: the few ms between two trials would miss it
        worker = _worker(plan, url, "--worker-index", "0")
        _until(sampled_trial_running_after_three_finished, 120, "a trial backtesting after three finished")
        os.kill(worker.pid, signal.SIGKILL)
        worker.communicate(timeout=30)
        running = [t for t in load_study(open_storage(url, STALE), "s").trials if t.state == TrialState.RUNNING]
        if running:
            dead = running[0]
            break
    assert dead is not None, "five kills all fell between two trials"
    before = study_summary(url, "s", STALE)
    assert before.finished < 14 and not before.done

    code, output = _finished(_worker(plan, url, "--worker-index", "1"), 300)
    assert code == 0, output
    trials = load_study(open_storage(url, STALE), "s").get_trials(deepcopy=False)
    counts = count_trials(trials)
    assert counts.finished == 14 and counts.retried >= 1 and counts.running == 0
    failed = next(t for t in trials if t.number == dead.number)
    assert failed.state == TrialState.FAIL
    again = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert again and again[0].params == dead.params and again[0].state == TrialState.COMPLETE


@pytest.mark.long  # in make test-long: about 13 s
def test_finalize_writes_the_result_and_exits_0_and_a_missing_study_exits_2(plan_file, tmp_path):
    plan, url = plan_file(maxTrials=8), _url("journal", tmp_path)
    code, output = _finished(_worker(plan, url, "--worker-index", "0"), 300)
    assert code == 0, output
    command = [sys.executable, "-m", "slsbot_runtime.tuning.finalize", "--plan", str(plan), "--storage", url]
    finished = subprocess.run(
        [*command, "--study", "s", "--out", str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["trialsCounted"] == 8 and result["proposal"]["trial"] == result["folds"][-1]["trial"]
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "equity.png").is_file()
    missing = subprocess.run(
        [*command, "--study", "nope", "--out", str(tmp_path / "other")], cwd=REPO, capture_output=True, text=True
    )
    assert missing.returncode == 2 and "--study: no study named nope" in missing.stderr


OPEN_AND_CREATE = """
import sys
from slsbot_runtime.tuning.storage import open_storage
import optuna
optuna.create_study(storage=open_storage(sys.argv[1]), study_name="s", load_if_exists=True)
"""


def test_workers_opening_a_new_sqlite_storage_at_the_same_moment_all_get_it(tmp_path):
    # each creates the tables; before the retry, the losers of that race exited 2 on "table already exists"
    for round_ in range(2):
        url = f"sqlite:///{tmp_path}/race-{round_}.db"
        starting = [
            subprocess.Popen([sys.executable, "-c", OPEN_AND_CREATE, url], cwd=REPO, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        for process in starting:
            _, errors = process.communicate(timeout=120)
            assert process.returncode == 0, errors
