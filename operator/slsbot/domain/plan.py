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


DRAIN_WAIT_LIMIT = timedelta(minutes=2)


def plan_deletion(
    on_delete: OnDelete,
    observed: ObservedRuntime,
    *,
    drained: bool,
    waited: timedelta | None = None,
    wait_limit: timedelta = DRAIN_WAIT_LIMIT,
) -> Action:
    """Deletion through the finalizer: drain the runtime (cancel orders, flatten if asked), then delete it.

    A runtime that is still starting is waited for, so it can drain, but for ``wait_limit`` at most since the
    deletion began (``waited``), so a runtime that never becomes ready cannot hold its Strategy forever. One that
    is not running cannot drain: it is deleted with a warning, since its open orders may remain on the exchange.
    """
    if observed.state is RuntimeState.ABSENT:
        return Action(ActionKind.WAIT, "Deleted", "nothing left to clean up")
    wants_drain = on_delete.cancel_orders or on_delete.flatten
    if wants_drain and not drained:
        if observed.state is RuntimeState.READY:
            return Action(
                ActionKind.DRAIN,
                "Draining",
                "cancelling open orders" + (" and flattening positions" if on_delete.flatten else ""),
                cancel_orders=on_delete.cancel_orders,
                flatten=on_delete.flatten,
            )
        if observed.state is RuntimeState.STARTING and (waited is None or waited < wait_limit):
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
    return Action(ActionKind.DELETE, "Deleting", "removing the runtime")
