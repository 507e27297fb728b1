"""``LocalProcessBackend``: each Strategy's runtime is a local ``slsbot runtime --config FILE`` process.

Layout under the state folder, per strategy: ``<state_dir>/<namespace>/<name>/`` holds ``runtime.yaml`` (the
rendered RuntimeConfig), ``state.db`` (the runtime's own SQLite state, the same path on every start, so a
restarted runtime resumes where it stopped) and ``runtime.log`` (its stdout and stderr, appended).

Each runtime gets a free 127.0.0.1 port, chosen once and kept (it is part of the config, so a new port would be a
new config hash, i.e. a rollout); it is only replaced when something else took it while the runtime was down.
Each runtime runs in its own process group, so a Ctrl-C in the supervisor's terminal does not reach it: the
supervisor stops it with SIGTERM (it flushes its state and exits), then SIGKILL after ``stop_timeout``. It stays in
the supervisor's session, so a scheduler that groups processes by session (Linux's autogroup) treats the supervisor
and its fleet as one group instead of giving each runtime as much CPU as the supervisor; and it runs ``runtime_nice``
steps below the supervisor's priority, so the admin API and the supervisor's passes stay responsive while a fleet
starts (20 runtimes compiling and loading at once saturate a small machine for seconds).

What the backend knows survives a restart of the supervisor: pid, port, restarts and failures are kept in the
store's ``RuntimeRecord``. A runtime still running from an earlier supervisor is adopted when its command line
names its config file; a recorded pid that is gone counts as a crash.

Stopping never blocks the supervisor's loop: Update and Delete send SIGTERM and return; ``observe`` reports
``TERMINATING`` until the process is gone (escalating to SIGKILL past the deadline), then ``ABSENT``.

Control: every runtime gets its own bearer token, derived from the supervisor's control key (``control_tokens``),
in a file of its folder, ``control.token`` (mode 0600), named by ``SLSBOT_RUNTIME_TOKEN_FILE``; every control call
sends it. When the key rotates (``slsbot rotate-control-key`` rewrites ``control.key`` while the supervisor runs),
the next pass rewrites each running runtime's file with its new token and the previous one until the grace ends,
and the runtime reads it again on its next request: no runtime restarts. Until it has, a call answered 401 is
retried once with the previous key's token (``RuntimeHttpClient``). A deleted strategy's state file
is retired once its process is gone (renamed ``state.db.retired-<UTC time>``, kept for the record), as the
operator deletes the state claim: a Strategy created again under the same name starts on a new state file
instead of the drained one.

Credentials: when the account's ``credentials.secretRef`` names a Secret the folder declares (``DeclaredSecrets``),
the runtime gets it as a Kubernetes Secret volume would give it: ``<state_dir>/<namespace>/<name>/credentials/``
(mode 0700, one 0600 file per key, ``credentials_folder``), written just before the process starts, updated in
place when the Secret changes while it runs, and removed once it is gone; its config's ``account.credentialsDir``
names that folder. Otherwise the runtime reads its keys
from the environment, as before. The age key that decrypted the folder is never passed to a runtime.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine
from sqlmodel import Session

from slsbot.adapters.control_tokens import (
    RUNTIME_TOKEN_ENVIRONMENT,
    RUNTIME_TOKEN_FILE_ENVIRONMENT,
    ControlKey,
    ControlKeyError,
    ControlKeyFile,
    ControlKeys,
    write_private_file,
)
from slsbot.adapters.credentials_folder import remove_credentials_folder, write_credentials_folder
from slsbot.adapters.declared_secrets import DeclaredSecrets
from slsbot.adapters.process_table import (
    AdoptedProcess,
    ChildProcess,
    command_line,
    free_port,
    pid_runs,
    port_is_free,
    signal_group,
)
from slsbot.adapters.runtime_client import Health, RuntimeHttpClient
from slsbot.adapters.store import RuntimeRecord, get_runtime_record, list_runtime_records, save_runtime_record
from slsbot.api import RuntimeConfig
from slsbot.api.account import VaultAuth
from slsbot.domain.errors import BackendUnavailable, ConflictError, RuntimeUnreachable
from slsbot.domain.plan import Action, ActionKind, ObservedRuntime, RuntimeState
from slsbot.domain.resolve import ResolvedStrategy
from slsbot.domain.runtime_errors import last_error_line
from slsbot.domain.runtime_performance import RuntimePerformance
from slsbot.domain.runtime_spec import build_runtime_config, runtime_vault

log = logging.getLogger(__name__)

RUNTIME_HOST = "127.0.0.1"
LOG_TAIL_BYTES = 16_384  # how much of a runtime's log is read for why it exited
VOLATILE_WRITE_S = 5.0  # a record whose only change is its last /status is written at most this often
PROBE_THREADS = 8
SECRET_ENVIRONMENT = (
    "SLSBOT_ADMIN_TOKEN",
    "SLSBOT_OPERATOR_TOKEN",
    "SLSBOT_VIEWER_TOKEN",
    "SLSBOT_ADMIN_TOKEN_PREVIOUS",
    "SLSBOT_OPERATOR_TOKEN_PREVIOUS",
    "SLSBOT_VIEWER_TOKEN_PREVIOUS",
    RUNTIME_TOKEN_ENVIRONMENT,
    RUNTIME_TOKEN_FILE_ENVIRONMENT,
    "SLSBOT_OPERATOR_CONTROL_KEY",
    "SLSBOT_OPERATOR_CONTROL_KEY_PREVIOUS",
    # sops's age identity: it decrypts the folder in the supervisor, a runtime never needs it
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_KEY_CMD",
    "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
)


def runtime_environment(environ: Mapping[str, str], *, bytecode_cache: Path) -> dict[str, str]:
    """The runtime's environment: ours without the admin tokens and control secrets (each runtime gets its own
    token when it starts), with unbuffered output for the log, and bytecode cached in ``bytecode_cache`` even
    where ``PYTHONDONTWRITEBYTECODE`` is set: compiling the ~650 modules a runtime imports from source costs
    about a second of CPU per start, twenty times over when a fleet starts at once. ``PYTHONPYCACHEPREFIX`` keeps
    the cache out of the source tree; one the environment already sets is kept."""
    env = {key: value for key, value in environ.items() if key not in SECRET_ENVIRONMENT}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(bytecode_cache))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(frozen=True, slots=True)
class Probe:
    """What one pass asked a running runtime: its health, whether it is ready, and its ``/status``."""

    health: Health
    ready: bool
    status: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RuntimePaths:
    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "runtime.yaml"

    @property
    def state(self) -> Path:
        return self.folder / "state.db"

    @property
    def log(self) -> Path:
        return self.folder / "runtime.log"

    @property
    def control_token(self) -> Path:
        """The runtime's control token(s), rewritten when the control key rotates (mode 0600)."""
        return self.folder / "control.token"

    @property
    def credentials(self) -> Path:
        return self.folder / "credentials"


class LocalProcessBackend:
    """Implements ``slsbot.domain.ports.RuntimeBackend`` (and ``RolloutRuntimes``, for the A/B controller) with local
    processes. Used by one thread at a time."""

    def __init__(
        self,
        *,
        engine: Engine,
        client: RuntimeHttpClient,
        state_dir: Path,
        runtime_command: Sequence[str],
        stop_timeout: float,
        control_key: ControlKey | ControlKeys | ControlKeyFile,
        runtime_nice: int = 0,
        default_data_dir: str | None = None,
        bytecode_cache: Path | None = None,
        environ: Mapping[str, str] | None = None,
        secrets: DeclaredSecrets | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        vault_address: str | None = None,
        vault_auth: VaultAuth | None = None,
    ) -> None:
        self._engine = engine
        self._secrets = secrets
        self._credential_files: dict[tuple[str, str], dict[str, bytes]] = {}  # from render_config, for _start
        self._client = client
        self._state_dir = state_dir.resolve()
        self._command = list(runtime_command)
        self._stop_timeout = timedelta(seconds=stop_timeout)
        self._default_data_dir = default_data_dir
        self._vault_address = vault_address  # for accounts whose credentials.vault names none
        self._vault_auth = vault_auth  # file paths only: the runtime reads the token or secret id itself
        self._environ = runtime_environment(
            os.environ if environ is None else environ, bytecode_cache=bytecode_cache or self._state_dir / ".pycache"
        )
        self._clock = clock
        self._control_keys = _key_source(control_key)
        self._token_files: dict[tuple[str, str], str] = {}  # what each running runtime's token file holds
        self._runtime_nice = runtime_nice
        self._processes: dict[tuple[str, str], ChildProcess | AdoptedProcess] = {}
        self._last_seen_alive: dict[tuple[str, str], datetime] = {}
        self._retire_on_exit: set[tuple[str, str]] = set()  # deleted: retire the state file once the process is gone
        self._log_offsets: dict[tuple[str, str], int] = {}  # where each runtime's log stood when it last started
        self._records: dict[tuple[str, str], RuntimeRecord] = {}  # every runtime's record, as last loaded or saved
        self._written: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}  # what the database holds, and when
        self._probed: dict[tuple[str, str], Probe] = {}  # this pass's answers, by probe()
        self._probes: ThreadPoolExecutor | None = None

    def paths(self, namespace: str, name: str) -> RuntimePaths:
        return RuntimePaths(self._state_dir / namespace / name)

    # --- RuntimeBackend ---------------------------------------------------------------------------------

    def render_config(self, resolved: ResolvedStrategy) -> RuntimeConfig:
        strategy = resolved.strategy
        port = self._port_for(strategy.namespace, strategy.name)
        paths = self.paths(strategy.namespace, strategy.name)
        files = self._declared_credentials(resolved)
        key = (strategy.namespace, strategy.name)
        if files is None:
            self._credential_files.pop(key, None)
        else:
            if self._credential_files.get(key, files) != files and paths.credentials.is_dir():
                self._refresh_credentials(paths, files)
            self._credential_files[key] = files
        return build_runtime_config(
            resolved,
            state_path=str(paths.state),
            port=port,
            host=RUNTIME_HOST,
            credentials_dir=str(paths.credentials) if files is not None else None,
            default_data_dir=self._default_data_dir,
            vault=runtime_vault(
                resolved.account.spec.credentials, address=self._vault_address, default_auth=self._vault_auth
            ),
        )

    def _refresh_credentials(self, paths: RuntimePaths, files: dict[str, bytes]) -> None:
        """The Secret changed while its runtime runs: update its folder in place, as the kubelet updates a mounted
        Secret (a runtime halted on an authentication error retries with it)."""
        try:
            write_credentials_folder(paths.credentials, files)
        except OSError as exc:
            log.warning("could not update the credentials folder %s: %s", paths.credentials, exc.strerror)
        else:
            log.info("updated the credentials folder %s: its Secret changed", paths.credentials)

    def _declared_credentials(self, resolved: ResolvedStrategy) -> dict[str, bytes] | None:
        """The credentials folder's files for the account's ``secretRef``, when the folder declares that Secret."""
        credentials = resolved.account.spec.credentials
        if self._secrets is None or credentials is None or credentials.secret_ref is None:
            return None
        return self._secrets.credential_files(resolved.account.namespace, credentials.secret_ref)

    def probe(self, keys: Sequence[tuple[str, str]]) -> None:
        """Ask every running runtime of ``keys`` for ``/readyz`` and ``/status`` at once, for this pass's ``observe``
        calls: sequential probes made a pass as slow as the sum of the runtimes' answers (a second or more while a
        fleet starts), and one hung runtime cost every other its probe timeout."""
        loaded = (self._load(namespace, name) for namespace, name in keys)
        running = [record for record in loaded if record is not None and record.pid is not None and not record.stopping]
        self._probed = {}
        if not running:
            return
        if self._probes is None:
            self._probes = ThreadPoolExecutor(max_workers=PROBE_THREADS, thread_name_prefix="runtime-probe")
        answers = self._probes.map(self._ask, running)
        self._probed = {(r.namespace, r.name): answer for r, answer in zip(running, answers, strict=True)}

    def _ask(self, record: RuntimeRecord) -> Probe:
        """``/healthz`` first, as a kubelet's liveness probe; then, from a healthy runtime, ``/readyz`` and
        ``/status`` (one that does not answer costs one probe timeout, not three)."""
        base_url = _base_url(record)
        self._keep_token_file(record)
        health = self._client.health(base_url)
        if not health.healthy:
            return Probe(health, False, {})
        ready = self._client.is_ready(base_url)
        try:
            return Probe(health, ready, self._client.status(base_url, token=self._token(record)))
        except RuntimeUnreachable:
            return Probe(health, ready, {})

    def observe(self, namespace: str, name: str) -> ObservedRuntime:
        record = self._load(namespace, name)
        if record is None:
            return ObservedRuntime()
        process = self._process_of(record)
        if record.pid is not None and (process is None or not process.alive()):
            record = self._note_exit(record, process)
        if record.pid is None:
            state = RuntimeState.ABSENT if record.exited_at is None else RuntimeState.EXITED
            return self._observed(record, state)
        now = self._clock()
        self._last_seen_alive[(namespace, name)] = now
        if record.stopping:
            self._escalate_stop(record)
            return self._observed(record, RuntimeState.TERMINATING)
        probed = self._probed.pop((namespace, name), None)
        answer = probed if probed is not None else self._ask(record)
        if not answer.health.healthy:
            return self._silent(record, answer.health, now)
        if record.unresponsive_since is not None or not record.answered_since_start:
            if record.unresponsive_since is not None:
                log.info("runtime %s/%s answers its health check again", namespace, name)
            record.unresponsive_since = None
            record.answered_since_start = True
        ready, runtime_status = answer.ready, answer.status
        record.last_status = runtime_status or record.last_status
        if runtime_status.get("heartbeat"):
            with contextlib.suppress(ValueError):
                record.last_heartbeat = datetime.fromisoformat(str(runtime_status["heartbeat"]).replace("Z", "+00:00"))
        if ready and not record.ready_since_start:
            record.ready_since_start = True
            record.consecutive_failures = 0
        record = self._save(record)
        never_ready = not record.ready_since_start and record.started_at is not None
        return self._observed(
            record,
            RuntimeState.READY if ready else RuntimeState.STARTING,
            runtime_status,
            not_ready_for=now - record.started_at if never_ready else None,
        )

    def _silent(self, record: RuntimeRecord, health: Health, now: datetime) -> ObservedRuntime:
        """A live process whose ``/healthz`` does not say healthy: still starting (it never answered since it
        started), or unresponsive (it did, and now does not): the plan restarts it once that lasts too long."""
        if not record.answered_since_start:
            since = record.started_at or now
            return self._observed(record, RuntimeState.STARTING, detail=health.reason, unresponsive_for=now - since)
        if record.unresponsive_since is None:
            log.warning(
                "runtime %s/%s (pid %s) stopped answering: %s", record.namespace, record.name, record.pid, health.reason
            )
            record.unresponsive_since = now
            record = self._save(record)
        return self._observed(
            record,
            RuntimeState.UNRESPONSIVE,
            detail=health.reason,
            unresponsive_for=now - record.unresponsive_since,
        )

    def execute(self, namespace: str, name: str, action: Action) -> None:
        record = self._load(namespace, name) or RuntimeRecord(namespace=namespace, name=name)
        running = record.pid is not None
        if action.kind in (ActionKind.CREATE, ActionKind.RESTART, ActionKind.UPDATE):
            if running and action.kind is ActionKind.RESTART and self._alive(record):
                # Alive but silent (a liveness restart), or alive and unhealthy (the healing ladder's restart).
                record = self._kill_silent(record, action.reason, action.message)
                running = False
            if running:
                if action.kind is not ActionKind.UPDATE:
                    raise ConflictError(f"runtime {namespace}/{name} still runs as pid {record.pid}")
                self._begin_stop(record)
                return
            assert action.desired is not None
            self._start(
                record, action.desired.config, action.desired.config_hash, restart=action.kind is ActionKind.RESTART
            )
        elif action.kind is ActionKind.SET_PAUSED:
            assert action.desired is not None
            self._client.set_paused(self._running_url(record), paused=action.desired.paused, token=self._token(record))
        elif action.kind is ActionKind.SET_TRADING_MODE:
            assert action.trading_mode is not None
            self._client.set_trading_mode(
                self._running_url(record),
                mode=action.trading_mode,
                flatten=action.flatten,
                reason=f"{action.reason}: {action.message}",
                token=self._token(record),
            )
        elif action.kind is ActionKind.DRAIN:
            self._client.shutdown(
                self._running_url(record),
                cancel_orders=action.cancel_orders,
                flatten=action.flatten,
                token=self._token(record),
            )
        elif action.kind is ActionKind.DELETE:
            if running:
                self._retire_on_exit.add((namespace, name))
                self._begin_stop(record)
            else:
                record.exited_at = None
                self._save(record)
                self._retire_state(namespace, name)

    # --- RolloutRuntimes ---------------------------------------------------------------------------------

    def performance(self, namespace: str, name: str, *, since: int) -> RuntimePerformance:
        url, token = self._reach(namespace, name)
        return self._client.performance(url, since=since, token=token)

    def set_allocation(self, namespace: str, name: str, percent: float | None) -> None:
        url, token = self._reach(namespace, name)
        self._client.set_allocation(url, percent=percent, token=token)

    # --- account risk (RuntimeBackend) -----------------------------------------------------------------

    def runtime_status(self, namespace: str, name: str) -> dict[str, Any]:
        url, token = self._reach(namespace, name)
        return self._client.status(url, token=token)

    def push_headroom(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        url, token = self._reach(namespace, name)
        return self._client.push_headroom(url, body=body, token=token)

    # --- lifecycle beyond the port ----------------------------------------------------------------------

    def stop_all(self) -> None:
        """Stop every runtime: SIGTERM to all at once, SIGKILL to any still running after ``stop_timeout``."""
        if self._probes is not None:
            self._probes.shutdown(wait=True)
            self._probes = None
        with Session(self._engine) as session:
            records = [r for r in list_runtime_records(session) if r.pid is not None]
        for record in records:
            if self._process_of(record) is not None:
                signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout.total_seconds()
        pending = [r for r in records if self._alive(r)]
        while pending and time.monotonic() < deadline:
            time.sleep(0.05)
            pending = [r for r in pending if self._alive(r)]
        for record in pending:
            log.warning(
                "runtime %s/%s ignored SIGTERM for %s; killing it", record.namespace, record.name, self._stop_timeout
            )
            signal_group(record.pid, signal.SIGKILL)
        kill_deadline = time.monotonic() + 5
        while any(self._alive(r) for r in pending) and time.monotonic() < kill_deadline:
            time.sleep(0.05)
        for record in records:
            record.pid = None
            record.stopping = False
            record.stop_requested_at = None
            self._save(record)
            self._processes.pop((record.namespace, record.name), None)
            remove_credentials_folder(self.paths(record.namespace, record.name).credentials)

    def base_url(self, namespace: str, name: str) -> str | None:
        record = self._load(namespace, name)
        return None if record is None or record.pid is None else _base_url(record)

    def token_for_url(self, base_url: str) -> tuple[str, ...] | None:
        """The control tokens of the runtime serving ``base_url`` (``http://127.0.0.1:<port>``), for callers that
        know only the URL (the admin API's client); None for a URL no runtime of ours has."""
        port = base_url.rstrip("/").rsplit(":", 1)[-1]
        with Session(self._engine) as session:
            for record in list_runtime_records(session):
                if record.port is not None and str(record.port) == port:
                    return self._token(record)
        return None

    # --- internals --------------------------------------------------------------------------------------

    def _load(self, namespace: str, name: str) -> RuntimeRecord | None:
        """The runtime's record, from memory once read: this backend is the only writer of runtime records, so
        the database is read once per runtime, not several times per pass."""
        key = (namespace, name)
        record = self._records.get(key)
        if record is None:
            with Session(self._engine) as session:
                record = get_runtime_record(session, namespace=namespace, name=name)
            if record is None:
                return None
            self._records[key] = record
            self._written[key] = (_persisted(record), time.monotonic())
        return record

    def _save(self, record: RuntimeRecord) -> RuntimeRecord:
        """Keep ``record`` and write it to the database when what it says changed: at once for the lifecycle (pid,
        port, restarts, exits...), at most every ``VOLATILE_WRITE_S`` for what only moves with each probe (the last
        ``/status`` and heartbeat, which the Strategy's status carries anyway)."""
        key = (record.namespace, record.name)
        self._records[key] = record
        persisted = _persisted(record)
        written = self._written.get(key)
        if written is not None and written[0] == persisted and time.monotonic() - written[1] < VOLATILE_WRITE_S:
            return record
        with Session(self._engine) as session:
            stored = save_runtime_record(session, record=record, now=self._clock())
        self._records[key] = stored
        self._written[key] = (persisted, time.monotonic())
        return stored

    def forget(self, namespace: str, name: str) -> None:
        """The Strategy is gone and the store dropped its record: drop what this backend remembers of it too."""
        key = (namespace, name)
        self._records.pop(key, None)
        self._written.pop(key, None)
        self._probed.pop(key, None)
        self._credential_files.pop(key, None)

    def _alive(self, record: RuntimeRecord) -> bool:
        process = self._process_of(record)
        return process is not None and process.alive()

    def _process_of(self, record: RuntimeRecord) -> ChildProcess | AdoptedProcess | None:
        """The process handle for ``record``; adopts a runtime left by an earlier supervisor when it is ours."""
        key = (record.namespace, record.name)
        process = self._processes.get(key)
        if process is not None and process.pid == record.pid:
            return process
        if record.pid is None or not pid_runs(record.pid):
            return None
        if record.config_path is None or record.config_path not in command_line(record.pid):
            return None  # the pid was reused by another program
        log.info(
            "adopting runtime %s/%s (pid %s) from an earlier supervisor", record.namespace, record.name, record.pid
        )
        adopted = AdoptedProcess(record.pid)
        self._processes[key] = adopted
        return adopted

    def _kill_silent(self, record: RuntimeRecord, reason: str, why: str) -> RuntimeRecord:
        """SIGKILL a runtime that is alive but does not answer (SIGTERM may never be handled: a stopped or hung
        process) or that the healing ladder restarts, wait until it is gone, and count it as a failure, as a kubelet
        does after a failed liveness probe. The runtime is exactly-once across a SIGKILL (its state file)."""
        log.warning("runtime %s/%s (pid %s): %s; killing it", record.namespace, record.name, record.pid, reason)
        signal_group(record.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self._alive(record) and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._alive(record):
            raise BackendUnavailable(f"runtime {record.namespace}/{record.name} (pid {record.pid}) survived SIGKILL")
        record = self._note_exit(record, self._processes.get((record.namespace, record.name)))
        record.last_error = f"killed ({reason}): {why}"[:1000]
        return self._save(record)

    def _note_exit(self, record: RuntimeRecord, process: ChildProcess | AdoptedProcess | None) -> RuntimeRecord:
        self._processes.pop((record.namespace, record.name), None)
        remove_credentials_folder(self.paths(record.namespace, record.name).credentials)
        last_seen_alive = self._last_seen_alive.pop((record.namespace, record.name), None)
        exit_code = process.exit_code if process is not None else None
        record.unresponsive_since = None
        record.answered_since_start = False
        if record.stopping:
            log.info("runtime %s/%s (pid %s) stopped", record.namespace, record.name, record.pid)
            record.exited_at = None
            if (record.namespace, record.name) in self._retire_on_exit:
                self._retire_state(record.namespace, record.name)
        else:
            log.warning(
                "runtime %s/%s (pid %s) exited with code %s", record.namespace, record.name, record.pid, exit_code
            )
            # It died between the last pass that saw it alive and now; the earlier bound keeps the first
            # restart immediate (BackoffPolicy's zero delay) in the very pass that notices the exit.
            record.exited_at = last_seen_alive or self._clock()
            record.consecutive_failures += 1
            record.last_error = _exit_description(exit_code, self._log_tail(record))
        record.pid = None
        record.exit_code = exit_code
        record.stopping = False
        record.stop_requested_at = None
        record.ready_since_start = False
        return self._save(record)

    def _log_tail(self, record: RuntimeRecord) -> str:
        """What the runtime wrote to its log since it last started (at most the last 16 KB)."""
        path = Path(record.log_path) if record.log_path else self.paths(record.namespace, record.name).log
        start = self._log_offsets.pop((record.namespace, record.name), 0)
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(start, size - LOG_TAIL_BYTES) if start <= size else max(0, size - LOG_TAIL_BYTES))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _observed(
        self,
        record: RuntimeRecord,
        state: RuntimeState,
        runtime_status: dict | None = None,
        *,
        detail: str = "",
        unresponsive_for: timedelta | None = None,
        not_ready_for: timedelta | None = None,
    ) -> ObservedRuntime:
        runtime_status = runtime_status or {}
        if state is RuntimeState.EXITED and not detail:
            detail = record.last_error or ""
        paused = runtime_status.get("paused")
        return ObservedRuntime(
            state=state,
            config_hash=record.config_hash,
            paused=paused if isinstance(paused, bool) else None,
            restarts=record.restarts,
            consecutive_failures=record.consecutive_failures,
            exited_at=record.exited_at,
            workload=f"local-process/{record.pid}" if record.pid is not None else None,
            pid=record.pid,
            runtime_status=runtime_status,
            detail=detail,
            unresponsive_for=unresponsive_for,
            not_ready_for=not_ready_for,
        )

    def _port_for(self, namespace: str, name: str) -> int:
        record = self._load(namespace, name)
        if record is not None and record.port is not None:
            if self._alive(record) or port_is_free(record.port):
                return record.port
            log.warning(
                "port %s of runtime %s/%s was taken while it was down; choosing another", record.port, namespace, name
            )
        with Session(self._engine) as session:
            taken = [r.port for r in list_runtime_records(session) if r.port is not None]
        record = record or RuntimeRecord(namespace=namespace, name=name)
        record.port = free_port(avoid=taken)
        self._save(record)
        return record.port

    def _start(self, record: RuntimeRecord, config: RuntimeConfig, config_hash: str, *, restart: bool) -> None:
        paths = self.paths(record.namespace, record.name)
        try:
            paths.folder.mkdir(parents=True, exist_ok=True)
            if config.account.credentials_dir is not None:
                files = self._credential_files.get((record.namespace, record.name), {})
                write_credentials_folder(Path(config.account.credentials_dir), files)
            staging = paths.config.with_suffix(".yaml.tmp")
            staging.write_text(yaml.safe_dump(config.to_wire(), sort_keys=False))
            os.replace(staging, paths.config)
            self._write_token_file(record, force=True)
            with paths.log.open("ab") as log_file:
                self._log_offsets[(record.namespace, record.name)] = log_file.tell()
                popen = subprocess.Popen(
                    [*self._command, "--config", str(paths.config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env={**self._environ, RUNTIME_TOKEN_FILE_ENVIRONMENT: str(paths.control_token)},
                    process_group=0,
                )
        except (OSError, ControlKeyError) as exc:  # ControlKeyError: its token file could not be written
            remove_credentials_folder(paths.credentials)
            raise BackendUnavailable(f"cannot start runtime {record.namespace}/{record.name}: {exc}") from exc
        self._lower_priority(popen.pid)
        self._processes[(record.namespace, record.name)] = ChildProcess(popen)
        record.pid = popen.pid
        record.port = config.server.port
        record.config_hash = config_hash
        record.config_path = str(paths.config)
        record.log_path = str(paths.log)
        record.started_at = self._clock()
        record.exited_at = None
        record.exit_code = None
        record.stopping = False
        record.stop_requested_at = None
        record.ready_since_start = False
        record.answered_since_start = False
        record.unresponsive_since = None
        if restart:
            record.restarts += 1
        self._save(record)
        log.info(
            "started runtime %s/%s as pid %s on port %s (log %s)",
            record.namespace,
            record.name,
            popen.pid,
            record.port,
            paths.log,
        )

    def _lower_priority(self, pid: int) -> None:
        """Nice the new runtime, before it starts its threads (they inherit it): its imports take ~0.5 s."""
        if self._runtime_nice <= 0:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, 0) + self._runtime_nice)
        except OSError as exc:  # gone already, or not permitted: it runs at the supervisor's priority
            log.warning("could not lower the priority of runtime pid %s: %s", pid, exc)

    def _begin_stop(self, record: RuntimeRecord) -> None:
        if record.pid is None:
            return
        if not record.stopping:
            signal_group(record.pid, signal.SIGTERM)
            record.stopping = True
            record.stop_requested_at = self._clock()
            self._save(record)

    def _escalate_stop(self, record: RuntimeRecord) -> None:
        started = record.stop_requested_at or self._clock()
        if record.pid is not None and self._clock() - started > self._stop_timeout:
            log.warning(
                "runtime %s/%s ignored SIGTERM for %s; killing it", record.namespace, record.name, self._stop_timeout
            )
            signal_group(record.pid, signal.SIGKILL)

    def _token(self, record: RuntimeRecord) -> tuple[str, ...]:
        """The tokens to try with ``record``'s runtime: its current one, then the previous key's during a grace."""
        return self._control_keys().tokens_for(record.namespace, record.name, now=self._clock())

    def _keep_token_file(self, record: RuntimeRecord) -> None:
        """Rewrite a running runtime's token file when what it should hold changed: the key rotated, or the
        previous key's grace ended."""
        try:
            self._write_token_file(record, force=False)
        except ControlKeyError as exc:
            log.warning("runtime %s/%s keeps its old control token file: %s", record.namespace, record.name, exc)

    def _write_token_file(self, record: RuntimeRecord, *, force: bool) -> None:
        key = (record.namespace, record.name)
        text = self._control_keys().token_file_text(record.namespace, record.name, now=self._clock())
        if not force and self._token_files.get(key) == text:
            return
        write_private_file(self.paths(record.namespace, record.name).control_token, text)
        self._token_files[key] = text

    def _retire_state(self, namespace: str, name: str) -> None:
        """Move a deleted strategy's state file (and its SQLite journal files) aside, keeping it for the record."""
        self._retire_on_exit.discard((namespace, name))
        state = self.paths(namespace, name).state
        if not state.exists():
            return
        retired = state.with_name(f"{state.name}.retired-{self._clock().strftime('%Y%m%dT%H%M%SZ')}")
        try:
            for suffix in ("-wal", "-shm", ""):
                source = state.with_name(state.name + suffix)
                if source.exists():
                    os.replace(source, retired.with_name(retired.name + suffix))
        except OSError as exc:
            log.warning("could not retire the state file %s of deleted runtime %s/%s: %s", state, namespace, name, exc)
            return
        log.info("retired the state file of deleted runtime %s/%s: %s", namespace, name, retired)

    def _reach(self, namespace: str, name: str) -> tuple[str, tuple[str, ...]]:
        """A running runtime's control URL and its token; RuntimeUnreachable when it is not running."""
        record = self._load(namespace, name) or RuntimeRecord(namespace=namespace, name=name)
        return self._running_url(record), self._token(record)

    def _running_url(self, record: RuntimeRecord) -> str:
        if record.pid is None or record.port is None:
            raise RuntimeUnreachable(f"runtime {record.namespace}/{record.name} is not running")
        return _base_url(record)


def _key_source(control_key: ControlKey | ControlKeys | ControlKeyFile) -> Callable[[], ControlKeys]:
    """The keys as of now: a key file is read again when it changes (a rotation while the supervisor runs)."""
    if isinstance(control_key, ControlKeyFile):
        return control_key.keys
    keys = control_key if isinstance(control_key, ControlKeys) else ControlKeys(control_key)
    return lambda: keys


def _persisted(record: RuntimeRecord) -> dict[str, Any]:
    """What a write of ``record`` must not wait for: all of it but what changes with every probe."""
    return record.model_dump(exclude={"id", "last_status", "last_heartbeat", "updated_at"})


def _base_url(record: RuntimeRecord) -> str:
    return f"http://{RUNTIME_HOST}:{record.port}"


def _exit_description(exit_code: int | None, log_tail: str) -> str:
    """``exit code 2: DataError: marketData.dataDir: no candles for ...``: how the runtime ended and its last error."""
    if exit_code is None:
        how = "exited (exit code unknown: adopted from an earlier supervisor)"
    elif exit_code < 0:
        try:
            how = f"killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            how = f"killed by signal {-exit_code}"
    else:
        how = f"exit code {exit_code}"
    last_words = last_error_line(log_tail)
    return f"{how}: {last_words}" if last_words else how
