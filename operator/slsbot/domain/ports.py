"""What the reconcile service needs from a backend. ``adapters.kubernetes`` and ``adapters.processes`` implement
``RuntimeBackend`` and ``RolloutRuntimes``; ``adapters.kubernetes`` implements ``CredentialSecrets`` and
``RuntimeServiceAccounts``; both implement ``OwnedObjects``; ``adapters.tuning_processes`` (local worker processes)
and ``adapters.kubernetes.tuning`` (Jobs) implement ``TuningRunner``; ``adapters.admin_data`` (the local store) and
``adapters.kubernetes.admin_data`` (a cluster) implement ``AdminData``, what the admin API's routes read and change."""

from __future__ import annotations

from typing import Any, Protocol

from slsbot.api import Experiment, RuntimeConfig
from slsbot.api.health import SecretKeyRef
from slsbot.api.resources import Resource
from slsbot.domain.admin_data import AdminObject, EventEntry, RuntimeActivity, RuntimeOrders, RuntimeView
from slsbot.domain.admission import SecretSeen, ServiceAccountSeen
from slsbot.domain.incidents import Incident
from slsbot.domain.notification_plan import Message
from slsbot.domain.plan import Action, ObservedRuntime
from slsbot.domain.resolve import ResolvedStrategy
from slsbot.domain.runtime_performance import RuntimePerformance
from slsbot.domain.tuning_plan import ObservedTuning, TuningRun


class RuntimeBackend(Protocol):
    def render_config(self, resolved: ResolvedStrategy) -> RuntimeConfig:
        """The RuntimeConfig with this backend's state path, port, host and credentials folder."""
        ...

    def observe(self, namespace: str, name: str) -> ObservedRuntime:
        """What runs for this strategy now. Raises BackendUnavailable when it cannot tell."""
        ...

    def execute(self, namespace: str, name: str, action: Action) -> None:
        """Carry out one action. Raises ConflictError on a write conflict, RuntimeUnreachable, BackendUnavailable."""
        ...

    def runtime_status(self, namespace: str, name: str) -> dict[str, Any]:
        """The runtime's ``/status`` now (the account risk pass reads its figures). Raises RuntimeUnreachable when it
        does not answer, BackendUnavailable when the backend cannot tell where it runs."""
        ...

    def push_headroom(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /headroom``: what the runtime may still add under an account or global RiskPolicy, its kill switch
        (``domain.account_risk.Headroom.body``). Returns once the runtime persisted it. Raises RuntimeUnreachable,
        BackendUnavailable, or InvalidSpecError when the runtime refuses the body."""
        ...


class HealingMetrics(Protocol):
    """Where the healing ladder's measurements go (``adapters.control_metrics`` exports them to Prometheus). ``cause``
    is the failure class (``StaleData``), or the incident rule that put the runtime on the ladder."""

    def detected(self, cause: str, seconds: float) -> None:
        """A fault was detected ``seconds`` after it began (as the runtime reports its start)."""
        ...

    def recovered(self, cause: str, seconds: float) -> None:
        """The runtime was healthy again ``seconds`` after its fault was detected."""
        ...

    def rung_entered(self, cause: str, rung: str) -> None:
        """The ladder moved to ``rung`` (Restart, SafeMode, Halt, Incident)."""
        ...


class TuningMetrics(Protocol):
    """Where tuning Experiments' outcomes are counted (``adapters.control_metrics`` exports them to Prometheus)."""

    def run_failed(self, reason: str) -> None:
        """A tuning run ended Failed, for ``reason`` (``WorkerFailed``, ``FinalizeFailed``)."""
        ...


class CredentialSecrets(Protocol):
    """What the control plane may learn of a Secret that an account names as its credentials: never its data."""

    def operators_own(self, name: str) -> bool:
        """Whether ``name`` is one of the operator's own Secrets (a runtime's control token, the operator's key)."""
        ...

    def seen(self, namespace: str, name: str) -> SecretSeen:
        """Whether the Secret exists, and its labels. Raises BackendUnavailable when it cannot tell."""
        ...


class RuntimeServiceAccounts(Protocol):
    """What the control plane may learn of a ServiceAccount an account names for its runtime pods: its labels."""

    def seen(self, namespace: str, name: str) -> ServiceAccountSeen:
        """Whether the ServiceAccount exists, and its labels. Raises BackendUnavailable when it cannot tell."""
        ...


class OwnedObjects(Protocol):
    """What the Experiment controllers may write besides their own status: objects an Experiment owns (a tuning
    run's candidate Strategy and its A/B Experiment), and, at an A/B promotion, the baseline Strategy's spec.

    Owned objects are deleted with their owner (``ownerReferences`` on Kubernetes; an owner column locally, which
    also keeps the manifest folder's sync from removing them). Every method is idempotent. Raises ConflictError on
    a write conflict and BackendUnavailable when the backend cannot be reached.
    """

    def apply_owned(self, resource: Resource[Any, Any], *, owner: Experiment) -> None:
        """Create ``resource`` owned by ``owner``, or replace its spec if it exists and ``owner`` owns it.
        Raises ConflictError if it exists and is not owned by ``owner`` (someone else's object is never touched)."""
        ...

    def replace_spec(self, resource: Resource[Any, Any]) -> None:
        """Write ``resource.spec`` over the stored object's spec (its generation moves on); metadata and status stay."""
        ...

    def delete(self, kind: str, namespace: str, name: str) -> None:
        """Delete the object (a Strategy is drained first, as any deletion); nothing if it is gone."""
        ...


class TuningRunner(Protocol):
    """How a tuning run's processes run: the tuning engine's worker and finalize commands
    (``slsbot_runtime.tuning``), started and observed by a backend, over one study storage that every worker reaches.

    Every method is idempotent for a given run. Raises BackendUnavailable when the backend or the study's storage
    cannot be reached, ConflictError on a write conflict.
    """

    def storage_problem(self) -> str | None:
        """Why no run can start on this backend (no study storage configured, naming the setting); None if it can."""
        ...

    def default_data_dir(self) -> str | None:
        """The recorded candles a Strategy without ``marketData.dataDir`` replays on this backend."""
        ...

    def plan_problems(self, plan: dict[str, Any]) -> list[str]:
        """The engine's refusal of a plan, one ``field: message`` line each (plan fields, e.g. ``searchSpace[0].name``),
        checked before anything starts."""
        ...

    def start_workers(self, run: TuningRun, count: int) -> None:
        """Write the run's plan where its workers read it and start ``count`` more workers (a backend that keeps its
        workers itself, a Kubernetes Job, starts ``run.parallelism`` once and ignores ``count``)."""
        ...

    def stop_workers(self, run: TuningRun) -> None:
        """Stop the run's workers (SIGTERM, then SIGKILL; or delete the Job). The study stays in its storage."""
        ...

    def start_finalize(self, run: TuningRun) -> None:
        """Start the finalize step, which writes the run's result and report."""
        ...

    def observe(self, run: TuningRun) -> ObservedTuning:
        """The run's study (counts and best), workers and finalize step, with its result once there."""
        ...


class RolloutRuntimes(Protocol):
    """What the A/B rollout controller asks of a Strategy's runtime (its control endpoints ``GET /performance`` and
    ``POST /allocation``). Both raise RuntimeUnreachable when the runtime does not answer (not running yet, gone,
    or an answer it cannot read) and BackendUnavailable when the backend cannot tell where it runs;
    ``set_allocation`` raises InvalidSpecError when the runtime refuses the value (it changed nothing)."""

    def performance(self, namespace: str, name: str, *, since: int) -> RuntimePerformance:
        """Its figures for the candles after ``since`` (ms since the epoch)."""
        ...

    def set_allocation(self, namespace: str, name: str, percent: float | None) -> None:
        """Trade with ``percent`` of the account's capital from now on (persisted by the runtime before it
        answers); None: back to the share its Strategy's spec gives it."""
        ...


class IncidentStore(Protocol):
    """Where incidents live: a table of the supervisor's database (``adapters.supervisor_store``), ``Incident``
    objects on a cluster (``adapters.kubernetes.incidents``). Raises BackendUnavailable when it cannot be reached."""

    def active_incidents(self) -> list[Incident]:
        """Every open or acknowledged incident."""
        ...

    def list_incidents(
        self, *, state: str | None = None, severity: int | None = None, namespace: str | None = None, limit: int = 500
    ) -> list[Incident]:
        """Newest first, filtered."""
        ...

    def get_incident(self, incident_id: str) -> Incident:
        """Raises NotFoundError when there is none of that id."""
        ...

    def save_incident(self, incident: Incident) -> None:
        """Create it, or replace the stored one of the same id."""
        ...


class NotificationSender(Protocol):
    """Delivers one message to its receiver (``adapters.notifiers``). Raises NotificationFailed (naming the receiver,
    never its URL), retryable or not."""

    def send(self, message: Message) -> None: ...


class SecretValues(Protocol):
    """Reads one key of a Secret (a webhook URL): the Kubernetes API on a cluster, a mounted-Secret-like folder
    locally. Raises NotFoundError naming the Secret and key (never the value)."""

    def read(self, namespace: str, ref: SecretKeyRef) -> str: ...


class AdminData(Protocol):
    """What the admin API's routes read and change, over the local supervisor's store or a cluster's objects.

    Coroutines: a read of the local store runs on the event loop (a few milliseconds, no thread hop); a call to the
    Kubernetes API or to a runtime runs in a worker thread. Raises BackendUnavailable when the backend cannot be
    reached, NotFoundError when a named object does not exist, ConflictError on a write conflict."""

    async def objects(self, kind: str, *, namespace: str | None = None, name: str | None = None) -> list[AdminObject]:
        """The objects of ``kind`` (``Strategy``, ``Experiment``, ``TradingAccount``), by namespace and name."""
        ...

    async def runtimes(self, strategies: list[AdminObject]) -> dict[tuple[str, str], RuntimeView]:
        """What the backend knows of these Strategies' runtimes, by (namespace, name), without asking them."""
        ...

    async def runtime_statuses(self, strategies: list[AdminObject]) -> dict[tuple[str, str], dict[str, Any]]:
        """The runtimes' last ``/status`` (the figures the accounts overview adds up); one that has none is left out."""
        ...

    async def orders(self, strategy: AdminObject, *, limit: int) -> RuntimeOrders:
        """The Strategy's orders, newest first. Raises RuntimeUnreachable when neither the runtime nor a state file
        can answer."""
        ...

    async def activity(self, strategy: AdminObject, *, limit: int) -> RuntimeActivity:
        """The Strategy's equity curve, newest ``limit`` trades and risk decisions, and its breaker. Raises
        RuntimeUnreachable when neither the runtime nor a state file can answer."""
        ...

    async def set_paused(self, strategy: AdminObject, paused: bool) -> AdminObject:
        """Set the Strategy's desired ``paused`` flag; its controller hands it to the runtime."""
        ...

    async def set_kill_switch(self, policy: AdminObject, on: bool) -> AdminObject:
        """Set the RiskPolicy's ``spec.killSwitch`` (locally an override over its manifest; on a cluster a patch of
        its spec); the controllers push it to every runtime the policy covers."""
        ...

    async def set_experiment_control(self, experiment: AdminObject, control: str, value: bool) -> AdminObject:
        """Set an A/B Experiment's ``spec.<control>`` (``EXPERIMENT_CONTROLS``); its controller acts on it."""
        ...

    async def events(self, *, namespace: str | None, name: str | None, limit: int) -> list[EventEntry]:
        """Events about slsbot objects, newest first."""
        ...
