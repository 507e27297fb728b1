"""Where a study lives: one storage every worker, the finalize step and the controller reach by URL.

* ``sqlite:///abs/path.db`` or any other SQLAlchemy URL (``postgresql://user@host/db`` on a cluster):
  Optuna's ``RDBStorage``.
* ``journal:///abs/path.log``: Optuna's ``JournalStorage`` over a ``JournalFileBackend`` (an append-only file
  with a file lock; every worker must see the same file system).

Both keep a heartbeat for every running trial: a worker records one every ``heartbeat_seconds``, and a trial
whose heartbeat is older than ``grace_seconds`` (its worker was killed, or its node lost) is marked failed by the
next worker that looks and queued again with the same parameters (``RetryHeartbeatStaleTrialCallback``, up to
``max_retry`` times). RDBStorage has that heartbeat built in; Optuna's JournalStorage has not, so
``HeartbeatJournalStorage`` adds it through the same interface (``BaseHeartbeat``): the heartbeat is a system
attribute of the trial, and Optuna's own heartbeat thread and stale-trial check drive it.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import IntegrityError, OperationalError

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.tuning.accounting import SURPLUS

HEARTBEAT_ATTR = "slsbot:heartbeat"
#: Tries to open a SQL storage when its tables are being created by another worker at the same moment.
CREATE_ATTEMPTS = 5
JOURNAL_SCHEME = "journal"


@dataclass(frozen=True, slots=True)
class StorageSettings:
    heartbeat_seconds: int = 10
    grace_seconds: int = 60  # a running trial without a heartbeat for this long has lost its worker
    max_retry: int = 3  # times a trial whose worker died is run again before it counts as failed


class RetryStaleTrial:
    """``RetryHeartbeatStaleTrialCallback``, except for a surplus trial (it was ending anyway and counts for
    nothing: running it again would take a slot it never had)."""

    def __init__(self, max_retry: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            self._retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if not trial.user_attrs.get(SURPLUS):
            self._retry(study, trial)


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A JournalStorage whose running trials keep a heartbeat (see the module doc)."""

    def __init__(self, path: Path, settings: StorageSettings) -> None:
        super().__init__(JournalFileBackend(str(path)))
        self._settings = settings
        self._stale_callback = RetryStaleTrial(settings.max_retry)

    def record_heartbeat(self, trial_id: int) -> None:
        with contextlib.suppress(UpdateFinishedTrialError):  # finished meanwhile (failed as stale elsewhere)
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(HEARTBEAT_ATTR)
            if beat is None:  # started but not beaten yet: count from its start
                beat = trial.datetime_start.timestamp() if trial.datetime_start is not None else now
            if now - float(beat) > self._settings.grace_seconds:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._settings.heartbeat_seconds

    def get_heartbeat_stale_trial_callback(self) -> RetryStaleTrial:
        return self._stale_callback


def open_storage(url: str, settings: StorageSettings | None = None) -> BaseStorage:
    """The storage at ``url`` (see the module doc), created if it is a new file; ConfigError naming ``--storage``."""
    settings = settings or StorageSettings()
    path = journal_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return HeartbeatJournalStorage(path, settings)
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=settings.heartbeat_seconds,
                    grace_period=settings.grace_seconds,
                    heartbeat_stale_trial_callback=RetryStaleTrial(settings.max_retry),
                )
        except ImportError as error:  # a database driver that is not installed
            raise ConfigError(
                f"--storage: {_shown(url)} needs a driver that is not installed: {_redacted(str(error), url)}"
            ) from None
        except (IntegrityError, OperationalError) as error:
            # Workers started together on a new database all create its tables; the losers of that race see
            # "table already exists" or a duplicate schema version. The tables are there when they look again.
            if attempt == CREATE_ATTEMPTS:
                raise ConfigError(_cannot_open(url, error)) from None
            time.sleep(0.2 * attempt)
        except Exception as error:  # SQLAlchemy's ArgumentError (not a URL), among others
            raise ConfigError(_cannot_open(url, error)) from None
    raise AssertionError("unreachable")


def _cannot_open(url: str, error: Exception) -> str:
    return (
        f"--storage: cannot open {_shown(url)} ({type(error).__name__}: {_redacted(str(error), url)}); give a "
        "SQLAlchemy URL such as sqlite:///abs/path.db or postgresql://user@host/db, or journal:///abs/path.log"
    )


def storage_file_missing(url: str) -> bool:
    """Whether ``url`` is a file storage (sqlite or journal) whose file does not exist yet."""
    path = journal_path(url)
    if path is None and url.startswith("sqlite:///"):
        name = url.removeprefix("sqlite:///").split("?", 1)[0]
        path = Path(name) if name and name != ":memory:" else None
    return path is not None and not path.exists()


def journal_path(url: str) -> Path | None:
    """The file of a ``journal:///abs/path`` URL, None for any other scheme; ConfigError for a journal URL that
    is not an absolute path."""
    parts = urlsplit(url)
    if parts.scheme != JOURNAL_SCHEME:
        return None
    if parts.netloc or not parts.path.startswith("/"):
        raise ConfigError(f"--storage: {url}: a journal storage is journal:///absolute/path/to/file.log")
    return Path(parts.path)


def _shown(url: str) -> str:
    """The URL without its password (a password never reaches a message)."""
    return _redacted(url, url)


def _redacted(text: str, url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    return text.replace(password, "***") if password else text
