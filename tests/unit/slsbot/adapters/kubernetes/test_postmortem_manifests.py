"""The ConfigMap that keeps a post-mortem bundle on a cluster (pure builder, no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slsbot.adapters.kubernetes.postmortem_manifests import build_postmortem_configmap, postmortem_configmap_name
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.incidents import open_incident

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def incident(severity: int = 2):
    signal = IncidentSignal(
        cause="Drawdown:trading/btc",
        severity=severity,
        rule="Drawdown",
        namespace="trading",
        objects=("Strategy/btc",),
        message="drawdown 12%",
        runbook="runbooks/drawdown.md",
        detected_at=T0,
    )
    return open_incident(signal, T0, timedelta(minutes=2))


def test_the_configmap_is_named_for_the_incident_owned_by_it_labelled_and_immutable() -> None:
    made = incident()
    manifest = build_postmortem_configmap(made, incident_uid="uid-1", bundle_text='{"bundleVersion":1}')
    meta = manifest["metadata"]
    assert (manifest["apiVersion"], manifest["kind"]) == ("v1", "ConfigMap")
    assert meta["name"] == f"slsbot-postmortem-{made.id}" and meta["namespace"] == "trading"
    assert meta["ownerReferences"] == [
        {"apiVersion": "slsbot.io/v1alpha1", "kind": "Incident", "name": made.id, "uid": "uid-1"}
    ]  # no blockOwnerDeletion: it would need update on incidents/finalizers
    assert meta["labels"]["app.kubernetes.io/name"] == "slsbot-postmortem"
    assert meta["labels"]["slsbot.io/incident"] == made.id and meta["labels"]["slsbot.io/severity"] == "2"
    assert manifest["immutable"] is True
    assert manifest["data"] == {"bundle.json": '{"bundleVersion":1}'}


def test_a_name_past_the_limits_is_shortened_and_two_stay_apart() -> None:
    first, second = "a" * 250, "a" * 249 + "b"
    assert len(postmortem_configmap_name(first)) == 253
    assert postmortem_configmap_name(first) != postmortem_configmap_name(second)
    long = incident().model_copy(update={"id": "x" * 100})
    label = build_postmortem_configmap(long, incident_uid="u", bundle_text="{}")["metadata"]["labels"]
    assert len(label["slsbot.io/incident"]) == 63
