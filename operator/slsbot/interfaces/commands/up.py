"""``slsbot up -f DIR``: the embedded local supervisor. Loads the YAML in DIR, runs each Strategy as a local
runtime process reconciled by the same code as the kopf operator, and serves the admin API. While it runs it
watches DIR and applies each change as ``kubectl apply`` would (``adapters.manifest_watch``).

Exit codes: 0 after a clean stop (Ctrl-C or SIGTERM: every runtime gets SIGTERM and flushes its state),
2 when the settings, the YAML, the admin address or the state folder are unusable (nothing is started then;
one line on stderr names the path and the fix).
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from slsbot.adapters.admin_connection import AdminConnection, AdminConnectionError, write_admin_connection
from slsbot.adapters.ccxt_catalog import ccxt_exchange_ids
from slsbot.adapters.control_metrics import ControlMetrics
from slsbot.adapters.control_tokens import ControlKeyError, ControlKeyFile
from slsbot.adapters.declared_secrets import DeclaredSecrets
from slsbot.adapters.manifest_folder import load_manifest_folder, validation_problems
from slsbot.adapters.manifest_watch import FolderSyncedStore, ManifestWatcher, describe_sync
from slsbot.adapters.notifiers import FolderSecrets, WebhookSender
from slsbot.adapters.postmortems import LocalPostmortems
from slsbot.adapters.processes import LocalProcessBackend
from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.sops import SopsCli
from slsbot.adapters.state_folder import (
    StateFolderClaim,
    StateFolderError,
    claim_state_folder,
    open_state_store,
    store_failure,
)
from slsbot.adapters.store import AuditChainBroken, prune_audit, sync_desired_objects
from slsbot.adapters.supervisor_store import (
    SqlIncidentStore,
    SqlOwnedObjects,
    SqlRuntimeStatuses,
    SqlSupervisorStore,
)
from slsbot.adapters.tuning_processes import LocalTuningRunner, TuningProcesses
from slsbot.domain.errors import InvalidSpecError
from slsbot.domain.plan import BackoffPolicy, LivenessPolicy
from slsbot.interfaces.admin_api import create_app
from slsbot.interfaces.admin_api.auth import TokenRegistry
from slsbot.interfaces.admin_api.hardening import server_options
from slsbot.interfaces.local_backups import LocalBackups
from slsbot.interfaces.local_reports import ScheduledDailyReports, local_daily_reports
from slsbot.services.account_risk import AccountRiskSettings
from slsbot.services.incidents import (
    DailyEquity,
    IncidentService,
    NotificationDirectory,
    PassIncidents,
    StrategySignals,
    accounts_cut_every,
    run_notifier,
)
from slsbot.services.reconcile import CachedConfigCheck, Catalog, ExperimentPorts
from slsbot.services.supervisor import SupervisorOptions, run_supervisor
from slsbot.settings import ControlPlaneSettings

HELP = "Run the embedded local supervisor over a folder of slsbot YAML"
# The admin API's threads share the interpreter lock with the supervisor's pass (SQL, YAML, models: pure Python).
# Python hands the lock over every 5 ms by default; each of the dozen hand-overs of a request could wait that long,
# so a request took 60-90 ms at the 99th percentile while a fleet of 20 started. 1 ms: about 20 ms less.
INTERPRETER_SWITCH_INTERVAL_S = 0.001
log = logging.getLogger("slsbot.up")


ACCOUNT_RISK_TTL_PASSES = 10  # how many passes a pushed headroom lasts (services.account_risk)
#: Seconds between two passes of the audit retention (when SLSBOT_ADMIN_API__AUDIT_RETENTION_DAYS is set).
AUDIT_RETENTION_INTERVAL_S = 3600.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        dest="folder",
        type=Path,
        required=True,
        help="Folder of slsbot YAML (every *.yaml and *.yml in it, multi-document).",
    )
    parser.add_argument("--host", default=None, help="Admin API address (default 127.0.0.1, or SLSBOT_ADMIN_HOST).")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="Admin API port (default 8080, or SLSBOT_ADMIN_PORT); 0 picks a free one.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="Supervisor database, runtime state and logs (default var/slsbot, or SLSBOT_STATE_DIR).",
    )


def load_settings(args: argparse.Namespace) -> ControlPlaneSettings:
    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["admin_host"] = args.host
    if args.port is not None:
        overrides["admin_port"] = args.port
    if args.state_dir is not None:
        overrides["state_dir"] = args.state_dir
    return ControlPlaneSettings(**overrides)


def known_exchanges() -> frozenset[str] | None:
    """ccxt's exchange ids, read without importing ccxt (``adapters.ccxt_catalog``); None without ccxt."""
    return ccxt_exchange_ids()


def known_components() -> frozenset[str] | None:
    """The strategy library's ids, so an unknown component is InvalidSpec naming the field, not a crash loop."""
    try:
        from slsbot_runtime.strategy.registry import LIBRARY
    except ImportError:
        return None
    return frozenset(LIBRARY.ids)


def runtime_config_check() -> CachedConfigCheck:
    """The runtime's own check of a RuntimeConfig, run before a runtime is started (one validation, both sides)."""
    from slsbot_runtime.app import config_problems

    return CachedConfigCheck(config_problems)


def run_audit_retention(
    *, engine: Any, keep: timedelta, stop: threading.Event, interval: float = AUDIT_RETENTION_INTERVAL_S
) -> None:
    """Remove the audit records older than ``keep`` now and then every ``interval`` seconds until ``stop``
    (``prune_audit``: the chain stays verifiable). A broken chain is not pruned: the error says so, once a pass."""
    while True:
        now = datetime.now(UTC)
        try:
            with Session(engine) as session:
                removed = prune_audit(session, before=now - keep, now=now)
            if removed:
                log.info("audit retention: removed %d records older than %s", removed, keep)
        except AuditChainBroken as exc:
            log.error("%s; run slsbot audit verify", exc)
        except Exception:
            log.exception("audit retention failed; trying again in %.0f s", interval)
        if stop.wait(interval):
            return


def _fail(message: str) -> int:
    print(f"slsbot up: {message}", file=sys.stderr, flush=True)
    return 2


def _started(server: uvicorn.Server, thread: threading.Thread, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    return server.started


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per probe of every runtime is noise
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # four lines per look at the backup schedules
    sys.setswitchinterval(INTERPRETER_SWITCH_INTERVAL_S)
    try:
        settings = load_settings(args)
    except ValidationError as exc:
        return _fail("invalid settings:\n  " + "\n  ".join(validation_problems(exc)))
    sops = SopsCli(tuple(settings.sops_command), timeout=settings.sops_timeout)
    try:
        loaded = load_manifest_folder(args.folder, sops=sops)
    except InvalidSpecError as exc:
        return _fail(str(exc))
    resources = loaded.resources
    try:
        listener = socket.create_server((settings.admin_host, settings.admin_port), reuse_port=False)
    except OSError as exc:
        return _fail(
            f"cannot listen on {settings.admin_host}:{settings.admin_port} ({exc.strerror}); "
            "pass a free one with --port"
        )
    claim: StateFolderClaim | None = None

    def refuse(message: str) -> int:
        listener.close()
        if claim is not None:
            claim.release()
        return _fail(message)

    try:
        claim = claim_state_folder(settings.state_dir)  # held while this process runs
        control_key = ControlKeyFile(settings.control_key_path)  # read again when rotated
    except (StateFolderError, ControlKeyError) as exc:
        return refuse(str(exc))
    admin_token = settings.admin_token or SecretStr(secrets.token_urlsafe(32))
    try:
        engine = open_state_store(settings.database_path)
        with Session(engine) as session:
            outcome = sync_desired_objects(session, resources=resources, now=datetime.now(UTC))
    except StateFolderError as exc:
        return refuse(str(exc))
    except DBAPIError as exc:
        return refuse(str(store_failure(settings.database_path, exc)))
    log.info("loaded %d objects from %s: %s", len(resources), args.folder, describe_sync(outcome))
    watcher = ManifestWatcher(args.folder, loaded, interval=settings.watch_interval, sops=sops)
    declared_secrets = DeclaredSecrets(loaded.secrets, fallback=FolderSecrets(settings.incident_secrets_dir))
    store = FolderSyncedStore(SqlSupervisorStore(engine), engine=engine, watcher=watcher, secrets=declared_secrets)
    store.report_when_reconciled()

    client = RuntimeHttpClient(timeout=settings.probe_timeout)
    backend = LocalProcessBackend(
        engine=engine,
        client=client,
        state_dir=settings.state_dir,
        runtime_command=settings.runtime_command,
        stop_timeout=settings.stop_timeout,
        control_key=control_key,
        runtime_nice=settings.runtime_nice,
        bytecode_cache=settings.bytecode_cache,
        vault_address=settings.vault_addr,
        vault_auth=settings.vault_auth(),
        secrets=declared_secrets,
    )
    tuning = LocalTuningRunner(
        TuningProcesses(
            settings.tuning_dir,
            nice=settings.runtime_nice,
            stop_timeout=settings.stop_timeout,
            bytecode_cache=settings.bytecode_cache,
        )
    )
    metrics = ControlMetrics()
    postmortems = LocalPostmortems(engine, settings.state_dir)
    sender = WebhookSender(
        declared_secrets,
        timeout=settings.notify_timeout,
        runbook_base_url=settings.runbook_base_url,
    )
    directory = NotificationDirectory()
    incidents = IncidentService(
        SqlIncidentStore(engine),
        sender,
        notifications_for=directory,
        postmortems=postmortems,
        events=metrics.incidents,
    )
    pass_incidents = PassIncidents(
        incidents, runtime_status=SqlRuntimeStatuses(engine), directory=directory, equity=DailyEquity(backend)
    )
    app = create_app(
        metrics=metrics,
        engine=engine,
        tokens=TokenRegistry.from_tokens(**settings.token_registry_arguments(admin_token)),
        runtime_client=RuntimeHttpClient(timeout=max(settings.probe_timeout, 5.0), token_for_url=backend.token_for_url),
        state_dir=settings.state_dir,
        incidents=incidents,
        hardening=settings.admin_api,
    )
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", **server_options(settings.admin_api))
    )
    serving = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="admin-api", daemon=True)

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    # The catalog imports the strategy library (numpy): before the admin API serves, so that this import, which
    # holds the interpreter lock for its whole compile where bytecode is not cached, never delays a request.
    options = SupervisorOptions(
        tick_interval=settings.tick_interval,
        backoff=BackoffPolicy(
            base=timedelta(seconds=settings.backoff_base), cap=timedelta(seconds=settings.backoff_cap)
        ),
        drain_wait=timedelta(seconds=settings.drain_wait),
        healing_metrics=metrics,
        strategy_signals=StrategySignals(SqlIncidentStore(engine)),
        size_cuts=accounts_cut_every(SqlIncidentStore(engine)),
        record_signals=incidents.record_signals,
        liveness=LivenessPolicy(
            timeout=timedelta(seconds=settings.liveness_timeout),
            startup_timeout=timedelta(seconds=settings.startup_timeout),
        ),
        catalog=Catalog(
            known_exchanges=known_exchanges(),
            known_components=known_components(),
            check_config=runtime_config_check(),
        ),
        # a headroom lasts ten passes: one missed pass changes nothing, a supervisor gone is noticed within seconds
        account_risk=AccountRiskSettings(ttl=timedelta(seconds=ACCOUNT_RISK_TTL_PASSES * settings.tick_interval)),
    )
    serving.start()
    if not _started(server, serving, timeout=30):
        server.should_exit = True
        engine.dispose()
        return _fail("the admin API did not start; see the log above")

    host, port = listener.getsockname()[:2]
    url = f"http://{host}:{port}"
    print(f"slsbot admin API: {url}  (Control Center: {url}/ui, docs: {url}/docs)", flush=True)
    generated = settings.admin_token is None
    connection_path = settings.admin_connection_path
    try:  # for slsbot get: the URL, and the token when it was generated (mode 0600)
        write_admin_connection(connection_path, AdminConnection(url=url, token=admin_token if generated else None))
    except AdminConnectionError as exc:
        log.warning("%s; slsbot get will need --url and a token", exc)
    if generated:
        # The one place a secret is printed: once, to stdout, for the person who started the supervisor.
        print(
            f"admin token (admin role, generated; slsbot get reads it from {connection_path}): "
            f"{admin_token.get_secret_value()}",
            flush=True,
        )
    else:
        print("admin token: the value of SLSBOT_ADMIN_TOKEN", flush=True)

    watching = watcher.start(stop)
    notifying = threading.Thread(
        target=run_notifier,
        kwargs={
            "service": incidents,
            "stop": stop,
            "interval": settings.notify_interval,
            "clock": lambda: datetime.now(UTC),
        },
        name="incident-notifier",
        daemon=True,
    )
    notifying.start()
    retention = settings.admin_api.audit_retention_days
    pruning = threading.Thread(
        target=run_audit_retention,
        kwargs={"engine": engine, "keep": timedelta(days=retention or 1), "stop": stop},
        name="audit-retention",
        daemon=True,
    )
    if retention is not None:
        pruning.start()
    # Each BackupSchedule's due jobs, on APScheduler's thread (docs/concepts/backups.md). It reads and writes the
    # store through its own SqlSupervisorStore: the folder-synced one applies the watcher's plans, the loop's job.
    backup_store = SqlSupervisorStore(engine)
    backups = LocalBackups(
        resources=lambda: [item.resource for item in backup_store.desired_objects() if not item.deleting],
        state_dir=settings.state_dir,
        secrets_dir=settings.incident_secrets_dir,
        store_path=settings.database_path,
        metrics=metrics.backups,
        engine=engine,
        record_signals=incidents.record_signals,
        record_status=backup_store.record_status,
    )
    backups.start()
    # The daily account report (docs/how-to/daily-report.md): a cron job on its own APScheduler, over its own store.
    report_store = SqlSupervisorStore(engine)
    daily_reports = ScheduledDailyReports(
        reports=local_daily_reports(
            resources=lambda: [item.resource for item in report_store.desired_objects() if not item.deleting],
            state_dir=settings.state_dir,
            engine=engine,
            sender=sender,
        ),
        settings=settings.daily_report,
        pdf_dir=settings.report_dir,
    )
    daily_reports.start()
    if daily_reports.next_run_at() is not None:
        log.info("daily report: next at %s, into %s", daily_reports.next_run_at(), settings.report_dir)
    try:
        run_supervisor(
            store=store,
            backend=backend,
            options=options,
            stop=stop,
            experiment_ports=ExperimentPorts(
                tuning=tuning, rollout=backend, owned=SqlOwnedObjects(engine), tuning_metrics=metrics.tuning
            ),
            incidents=pass_incidents,
        )
    finally:
        stop.set()
        backups.stop()
        daily_reports.stop()
        watching.join(timeout=10)
        notifying.join(timeout=10)
        if pruning.is_alive():
            pruning.join(timeout=10)
        sender.close()
        server.should_exit = True
        serving.join(timeout=10)
        client.close()
        app.state.runtime_client.close()
        engine.dispose()
        claim.release()
    log.info("stopped cleanly")
    return 0
