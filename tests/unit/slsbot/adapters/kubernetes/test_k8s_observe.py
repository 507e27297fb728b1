"""From Deployment and Pod JSON (as the API server returns them) to an ObservedRuntime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slsbot.adapters.kubernetes.observe import not_ready_since, observed_runtime, read_workload
from slsbot.domain.plan import RuntimeState

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STATUS = {"equity": 10_100.0, "trade_count": 4, "paused": False, "heartbeat": "2026-01-01T00:00:00Z"}


def deployment(*, generation: int = 2, status: dict[str, Any] | None = None, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "slsbot-runtime-btc", "namespace": "t", "generation": generation}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "template": {
                "metadata": {"annotations": {"slsbot.io/config-hash": "abc123"}},
                "spec": {
                    "containers": [
                        {"name": "runtime", "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]}
                    ]
                },
            },
        },
        "status": status if status is not None else {},
    }


READY = {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}


def pod(
    *,
    strategy: str = "btc",
    restarts: int = 0,
    state: dict[str, Any] | None = None,
    phase: str = "Running",
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"p-{strategy}", "labels": {"slsbot.io/strategy": strategy}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": "runtime", "restartCount": restarts, "state": state or {"running": {"startedAt": "x"}}},
                {"name": "sidecar", "restartCount": 50, "state": {"running": {}}},
            ],
        },
    }


def observe(dep: dict[str, Any] | None, pods: list[dict[str, Any]], runtime_status: dict[str, Any] | None = STATUS):
    return observed_runtime(read_workload(dep, pods, strategy="btc"), runtime_status, now=NOW)


def test_no_deployment_is_absent():
    observed = observe(None, [])
    assert observed.state is RuntimeState.ABSENT
    assert observed.config_hash is None and observed.backend_restarts_itself is True


def test_a_ready_up_to_date_replica_that_answers_is_ready_with_its_figures():
    observed = observe(deployment(status=READY), [pod(restarts=3)])
    assert observed.state is RuntimeState.READY
    assert observed.config_hash == "abc123"
    assert observed.restarts == 3  # the runtime container's only, not the sidecar's
    assert observed.paused is False
    assert observed.runtime_status["equity"] == 10_100.0
    assert observed.workload == "Deployment/slsbot-runtime-btc"
    assert observed.backend_restarts_itself is True


def test_the_runtime_port_is_read_from_the_pod_template():
    assert read_workload(deployment(status=READY), [], strategy="btc").port == 8000


def test_a_ready_pod_whose_runtime_does_not_answer_is_unresponsive_not_exited():
    # It runs and may hold open orders: "no answer" is not "not running" (a deletion must wait and drain).
    observed = observe(deployment(status=READY), [pod()], runtime_status=None)
    assert observed.state is RuntimeState.UNRESPONSIVE
    assert observed.paused is None and observed.runtime_status == {}
    assert "does not answer /status" in observed.detail


def test_a_crash_looping_pod_says_why_its_container_last_exited():
    crashing = pod()
    crashing["status"]["containerStatuses"][0].update(
        state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
        lastState={
            "terminated": {
                "exitCode": 2,
                "reason": "Error",
                "message": "2026-12-01 10:00:00 INFO slsbot_runtime.app: starting\n"
                "slsbot runtime: invalid config: marketData.source: a testnet account sends real orders to binance",
            }
        },
    )
    observed = observe(deployment(status={"replicas": 1, "updatedReplicas": 1}), [crashing])
    assert observed.state is RuntimeState.EXITED
    assert observed.detail.startswith("CrashLoopBackOff: back-off 40s restarting failed container; last exit:")
    assert "exited with code 2 (Error): invalid config: marketData.source: a testnet account" in observed.detail


def test_a_rollout_the_controller_has_not_seen_yet_is_still_starting():
    behind = {**READY, "observedGeneration": 1}
    assert observe(deployment(generation=2, status=behind), [pod()]).state is RuntimeState.STARTING


def test_an_old_replica_still_running_the_previous_template_is_not_ready():
    mixed = {**READY, "replicas": 2, "updatedReplicas": 1}
    assert observe(deployment(status=mixed), [pod()]).state is not RuntimeState.READY


def test_no_status_yet_is_starting():
    assert observe(deployment(status={}), []).state is RuntimeState.STARTING


@pytest.mark.parametrize(
    "reason",
    ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "InvalidImageName"],
)
def test_a_container_that_cannot_run_is_exited(reason):
    stuck = pod(restarts=5, state={"waiting": {"reason": reason, "message": "details"}})
    view = read_workload(deployment(status={"replicas": 1}), [stuck], strategy="btc")
    assert view.state is RuntimeState.EXITED
    assert reason in (view.problem or "")
    assert observed_runtime(view, None, now=NOW).restarts == 5


def test_a_container_merely_creating_is_starting():
    creating = pod(state={"waiting": {"reason": "ContainerCreating"}}, phase="Pending")
    assert observe(deployment(status={"replicas": 1}), [creating]).state is RuntimeState.STARTING


def test_a_terminated_container_or_a_failed_pod_is_exited():
    terminated = pod(state={"terminated": {"exitCode": 2, "reason": "Error"}})
    view = read_workload(deployment(status={"replicas": 1}), [terminated], strategy="btc")
    assert view.state is RuntimeState.EXITED and "code 2" in (view.problem or "")
    failed = pod(phase="Failed")
    assert observe(deployment(status={"replicas": 1}), [failed]).state is RuntimeState.EXITED


def test_a_deployment_past_its_progress_deadline_is_exited():
    status = {
        "replicas": 1,
        "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}],
    }
    assert observe(deployment(status=status), []).state is RuntimeState.EXITED


def test_a_deployment_being_deleted_is_terminating():
    assert observe(deployment(status=READY, deleting=True), [pod()]).state is RuntimeState.TERMINATING


def test_an_old_pod_shutting_down_with_no_new_one_ready_is_terminating():
    rolling = {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 0}
    observed = observe(deployment(status=rolling), [pod(deleting=True, restarts=9)])
    assert observed.state is RuntimeState.TERMINATING
    assert observed.restarts == 0  # restarts of a pod on its way out do not count


def test_pods_of_other_strategies_are_ignored():
    other = pod(strategy="eth", state={"waiting": {"reason": "CrashLoopBackOff"}}, restarts=7)
    observed = observe(deployment(status=READY), [other, pod(restarts=1)])
    assert observed.state is RuntimeState.READY and observed.restarts == 1


def test_paused_comes_from_the_runtime_itself():
    assert observe(deployment(status=READY), [pod()], {**STATUS, "paused": True}).paused is True
    assert observe(deployment(status=READY), [pod()], {"equity": 1.0}).paused is None


def test_a_pod_that_cannot_be_scheduled_is_exited_so_deletion_does_not_wait_for_it():
    pending = pod(phase="Pending", state={"waiting": {"reason": "ContainerCreating"}})
    pending["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes: Insufficient cpu"}
    ]
    view = read_workload(deployment(status={"replicas": 1}), [pending], strategy="btc")
    assert view.state is RuntimeState.EXITED and "Insufficient cpu" in (view.problem or "")


# --- not_ready_for: how long the runtime has not been ready since it last started --------------------------------

ROLLING = {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 0}
RESTARTED = {"slsbot.io/config-hash": "abc123", "slsbot.io/restarted-at": "2026-01-01T11:58:00+00:00"}


def _at(seconds_before_now: float) -> str:
    return (NOW - timedelta(seconds=seconds_before_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def restarted_deployment() -> dict[str, Any]:
    """The Deployment after the ladder's RESTART: its template carries ``slsbot.io/restarted-at``."""
    dep = deployment(status=ROLLING)
    dep["spec"]["template"]["metadata"]["annotations"] = dict(RESTARTED)
    return dep


def starting_pod(
    *,
    ready_since: str | None,
    ready: str = "False",
    started: str | None,
    annotations: dict[str, str] | None = None,
    restarts: int = 0,
) -> dict[str, Any]:
    """A pod of the restarted template, as the kubelet reports it: ``Ready`` (``ready``, turned at ``ready_since``)
    and its runtime container running since ``started`` (None: still being created)."""
    body = pod(
        restarts=restarts,
        state={"running": {"startedAt": started}} if started else {"waiting": {"reason": "ContainerCreating"}},
    )
    body["metadata"]["annotations"] = dict(RESTARTED if annotations is None else annotations)
    body["status"]["startTime"] = _at(100)
    condition = {"type": "Ready", "status": ready, "reason": "ContainersNotReady"}
    if ready_since is not None:
        condition["lastTransitionTime"] = ready_since
    body["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}, condition]
    return body


def test_a_restarted_pod_never_ready_since_its_runtime_started_is_not_ready_for_that_long():
    # Ready False since the pod came up (before its runtime started): it has not been ready once since the start.
    never = starting_pod(ready_since=_at(95), started=_at(90))
    observed = observe(restarted_deployment(), [never], runtime_status=None)
    assert observed.state is RuntimeState.STARTING
    assert observed.not_ready_for == timedelta(seconds=90)


def test_a_pod_that_was_ready_and_lost_it_is_not_counted_as_never_ready():
    # Its Ready condition turned False after the runtime started: it was ready in between (local semantics: None).
    lost = starting_pod(ready_since=_at(30), started=_at(90))
    assert not_ready_since(lost) is None
    assert observe(restarted_deployment(), [lost], runtime_status=None).not_ready_for is None


def test_a_container_the_kubelet_restarted_counts_from_its_new_start():
    # Ready went False when it crashed (60 s ago); the kubelet started it again 58 s ago: not ready since then.
    crashed = starting_pod(ready_since=_at(60), started=_at(58), restarts=1)
    assert not_ready_since(crashed) == NOW - timedelta(seconds=58)
    assert observe(restarted_deployment(), [crashed], runtime_status=None).not_ready_for == timedelta(seconds=58)


def test_a_container_still_being_created_counts_from_when_the_kubelet_took_the_pod():
    creating = starting_pod(ready_since=_at(99), started=None)
    assert observe(restarted_deployment(), [creating], runtime_status=None).not_ready_for == timedelta(seconds=100)
    ran_before = starting_pod(ready_since=_at(99), started=None, restarts=1)
    assert not_ready_since(ran_before) is None  # it ran in this pod, and may have been ready: no verdict


@pytest.mark.parametrize(
    ("ready", "ready_since", "started"),
    [
        ("True", _at(80), _at(90)),  # ready
        ("Unknown", _at(80), _at(90)),  # the node stopped reporting
        ("False", None, _at(90)),  # no transition time
        ("False", _at(95), "not a time"),
    ],
)
def test_a_pod_that_does_not_say_it_has_been_not_ready_since_its_start_gives_no_verdict(ready, ready_since, started):
    assert not_ready_since(starting_pod(ready=ready, ready_since=ready_since, started=started)) is None


def test_a_pod_without_a_ready_condition_gives_no_verdict():
    assert not_ready_since(pod()) is None


def test_only_the_pod_of_the_current_template_counts():
    # The ladder just restarted the Deployment; the old pod (before restarted-at) is the one still there.
    old = starting_pod(ready_since=_at(95), started=_at(90), annotations={"slsbot.io/config-hash": "abc123"})
    assert observe(restarted_deployment(), [old], runtime_status=None).not_ready_for is None
    new = starting_pod(ready_since=_at(20), started=_at(15))
    assert observe(restarted_deployment(), [old, new], runtime_status=None).not_ready_for == timedelta(seconds=15)


def test_only_a_starting_runtime_is_measured():
    never = starting_pod(ready_since=_at(95), started=_at(90))
    dep = restarted_deployment()
    dep["status"] = {**READY}  # the Deployment counts it ready (the pod's body lags): READY, not measured
    assert observe(dep, [never]).not_ready_for is None
    crashing = starting_pod(ready_since=_at(95), started=None)
    crashing["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert observe(restarted_deployment(), [crashing], runtime_status=None).not_ready_for is None  # EXITED


def test_a_start_time_ahead_of_the_operators_clock_is_not_ready_for_zero():
    ahead = starting_pod(ready_since=_at(-5), started=_at(-5))
    assert observe(restarted_deployment(), [ahead], runtime_status=None).not_ready_for == timedelta(0)


def test_two_pods_of_the_current_template_count_only_when_neither_has_been_ready():
    older = starting_pod(ready_since=_at(95), started=_at(90))
    younger = starting_pod(ready_since=_at(45), started=_at(40))
    assert observe(restarted_deployment(), [older, younger], runtime_status=None).not_ready_for == timedelta(seconds=40)
    was_ready = starting_pod(ready_since=_at(10), started=_at(40))
    assert observe(restarted_deployment(), [older, was_ready], runtime_status=None).not_ready_for is None


# --- a starting runtime's own word: asked when its container runs (the Service publishes not-ready pods) ----------

HALTED = {
    "paused": False,
    "trading_mode": "halted",
    "health": {"reconcile": {"ok": False, "problems": 1, "last_problem": "position 0.1 BTC, exchange 0"}},
}


def test_a_starting_pod_whose_runtime_container_runs_may_answer_and_its_health_is_kept():
    running = starting_pod(ready_since=_at(95), started=_at(90))
    view = read_workload(restarted_deployment(), [running], strategy="btc")
    assert view.state is RuntimeState.STARTING and view.runtime_running is True
    observed = observed_runtime(view, HALTED, now=NOW)
    # Still starting (not ready), with what the runtime says, as the local backend passes it for a not-ready runtime.
    assert observed.state is RuntimeState.STARTING and observed.detail == ""
    assert observed.runtime_status == HALTED and observed.paused is False
    assert observed.not_ready_for == timedelta(seconds=90)


def test_a_starting_runtime_that_does_not_answer_has_no_status_yet_and_is_not_unresponsive():
    running = starting_pod(ready_since=_at(95), started=_at(90))
    view = read_workload(restarted_deployment(), [running], strategy="btc")
    observed = observed_runtime(view, None, now=NOW, unanswered="connection refused")
    assert observed.state is RuntimeState.STARTING
    assert observed.runtime_status == {} and observed.detail == "" and observed.paused is None


def test_only_a_running_runtime_container_of_the_current_template_may_answer():
    creating = starting_pod(ready_since=_at(99), started=None)
    assert read_workload(restarted_deployment(), [creating], strategy="btc").runtime_running is False
    old = starting_pod(ready_since=_at(95), started=_at(90), annotations={"slsbot.io/config-hash": "abc123"})
    assert read_workload(restarted_deployment(), [old], strategy="btc").runtime_running is False
    assert read_workload(deployment(status={}), [], strategy="btc").runtime_running is False
    leaving = starting_pod(ready_since=_at(95), started=_at(90))
    leaving["metadata"]["deletionTimestamp"] = _at(1)
    assert read_workload(restarted_deployment(), [leaving], strategy="btc").state is RuntimeState.TERMINATING
    assert read_workload(restarted_deployment(), [leaving], strategy="btc").runtime_running is False
