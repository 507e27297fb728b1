"""The reconcile decision: compare what should run with what runs, and choose ONE next step.

Pure: no clock (``now`` is passed in), no I/O. Both backends (Kubernetes Deployments, local processes) observe
into an ``ObservedRuntime`` and execute the chosen ``Action``; this module is why they behave the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

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


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Crash-loop backoff: the first restart is immediate, then base * 2**(n-1), capped."""

    base: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=5)

    def delay(self, consecutive_failures: int) -> timedelta:
        if consecutive_failures <= 1:
            return timedelta(0)
        return min(self.base * 2 ** (consecutive_failures - 2), self.cap)


class ActionKind(StrEnum):
    CREATE = "Create"
    UPDATE = "Update"  # new config: roll the runtime out again
    RESTART = "Restart"  # same config, the runtime died
    SET_PAUSED = "SetPaused"
    DRAIN = "Drain"  # cancel orders (and flatten) before deletion
    DELETE = "Delete"
    WAIT = "Wait"  # nothing to do now; look again after ``requeue_after``


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    reason: str
    message: str
    desired: DesiredRuntime | None = None
    requeue_after: timedelta | None = None
    cancel_orders: bool = False
    flatten: bool = False

    @property
    def changes_something(self) -> bool:
        return self.kind is not ActionKind.WAIT


def plan_runtime(
    desired: DesiredRuntime,
    observed: ObservedRuntime,
    *,
    now: datetime,
    backoff: BackoffPolicy | None = None,
) -> Action:
    """The next step toward ``desired``. Exactly one action per pass; the caller requeues."""
    backoff = backoff or BackoffPolicy()
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
        due = (observed.exited_at or now) + backoff.delay(observed.consecutive_failures)
        if now < due:
            return Action(
                ActionKind.WAIT,
                "BackOff",
                f"runtime exited {observed.consecutive_failures} times in a row; restarting at {due.isoformat()}",
                requeue_after=due - now,
            )
        return Action(ActionKind.RESTART, "Restarting", "the runtime exited; restarting it", desired=desired)
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
        why = "did not become ready in time" if observed.state is RuntimeState.STARTING else "is not running"
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
