"""The reconcile decision: compare what should run with what runs, and choose ONE next step.

Pure: no clock (``now`` is passed in), no I/O. Both backends (Kubernetes Deployments, local processes) observe
into an ``ObservedRuntime`` and execute the chosen ``Action``; this module is why they behave the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from slsbot.api.health import TradingMode
from slsbot.api.strategy import OnDelete
from slsbot.domain.runtime_spec import DesiredRuntime

DRAIN_WAIT_LIMIT = timedelta(minutes=2)
DRAINED_PHASE = "drained"  # the runtime's /status phase once its drain completed and was persisted
DRAIN_POLL = timedelta(seconds=1)


class RuntimeState(StrEnum):
    ABSENT = "absent"  # nothing exists for this strategy
    STARTING = "starting"  # created, not ready yet
    READY = "ready"  # serving, warmed up, reconciled with the exchange
    EXITED = "exited"  # the process or container died and is not running
    UNRESPONSIVE = "unresponsive"  # running, but its health or control endpoint does not answer (hung, overloaded)
    TERMINATING = "terminating"  # shutting down


@dataclass(frozen=True, slots=True)
class ObservedRuntime:
    state: RuntimeState = RuntimeState.ABSENT
    config_hash: str | None = None
    paused: bool | None = None  # as the runtime itself reports it; None when unknown
    restarts: int = 0
    consecutive_failures: int = 0  # exits since the runtime was last ready
    exited_at: datetime | None = None
    workload: str | None = None
    pid: int | None = None
    runtime_status: dict = field(default_factory=dict)  # the runtime's /status, when reachable
    backend_restarts_itself: bool = False  # Kubernetes restarts crashed containers; local processes need us
    detail: str = ""  # what the backend saw, e.g. "ImagePullBackOff: ..." or "no answer from /status"
    # How long the runtime has gone without a healthy answer: since it last answered healthy (UNRESPONSIVE), or since
    # it started when it never answered (STARTING). None when the backend does not measure it (Kubernetes: the
    # kubelet's startup and liveness probes restart the container themselves).
    unresponsive_for: timedelta | None = None
    # How long it has run since it (re)started without having been ready once: an answering runtime that cannot come
    # up (it keeps connecting to an exchange it cannot reach). None when it was ready since, or not measured. Local
    # processes: since the process started; Kubernetes: since the pod's runtime container started, its Ready
    # condition False since then (adapters/kubernetes/observe.py ``not_ready_since``).
    not_ready_for: timedelta | None = None


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Crash-loop backoff: the first restart is immediate, then base * 2**(n-1), capped."""

    base: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=5)

    def delay(self, consecutive_failures: int) -> timedelta:
        if consecutive_failures <= 1:
            return timedelta(0)
        return min(self.base * 2 ** (consecutive_failures - 2), self.cap)


@dataclass(frozen=True, slots=True)
class LivenessPolicy:
    """When a backend that does not restart runtimes itself (local processes) restarts a live but silent one, as a
    Kubernetes liveness probe (``timeout``) and startup probe (``startup_timeout``) would for a pod."""

    timeout: timedelta = timedelta(seconds=30)  # answered healthy before, then nothing healthy for this long
    startup_timeout: timedelta = timedelta(seconds=120)  # started, and never answered at all for this long


class ActionKind(StrEnum):
    CREATE = "Create"
    UPDATE = "Update"  # new config: roll the runtime out again
    RESTART = "Restart"  # same config, the runtime died
    SET_PAUSED = "SetPaused"
    DRAIN = "Drain"  # cancel orders (and flatten) before deletion
    DELETE = "Delete"
    SET_TRADING_MODE = "SetTradingMode"  # the healing ladder: push ``trading_mode`` to the runtime's POST /trading-mode
    WAIT = "Wait"  # nothing to do now; look again after ``requeue_after``


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    reason: str
    message: str
    desired: DesiredRuntime | None = None
    requeue_after: timedelta | None = None
    cancel_orders: bool = False
    flatten: bool = False  # DRAIN: close positions; SET_TRADING_MODE to halted: close them too
    trading_mode: TradingMode | None = None  # SET_TRADING_MODE: what the runtime may do from now on

    @property
    def changes_something(self) -> bool:
        return self.kind is not ActionKind.WAIT

    @property
    def is_warning(self) -> bool:
        """Whether its Event is a Warning: a restart (something failed), a deletion that could not drain, or the
        healing ladder restricting a runtime's trading (safe mode, halt)."""
        restricting = self.kind is ActionKind.SET_TRADING_MODE and self.trading_mode != TradingMode.NORMAL
        return self.kind is ActionKind.RESTART or restricting or self.reason in WARNING_REASONS


WARNING_REASONS = frozenset({"DeletedWithoutDrain", "BackOff", "RuntimeUnresponsive", "RuntimeNotRunning"})


def plan_runtime(
    desired: DesiredRuntime,
    observed: ObservedRuntime,
    *,
    now: datetime,
    backoff: BackoffPolicy | None = None,
    liveness: LivenessPolicy | None = None,
) -> Action:
    """The next step toward ``desired``. Exactly one action per pass; the caller requeues."""
    backoff = backoff or BackoffPolicy()
    liveness = liveness or LivenessPolicy()
    if observed.state is RuntimeState.ABSENT:
        return Action(ActionKind.CREATE, "Creating", f"creating runtime {desired.name}", desired=desired)
    if observed.state is RuntimeState.TERMINATING:
        return Action(
            ActionKind.WAIT,
            "Terminating",
            "waiting for the old runtime to stop",
            requeue_after=timedelta(seconds=1),
        )
    if observed.config_hash != desired.config_hash:
        return Action(
            ActionKind.UPDATE,
            "ConfigChanged",
            f"rolling out config {desired.config_hash} (was {observed.config_hash})",
            desired=desired,
        )
    if observed.state is RuntimeState.EXITED:
        if observed.backend_restarts_itself:
            return Action(
                ActionKind.WAIT,
                "RuntimeNotRunning",
                observed.detail or "the runtime is not running; its controller restarts it",
                requeue_after=timedelta(seconds=5),
            )
        why = f": {observed.detail}" if observed.detail else ""
        due = (observed.exited_at or now) + backoff.delay(observed.consecutive_failures)
        if now < due:
            return Action(
                ActionKind.WAIT,
                "BackOff",
                f"runtime exited {observed.consecutive_failures} times in a row{why}; restarting at {due.isoformat()}",
                requeue_after=due - now,
            )
        return Action(ActionKind.RESTART, "Restarting", f"the runtime exited{why}; restarting it", desired=desired)
    silent = _liveness_action(desired, observed, liveness)
    if silent is not None:
        return silent
    if observed.state is RuntimeState.READY and observed.runtime_status.get("phase") == DRAINED_PHASE:
        return Action(
            ActionKind.WAIT,
            "RuntimeDrained",
            "the runtime's state file was drained (its orders cancelled on a shutdown) and it trades no more; "
            "start it on a new state file to trade again",
            requeue_after=timedelta(seconds=30),
        )
    if observed.state is RuntimeState.READY and observed.paused is not None and observed.paused != desired.paused:
        verb = "pausing" if desired.paused else "resuming"
        return Action(ActionKind.SET_PAUSED, "Pausing" if desired.paused else "Resuming", verb, desired=desired)
    if observed.state is RuntimeState.STARTING:
        return Action(
            ActionKind.WAIT,
            "Starting",
            "waiting for the runtime to become ready",
            requeue_after=timedelta(seconds=2),
        )
    return Action(ActionKind.WAIT, "UpToDate", "the runtime matches its spec", requeue_after=timedelta(seconds=30))


def _liveness_action(desired: DesiredRuntime, observed: ObservedRuntime, liveness: LivenessPolicy) -> Action | None:
    """A runtime that is alive but silent: wait, or restart it once it has been silent for too long (local
    processes; on Kubernetes the kubelet's probes do the restarting and this only reports)."""
    detail = observed.detail or "no answer"
    if observed.state is RuntimeState.UNRESPONSIVE:
        if observed.backend_restarts_itself or observed.unresponsive_for is None:
            return Action(
                ActionKind.WAIT,
                "RuntimeUnresponsive",
                f"the runtime runs but does not answer ({detail}); its liveness probe restarts it if this lasts",
                requeue_after=timedelta(seconds=5),
            )
        limit, reason, what = liveness.timeout, "LivenessFailed", "answered its health check"
    elif observed.state is RuntimeState.STARTING and observed.unresponsive_for is not None:
        limit, reason, what = liveness.startup_timeout, "StartupTimedOut", "answered at all since it started"
    else:
        return None
    silent = observed.unresponsive_for
    if silent >= limit:
        return Action(
            ActionKind.RESTART,
            reason,
            f"the runtime has not {what} for {_seconds(silent)} ({detail}); restarting it",
            desired=desired,
        )
    if observed.state is RuntimeState.STARTING:
        return None  # still within its start-up time: the plan waits for it as for any starting runtime
    return Action(
        ActionKind.WAIT,
        "RuntimeUnresponsive",
        f"the runtime runs but does not answer its health check ({detail}); it is restarted after "
        f"{_seconds(limit)} without a healthy answer",
        requeue_after=min(limit - silent, timedelta(seconds=5)),
    )


def drain_remains(observed: ObservedRuntime, *, flatten: bool) -> str | None:
    """What keeps a drain from being complete, as the runtime reports it; None once it is complete: phase
    ``drained``, no open orders and, when a flatten was asked, no open positions."""
    status = observed.runtime_status
    if not status:
        return "the runtime does not report its status" + (
            "" if observed.state is RuntimeState.READY else f" (it is {observed.state})"
        )
    if status.get("phase") != DRAINED_PHASE:
        return f"the runtime reports phase {status.get('phase')!r}, not {DRAINED_PHASE!r}"
    left = []
    open_orders = status.get("open_orders")
    if not isinstance(open_orders, int) or isinstance(open_orders, bool):
        left.append("an unknown number of open orders")
    elif open_orders > 0:
        left.append(f"{open_orders} open order{'s' if open_orders != 1 else ''}")
    if flatten:
        positions = status.get("open_positions")
        if not isinstance(positions, int) or isinstance(positions, bool):
            left.append("an unknown number of open positions")
        elif positions > 0:
            left.append(f"{positions} open position{'s' if positions != 1 else ''}")
    return " and ".join(left) + " remain" if left else None


def plan_deletion(
    on_delete: OnDelete,
    observed: ObservedRuntime,
    *,
    drained: bool,
    waited: timedelta | None = None,
    wait_limit: timedelta = DRAIN_WAIT_LIMIT,
) -> Action:
    """Deletion through the finalizer: drain the runtime (cancel orders, flatten if asked), wait until it says
    the drain completed, then delete it.

    ``drained`` says the drain was asked for (``POST /shutdown`` sent). It completed when the runtime reports
    phase ``drained`` with no open orders (and no positions when a flatten was asked); until then the runtime is
    kept, so its cancels and its flatten are never cut short. A runtime that is still starting is waited for, so
    it can drain. Both waits are bounded by ``wait_limit`` since the deletion began (``waited``; no bound when
    unknown), so a runtime that never becomes ready, or never finishes draining, cannot hold its Strategy forever:
    it is then deleted with a ``DeletedWithoutDrain`` warning saying what was left. One that is not running
    cannot drain: it is deleted at once with that warning, since its open orders may remain on the exchange.
    """
    if observed.state is RuntimeState.ABSENT:
        return Action(ActionKind.WAIT, "Deleted", "nothing left to clean up")
    wants_drain = on_delete.cancel_orders or on_delete.flatten
    if not wants_drain:
        return Action(ActionKind.DELETE, "Deleting", "removing the runtime")
    within_limit = waited is None or waited < wait_limit
    if not drained:
        if observed.state is RuntimeState.READY:
            return Action(
                ActionKind.DRAIN,
                "Draining",
                "cancelling open orders" + (" and flattening positions" if on_delete.flatten else ""),
                cancel_orders=on_delete.cancel_orders,
                flatten=on_delete.flatten,
            )
        if observed.state is RuntimeState.STARTING and within_limit:
            return Action(
                ActionKind.WAIT,
                "WaitingToDrain",
                "waiting for the runtime to be ready to drain",
                requeue_after=timedelta(seconds=2),
            )
        if observed.state is RuntimeState.UNRESPONSIVE and within_limit:
            return Action(
                ActionKind.WAIT,
                "WaitingToDrain",
                f"the runtime runs but does not answer ({observed.detail or 'no answer'}); asking it to drain again "
                "once it answers",
                requeue_after=timedelta(seconds=2),
            )
        if observed.state is RuntimeState.STARTING:
            why = f"did not become ready within {_seconds(wait_limit)}"
        elif observed.state is RuntimeState.UNRESPONSIVE:
            why = (
                f"was running but did not answer its control endpoint for {_seconds(wait_limit)} "
                f"({observed.detail or 'no answer'})"
            )
        else:
            why = "is not running" + (f" ({observed.detail})" if observed.detail else "")
        return Action(
            ActionKind.DELETE,
            "DeletedWithoutDrain",
            f"the runtime {why}, so it could not cancel its orders; check the exchange for open orders",
        )
    remains = drain_remains(observed, flatten=on_delete.flatten)
    if remains is None:
        return Action(ActionKind.DELETE, "Deleting", "the runtime drained; removing it")
    if within_limit:
        return Action(
            ActionKind.WAIT,
            "WaitingForDrain",
            f"waiting for the runtime to finish draining: {remains}",
            requeue_after=DRAIN_POLL,
        )
    what = "open orders and positions" if on_delete.flatten else "open orders"
    return Action(
        ActionKind.DELETE,
        "DeletedWithoutDrain",
        f"the drain did not complete within {_seconds(wait_limit)}: {remains}; check the exchange for {what}",
    )


def _seconds(span: timedelta) -> str:
    return f"{span.total_seconds():.0f}s"
