"""Map what the cluster reports (a Deployment, its pods, the runtime's own /status) into an ``ObservedRuntime``.

Pure: JSON dicts in, a dataclass out. The rules, in order:

* no Deployment: ``ABSENT``;
* the Deployment is being deleted, or an old pod is still shutting down while no new one is ready: ``TERMINATING``;
* a ready, up-to-date replica (the controller has seen the current generation, and every replica runs the current
  template): ``READY``, provided the runtime answered its ``/status``. A runtime whose pod is ready but which does
  not answer the operator (slow, overloaded, hung) is ``UNRESPONSIVE``: it is running and may hold open orders, so
  the strategy shows ``Degraded`` and a deletion waits for it (bounded) and asks it to drain again; the kubelet's
  liveness probe restarts it if it is truly hung;
* a container that cannot run (crash loop, image pull failure, a missing Secret or ConfigMap), a pod that cannot
  be scheduled, a failed pod, or a Deployment past its progress deadline: ``EXITED`` (a runtime that never ran
  cannot hold orders, and one that is not running cannot be drained: deleting its Strategy must not hang).
  The kubelet restarts crashed containers itself, hence ``backend_restarts_itself``;
* anything else (pending, pulling, warming up): ``STARTING``; with ``not_ready_for`` when the pod of the current
  template has not been ready since its runtime last started (``not_ready_since``), so the healing ladder can tell
  that a runtime it restarted has not come back. When that pod's runtime container runs (``runtime_running``), the
  backend asks its ``/status`` too (the Service publishes not-ready addresses): a runtime that halted itself, or
  cannot warm up, says why in its ``health`` block, as a local process does; no answer is no status yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slsbot.adapters.kubernetes.manifests import (
    ANNOTATION_CONFIG_HASH,
    ANNOTATION_CONTROL_TOKEN,
    ANNOTATION_NETWORK_POLICY,
    ANNOTATION_RESTARTED_AT,
    ANNOTATION_SERVICE,
    CONTAINER,
    LABEL_STRATEGY,
    PORT_NAME,
)
from slsbot.domain.plan import ObservedRuntime, RuntimeState
from slsbot.domain.runtime_errors import last_error_line
from slsbot.domain.timestamps import aware_time

# Waiting reasons of a container that will not start without a change (or the kubelet's next retry).
STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True, slots=True)
class WorkloadView:
    """What the Deployment and its pods say, before asking the runtime itself."""

    state: RuntimeState
    config_hash: str | None = None
    restarts: int = 0
    workload: str | None = None
    port: int | None = None
    problem: str | None = None  # why it is EXITED, for the operator's log
    control_token_id: str | None = None  # set by an earlier operator, whose pods read the token from an env variable
    network_policy_id: str | None = None  # the fingerprint of the network options its NetworkPolicy was made with
    not_ready_since: datetime | None = None  # STARTING: when the current pod's runtime last started, not ready since
    service_id: str | None = None  # the fingerprint of the Service's fixed fields it was made with
    runtime_running: bool = False  # STARTING: a pod of the current template runs the runtime container (may answer)


def read_workload(
    deployment: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]], *, strategy: str
) -> WorkloadView:
    if deployment is None:
        return WorkloadView(RuntimeState.ABSENT)
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    template = spec.get("template") or {}
    template_annotations = (template.get("metadata") or {}).get("annotations") or {}
    config_hash = template_annotations.get(ANNOTATION_CONFIG_HASH)
    own_pods = [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(LABEL_STRATEGY) == strategy]
    live_pods = [p for p in own_pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    state, problem = _state(deployment, own_pods, live_pods)
    since: datetime | None = None
    running = False
    if state is RuntimeState.STARTING:
        current = [p for p in live_pods if _runs_template(p, template_annotations)]
        # Every pod of the current template not ready since it started (one, under Recreate): the youngest counts.
        starts = [not_ready_since(p) for p in current]
        measured = [start for start in starts if start is not None]
        since = max(measured) if measured and len(measured) == len(starts) else None
        running = any(_runtime_running(p) for p in current)
    return WorkloadView(
        state,
        config_hash=config_hash,
        restarts=sum(_restarts(p) for p in live_pods),
        workload=f"Deployment/{meta.get('name')}",
        port=_runtime_port(template),
        problem=problem,
        control_token_id=template_annotations.get(ANNOTATION_CONTROL_TOKEN),
        network_policy_id=(meta.get("annotations") or {}).get(ANNOTATION_NETWORK_POLICY),
        not_ready_since=since,
        service_id=(meta.get("annotations") or {}).get(ANNOTATION_SERVICE),
        runtime_running=running,
    )


def observed_runtime(
    view: WorkloadView, runtime_status: Mapping[str, Any] | None, *, now: datetime, unanswered: str = ""
) -> ObservedRuntime:
    """Combine the cluster's view with the runtime's ``/status`` (None: it did not answer, ``unanswered`` says how)
    as of ``now``."""
    state, detail = view.state, view.problem or ""
    if state is RuntimeState.READY and runtime_status is None:
        state = RuntimeState.UNRESPONSIVE
        detail = (
            f"the pod is ready but the runtime does not answer /status: {unanswered}"
            if unanswered
            else ("the pod is ready but the runtime does not answer /status")
        )
    status = dict(runtime_status or {})
    paused = status.get("paused")
    not_ready_for = None
    if state is RuntimeState.STARTING and view.not_ready_since is not None:
        not_ready_for = max(now - view.not_ready_since, timedelta(0))
    return ObservedRuntime(
        state=state,
        config_hash=view.config_hash,
        paused=paused if isinstance(paused, bool) else None,
        restarts=view.restarts,
        workload=view.workload,
        runtime_status=status,
        backend_restarts_itself=True,
        detail=detail,
        not_ready_for=not_ready_for,
    )


def not_ready_since(pod: Mapping[str, Any]) -> datetime | None:
    """When the pod's runtime last started, provided it has not been ready since; None when it has been, or when the
    pod does not say. ``now`` minus this is ``ObservedRuntime.not_ready_for``, as the local backend measures it: how
    long the runtime has run since it (re)started without being ready once.

    "Started" is the runtime container's ``state.running.startedAt``: the kubelet renews it at every start of the
    container, its own restarts of a crashed one included, as the local backend renews a process's start time.
    Neither the Deployment's ``slsbot.io/restarted-at`` (when the ladder asked for the restart, before the old pod's
    drain, the scheduling and the image pull, and unchanged by the kubelet's restarts) nor the ``Ready`` condition's
    ``lastTransitionTime`` alone (for a pod that was ready and lost it, the time it lost it, which the local
    backend does not count) says that. "Not ready since" is the pod's ``Ready`` condition: ``False``, with its last
    transition at or before that start (one after it means it was ready in between; a kubelet that wrote the
    transition of a crash only after the next start reads the same way, and leaves the runtime without a verdict).

    A container that has not run yet in this pod (being created: a volume that will not attach, a slow pull) has
    not been ready since the kubelet took the pod: measured from the pod's ``startTime``."""
    status = pod.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    containers = _runtime_containers(pod)
    if ready is None or ready.get("status") != "False" or not containers:
        return None
    container = containers[0]
    running = (container.get("state") or {}).get("running")
    if running is not None:
        started, turned = aware_time(running.get("startedAt")), aware_time(ready.get("lastTransitionTime"))
        if started is None or turned is None or turned > started:
            return None
        return started
    ran_before = int(container.get("restartCount") or 0) > 0 or (container.get("lastState") or {}).get("terminated")
    return None if ran_before else aware_time(status.get("startTime"))


def _runtime_running(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's runtime container runs now (``state.running``): it may listen, ready or not."""
    return any((c.get("state") or {}).get("running") is not None for c in _runtime_containers(pod))


def _runs_template(pod: Mapping[str, Any], template_annotations: Mapping[str, Any]) -> bool:
    """Whether the pod was made from the Deployment's current template (a pod carries its template's annotations):
    the same config and the same restart."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    keys = (ANNOTATION_CONFIG_HASH, ANNOTATION_RESTARTED_AT)
    return all(annotations.get(key) == template_annotations.get(key) for key in keys)


def _state(
    deployment: Mapping[str, Any], own_pods: Sequence[Mapping[str, Any]], live_pods: Sequence[Mapping[str, Any]]
) -> tuple[RuntimeState, str | None]:
    meta = deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    if meta.get("deletionTimestamp"):
        return RuntimeState.TERMINATING, None
    if _rolled_out(deployment) and int(status.get("readyReplicas") or 0) >= 1:
        return RuntimeState.READY, None
    if len(own_pods) > len(live_pods):
        return RuntimeState.TERMINATING, None
    for pod in live_pods:
        problem = _pod_problem(pod)
        if problem is not None:
            return RuntimeState.EXITED, problem
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return RuntimeState.EXITED, f"ProgressDeadlineExceeded: {condition.get('message', '')}"
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return RuntimeState.EXITED, f"ReplicaFailure: {condition.get('message', '')}"
    return RuntimeState.STARTING, None


def _rolled_out(deployment: Mapping[str, Any]) -> bool:
    """The controller has seen the current spec and every replica runs the current template."""
    generation = (deployment.get("metadata") or {}).get("generation")
    status = deployment.get("status") or {}
    seen = status.get("observedGeneration")
    if generation is not None and seen is not None and int(seen) < int(generation):
        return False
    replicas = int(status.get("replicas") or 0)
    updated = status.get("updatedReplicas")
    return updated is None or int(updated) >= max(replicas, 1)


def _runtime_containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return [c for c in statuses if c.get("name") == CONTAINER]


def _restarts(pod: Mapping[str, Any]) -> int:
    return sum(int(c.get("restartCount") or 0) for c in _runtime_containers(pod))


def _pod_problem(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        return f"pod failed: {status.get('reason') or status.get('message') or 'unknown reason'}"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
            return f"Unschedulable: {condition.get('message', '')}".rstrip(": ")
    for container in _runtime_containers(pod):
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        last = (container.get("lastState") or {}).get("terminated")
        if waiting.get("reason") in STUCK_REASONS:
            problem = f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
            return f"{problem}; last exit: {_termination(last)}" if last else problem
        terminated = state.get("terminated")
        if terminated is not None:
            return _termination(terminated)
    return None


def _termination(terminated: Mapping[str, Any]) -> str:
    """``exited with code 2 (Error): <the container's last words>``: the termination message, which the runtime's
    ``terminationMessagePolicy: FallbackToLogsOnError`` fills with the end of its log when it wrote none."""
    text = f"exited with code {terminated.get('exitCode')}"
    if terminated.get("reason"):
        text += f" ({terminated['reason']})"
    last_words = last_error_line(str(terminated.get("message") or ""))
    return f"{text}: {last_words}" if last_words else text


def _runtime_port(template: Mapping[str, Any]) -> int | None:
    for container in (template.get("spec") or {}).get("containers") or []:
        if container.get("name") != CONTAINER:
            continue
        for port in container.get("ports") or []:
            if port.get("name") == PORT_NAME:
                return int(port["containerPort"])
    return None
