"""Study storages by URL: journal files and SQLAlchemy URLs, bad URLs named (never with their password), and the
journal storage's heartbeat: a running trial whose worker stopped beating is failed and queued again."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.storages import JournalStorage, RDBStorage, fail_stale_trials
from optuna.trial import TrialState

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.tuning.accounting import SURPLUS, count_trials
from slsbot_runtime.tuning.storage import (
    HEARTBEAT_ATTR,
    HeartbeatJournalStorage,
    StorageSettings,
    open_storage,
    storage_file_missing,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize"),
]


def test_urls_open_the_storage_they_name(tmp_path):
    journal = open_storage(f"journal://{tmp_path}/a/study.log")
    assert isinstance(journal, JournalStorage) and isinstance(journal, HeartbeatJournalStorage)
    database = open_storage(f"sqlite:///{tmp_path}/study.db")
    assert isinstance(database, RDBStorage)
    assert database.get_heartbeat_interval() == StorageSettings().heartbeat_seconds
    assert not storage_file_missing(f"sqlite:///{tmp_path}/study.db")
    assert storage_file_missing(f"sqlite:///{tmp_path}/other.db") and storage_file_missing(
        f"journal://{tmp_path}/x.log"
    )
    assert not storage_file_missing("postgresql://db.example/optuna")  # not a file: nothing to tell


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "journal://relative/study.log",
            r"^--storage: journal://relative/study\.log: a journal storage is journal:///",
        ),
        ("nonsense", r"^--storage: cannot open nonsense \(ArgumentError"),
        ("postgresql://tuner:s3cret-pw@127.0.0.1:1/optuna", r"^--storage: "),
    ],
)
def test_a_bad_url_is_named_and_its_password_never_shown(url, message):
    with pytest.raises(ConfigError, match=message) as raised:
        open_storage(url)
    assert "s3cret-pw" not in str(raised.value)


def _running_trial(storage):
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask({"x": optuna.distributions.IntDistribution(0, 9)})
    return study, trial


def test_the_journal_heartbeat_fails_a_silent_running_trial_and_queues_it_again(tmp_path):
    storage = HeartbeatJournalStorage(tmp_path / "study.log", StorageSettings(heartbeat_seconds=1, grace_seconds=2))
    study, trial = _running_trial(storage)
    storage.record_heartbeat(trial._trial_id)
    assert storage._get_stale_trial_ids(study._study_id) == []  # beating
    storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_ATTR, time.time() - 3)  # its worker stopped 3 s ago
    assert storage._get_stale_trial_ids(study._study_id) == [trial._trial_id]
    fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[1].params == trials[0].params and trials[1].system_attrs["failed_trial"] == trial.number
    counts = count_trials(trials)
    assert (counts.retried, counts.waiting, counts.finished) == (1, 1, 0)
    storage.record_heartbeat(trial._trial_id)  # a late beat of the failed trial changes nothing and raises nothing
    assert study.get_trials(deepcopy=False)[0].state == TrialState.FAIL


def test_a_stale_surplus_trial_is_not_run_again(tmp_path):
    storage = HeartbeatJournalStorage(tmp_path / "study.log", StorageSettings(heartbeat_seconds=1, grace_seconds=2))
    study, trial = _running_trial(storage)
    trial.set_user_attr(SURPLUS, True)
    storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_ATTR, time.time() - 3)
    fail_stale_trials(study)
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.FAIL]
