"""Restoring a Strategy's state on a cluster, as pure decisions: whether ``slsbot restore --kubernetes`` may begin,
and whether the operator must leave a runtime alone because a restore holds it.

How a cluster stops a runtime safely for a restore (docs/concepts/backups.md, "Restore on a cluster"): the Strategy
is paused first (``spec.paused``: no new entries, by the operator, through its runtime), then the restore puts the
hold annotation ``slsbot.io/restore`` on it, under which the operator takes no step on its runtime (no roll-out, no
restart, no healing), and scales the runtime's Deployment to 0 replicas. Deleting the Strategy would not do: its
deletion drains the runtime and deletes its state claim, the very state to restore. When the restore Job has ended,
the Deployment is scaled back to 1 and the annotation removed; the runtime starts on the restored file and reconciles
with the exchange before it trades. The Strategy stays paused until a person resumes it.
"""

from __future__ import annotations

from collections.abc import Mapping

ANNOTATION_RESTORE = "slsbot.io/restore"


def restore_hold(annotations: Mapping[str, str] | None) -> str | None:
    """What the hold annotation says (the snapshot and when the restore began), or None when there is none."""
    value = (annotations or {}).get(ANNOTATION_RESTORE)
    return value or None


def restore_refusal(
    *, namespace: str, strategy: str, paused: bool, deleting: bool, hold: str | None, has_claim: bool
) -> str | None:
    """Why the restore may not begin (nothing has been changed yet), or None when it may."""
    where = f"Strategy {namespace}/{strategy}"
    if deleting:
        return f"{where} is being deleted (its state claim goes with it); nothing to restore into"
    if not has_claim:
        return (
            f"{where} keeps its state in an emptyDir (no claim slsbot-runtime-{strategy}): there is no state file to "
            "put back; run it with a state claim (the default)"
        )
    if hold is not None:
        return (
            f"{where} is already held by a restore ({ANNOTATION_RESTORE}={hold}); wait for it to end, or if none "
            f"runs, remove the annotation: kubectl annotate strategy {strategy} -n {namespace} {ANNOTATION_RESTORE}-"
        )
    if not paused:
        return (
            f"{where} is not paused; pause it first (no new entries while its runtime is stopped): kubectl patch "
            f'strategy {strategy} -n {namespace} --type merge -p \'{{"spec":{{"paused":true}}}}\''
        )
    return None
