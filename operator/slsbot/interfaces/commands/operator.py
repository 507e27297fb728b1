"""``slsbot operator``: run the kopf operator against the current Kubernetes context.

    slsbot operator --all-namespaces --liveness http://0.0.0.0:8080/healthz   # what deploy/operator runs
    slsbot operator --namespace slsbot --verbose                              # one namespace, from a laptop

Credentials: ``--kubeconfig`` or ``KUBECONFIG``; in a pod, its service account; else ``~/.kube/config``.
``SLSBOT_OPERATOR_CONTROL_KEY`` is required: the master key every runtime's control token is derived from (in a
cluster, from the Secret ``slsbot-operator-control-key``; see deploy/operator). Without it the command exits 2.
Every other setting has an ``SLSBOT_OPERATOR_*`` environment variable (see ``operator_settings``), e.g.
``SLSBOT_OPERATOR_RUNTIME_URL`` to reach runtimes through a port-forward when the operator runs outside the cluster.
SIGINT or SIGTERM stops it cleanly (exit code 0).

``--admin-api-port 8443`` (``SLSBOT_OPERATOR_ADMIN_API_PORT``) also serves the admin API, the same app and routes as
``slsbot up``'s, over the cluster's objects (``KubernetesAdminData``), in a thread of its own beside kopf; callers
present Kubernetes tokens, checked by TokenReview and authorised by SubjectAccessReview (``cluster_auth``). Its audit
trail is a SQLite file in the operator's state folder (``SLSBOT_OPERATOR_STATE_DIR``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kopf
import prometheus_client
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from slsbot.adapters.ccxt_catalog import ccxt_exchange_ids
from slsbot.adapters.control_metrics import ControlMetrics
from slsbot.adapters.kubernetes import (
    KubernetesApi,
    KubernetesCredentialSecrets,
    KubernetesEventRecorder,
    KubernetesObjectStore,
    KubernetesRuntimeBackend,
    KubernetesRuntimeServiceAccounts,
    cluster_credentials,
    load_client_configuration,
)
from slsbot.adapters.kubernetes.access_review import AccessReviews
from slsbot.adapters.kubernetes.admin_data import KubernetesAdminData
from slsbot.adapters.kubernetes.backups import KubernetesBackupCronJobs
from slsbot.adapters.kubernetes.incidents import KubernetesIncidentStore, KubernetesSecretValues
from slsbot.adapters.kubernetes.owned import KubernetesOwnedObjects
from slsbot.adapters.kubernetes.postmortems import KubernetesPostmortems
from slsbot.adapters.kubernetes.tuning import KubernetesTuningRunner
from slsbot.adapters.notifiers import WebhookSender
from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import create_store_engine
from slsbot.adapters.tuning_processes import TuningProcesses
from slsbot.domain.errors import SlsbotError
from slsbot.domain.incidents import BACKUP_FAMILY
from slsbot.interfaces.admin_api.app import create_app
from slsbot.interfaces.admin_api.cluster_auth import KubernetesAuthenticator
from slsbot.interfaces.admin_api.hardening import server_options
from slsbot.interfaces.kopf_handlers import kopf_settings, register_handlers
from slsbot.interfaces.operator_settings import OperatorSettings
from slsbot.interfaces.operator_steps import OperatorContext
from slsbot.services.incidents import (
    DailyEquity,
    IncidentService,
    NotificationDirectory,
    PassIncidents,
    StrategySignals,
    accounts_cut_every,
)
from slsbot.services.reconcile import CachedConfigCheck, Catalog, ExperimentPorts

HELP = "Run the kopf operator against the current Kubernetes context"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", dest="namespaces", action="append", metavar="NS", help="Serve this namespace (repeatable)."
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="Serve every namespace (the default).")
    parser.add_argument("--verbose", action="store_true", help="Log every reconcile step.")
    parser.add_argument(
        "--liveness", metavar="URL", help="Serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )
    parser.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig to use instead of KUBECONFIG.")
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context instead of the current one.")
    parser.add_argument(
        "--admin-api-port",
        type=int,
        metavar="PORT",
        help="Serve the admin API on this port (Kubernetes tokens, RBAC roles), e.g. 8443.",
    )


def settings_from_arguments(args: argparse.Namespace) -> OperatorSettings:
    return OperatorSettings.from_arguments(
        namespaces=args.namespaces,
        all_namespaces=args.all_namespaces,
        verbose=args.verbose,
        liveness_endpoint=args.liveness,
        kubeconfig=args.kubeconfig,
        context=args.context,
        admin_api_port=args.admin_api_port,
    )


def build_context(settings: OperatorSettings) -> OperatorContext:
    """Connect to the cluster and build what the handlers need. Raises ControlKeyError without the control key,
    BackendUnavailable without credentials."""
    control_key = settings.runtime_control_keys()
    configuration = load_client_configuration(kubeconfig=settings.kubeconfig, context=settings.context)
    api = KubernetesApi(configuration, timeout=settings.api_timeout_seconds)
    control = RuntimeHttpClient(timeout=settings.runtime_timeout_seconds)
    tuning = KubernetesTuningRunner(
        api,
        TuningProcesses(settings.tuning_dir),
        storage_url=settings.study_storage,
        default_data_dir=settings.default_data_dir,
    )
    backend = KubernetesRuntimeBackend(api, control, settings.backend_options(), control_key=control_key)
    directory = NotificationDirectory()
    sender = WebhookSender(
        KubernetesSecretValues(api), timeout=settings.notify_timeout_seconds, runbook_base_url=settings.runbook_base_url
    )
    store = KubernetesIncidentStore(api, namespaces=None if settings.all_namespaces else list(settings.namespaces))
    metrics = ControlMetrics()
    service = IncidentService(
        store,
        sender,
        notifications_for=directory,
        postmortems=KubernetesPostmortems(api, backend),
        events=metrics.incidents,
    )
    incidents = PassIncidents(
        service,
        runtime_status=None,
        directory=directory,
        equity=DailyEquity(backend),
    )
    return OperatorContext(
        healing_metrics=metrics,
        # the ladder acts on the rule incidents in force (read at most every 5 s), and records its own per Strategy
        strategy_signals=StrategySignals(store, ttl=5.0),
        size_cuts=accounts_cut_every(store, ttl=5.0),
        record_signals=lambda signals, now, strategy: service.record_signals(
            signals, now, namespaces=[strategy.namespace], objects=[f"Strategy/{strategy.name}"]
        ),
        store=KubernetesObjectStore(api),
        backend=backend,
        events=KubernetesEventRecorder(api, repeat_after=settings.event_repeat),
        credentials=cluster_credentials(configuration),
        catalog=Catalog(
            known_exchanges=ccxt_exchange_ids() if settings.check_exchanges else None,
            check_config=runtime_config_check(),
            allowed_images=settings.image_allow_list(),
            credential_secrets=KubernetesCredentialSecrets(api),
            runtime_service_accounts=KubernetesRuntimeServiceAccounts(api),
        ),
        backups=KubernetesBackupCronJobs(api, image=settings.backup_image),
        backup_metrics=metrics.backups,
        record_backup_signals=lambda signals, now, namespace, name: service.record_signals(
            signals, now, evaluated=(BACKUP_FAMILY,), namespaces=[namespace], objects=[f"BackupSchedule/{name}"]
        ),
        max_requeue_seconds=settings.max_requeue_seconds,
        drain_wait_seconds=settings.drain_wait_seconds,
        incidents=incidents,
        incidents_interval_seconds=settings.incidents_interval_seconds,
        experiment_ports=ExperimentPorts(
            tuning=tuning,
            rollout=backend,
            owned=KubernetesOwnedObjects(api),
            allowed_images=settings.image_allow_list(),
            tuning_metrics=metrics.tuning,
        ),
    )


def build_admin_app(settings: OperatorSettings, metrics: ControlMetrics | None = None) -> FastAPI:
    """The admin API over the cluster: objects through ``KubernetesAdminData``, callers through TokenReview and
    SubjectAccessReview, incidents from the Incident objects and their post-mortem bundles from their ConfigMaps
    (``KubernetesPostmortems``), the audit trail in the state folder's SQLite file.
    Raises BackendUnavailable without credentials, ControlKeyError without the control key (runtimes' orders are
    asked with their control tokens, and during a control key rotation's grace with the previous key's too, as the
    operator's own calls are)."""
    control_key = settings.runtime_control_keys()
    configuration = load_client_configuration(kubeconfig=settings.kubeconfig, context=settings.context)
    api = KubernetesApi(configuration, timeout=settings.api_timeout_seconds)
    control = RuntimeHttpClient(timeout=settings.runtime_timeout_seconds)
    backend = KubernetesRuntimeBackend(api, control, settings.backend_options(), control_key=control_key)
    namespaces = None if settings.all_namespaces else list(settings.namespaces)
    state_dir = settings.operator_state_dir()
    engine = create_store_engine(state_dir / "admin-api.db")
    metrics = metrics or ControlMetrics()
    postmortems = KubernetesPostmortems(api, backend)
    incidents = IncidentService(
        KubernetesIncidentStore(api, namespaces=namespaces),
        None,
        postmortems=postmortems,
        events=metrics.incidents,
    )
    return create_app(
        engine=engine,
        authenticator=KubernetesAuthenticator(AccessReviews(api, ttl=settings.admin_api_review_ttl_seconds)),
        data=KubernetesAdminData(api, backend, namespaces=namespaces),
        runtime_client=None,
        state_dir=state_dir,
        tuning_dir=settings.tuning_dir,
        metrics=metrics,
        incidents=incidents,
        hardening=settings.admin_api_protection,
        postmortems=postmortems,
    )


@dataclass
class AdminApiServer:
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_admin_api(settings: OperatorSettings, app: FastAPI) -> AdminApiServer | None:
    """Serve ``app`` on ``settings.admin_api_port`` in a thread of its own (uvicorn, its own event loop, as
    ``slsbot up`` does). None when no port is set; a port that cannot be bound is logged, and the operator goes on
    reconciling without it (people lose their API, the bots do not lose their healing)."""
    if settings.admin_api_port is None:
        return None
    try:
        listener = socket.create_server((settings.admin_api_address, settings.admin_api_port))
    except OSError as exc:
        log.error("cannot serve the admin API on %s:%s: %s", settings.admin_api_address, settings.admin_api_port, exc)
        return None
    tls = settings.admin_api_tls_cert is not None
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ssl_certfile=str(settings.admin_api_tls_cert) if tls else None,
        ssl_keyfile=str(settings.admin_api_tls_key) if tls else None,
        **server_options(settings.admin_api_protection),
    )
    server = uvicorn.Server(config)  # in a thread: it leaves the signals to kopf
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="admin-api", daemon=True)
    thread.start()
    port = int(listener.getsockname()[1])
    log.info("serving the admin API at %s://%s:%s", "https" if tls else "http", settings.admin_api_address, port)
    return AdminApiServer(server=server, thread=thread, port=port)


async def serve(
    settings: OperatorSettings,
    *,
    context: OperatorContext | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    admin_app: FastAPI | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or SIGINT/SIGTERM arrives, in the main thread); with
    ``settings.admin_api_port``, the admin API beside it (``admin_app``, else ``build_admin_app``)."""
    context = context or build_context(settings)
    if admin_app is None and settings.admin_api_port is not None:
        metrics = context.healing_metrics if isinstance(context.healing_metrics, ControlMetrics) else None
        admin_app = build_admin_app(settings, metrics)
    admin_server = start_admin_api(settings, admin_app) if admin_app is not None else None
    registry = kopf.OperatorRegistry()
    register_handlers(
        registry,
        validation_resync=settings.validation_resync_seconds,
        experiment_interval=settings.experiment_interval_seconds,
        incidents_interval=settings.incidents_interval_seconds,
    )
    scope: dict[str, Any] = (
        {"clusterwide": True} if settings.all_namespaces else {"namespaces": list(settings.namespaces)}
    )
    metrics_server = start_metrics_server(settings, context.healing_metrics)
    # kopf ends a graceful stop by cancelling its own tasks; like kopf.run(), treat that as a clean exit.
    with contextlib.suppress(asyncio.CancelledError), _closing(metrics_server), _closing(admin_server):
        await kopf.operator(
            registry=registry,
            settings=kopf_settings(verbose=settings.verbose),
            memo=kopf.Memo(slsbot=context),
            standalone=True,
            liveness_endpoint=settings.liveness_endpoint,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            **scope,
        )


def start_metrics_server(settings: OperatorSettings, metrics: object) -> MetricsServer | None:
    """Serve the control plane's metrics at ``/metrics`` on ``settings.metrics_port`` (in a thread of its own).
    None when no port is set, or there are no metrics; a port that cannot be bound is logged, and the operator goes
    on reconciling without it (its metrics are not worth stopping the bots' healing for)."""
    if settings.metrics_port is None or not isinstance(metrics, ControlMetrics):
        return None
    try:
        server, thread = prometheus_client.start_http_server(
            settings.metrics_port, addr=settings.metrics_address, registry=metrics.registry
        )
    except OSError as exc:
        log.error("cannot serve metrics on %s:%s: %s", settings.metrics_address, settings.metrics_port, exc)
        return None
    port = server.server_address[1]
    log.info("serving metrics at http://%s:%s/metrics", settings.metrics_address, port)
    return MetricsServer(server=server, thread=thread, port=int(port))


@dataclass(frozen=True, slots=True)
class MetricsServer:
    server: Any
    thread: threading.Thread
    port: int

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def _closing(server: MetricsServer | AdminApiServer | None) -> Iterator[None]:
    try:
        yield
    finally:
        if server is not None:
            server.close()


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_arguments(args)
    except ValidationError as exc:
        print(f"slsbot operator: {_settings_errors(exc)}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if settings.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        context = build_context(settings)
        metrics = context.healing_metrics if isinstance(context.healing_metrics, ControlMetrics) else None
        admin_app = build_admin_app(settings, metrics) if settings.admin_api_port is not None else None
    except SlsbotError as exc:
        print(f"slsbot operator: {exc}", file=sys.stderr)
        return 2
    scope = "all namespaces" if settings.all_namespaces else ", ".join(settings.namespaces)
    log.info("serving %s on %s", scope, context.credentials.server)
    asyncio.run(serve(settings, context=context, admin_app=admin_app))
    return 0


def _settings_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())


def runtime_config_check() -> CachedConfigCheck:
    """The runtime's own check of a RuntimeConfig, run before a Deployment is made (one validation, both sides)."""
    from slsbot_runtime.app import config_problems

    return CachedConfigCheck(config_problems)
