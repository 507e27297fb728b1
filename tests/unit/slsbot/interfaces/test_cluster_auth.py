"""Which SubjectAccessReview each role asks for a request (pure), and the 403 a principal's refusal gives."""

from __future__ import annotations

import pytest

from slsbot.adapters.kubernetes.access_review import AccessQuestion, bounded_name
from slsbot.domain.errors import PermissionDenied
from slsbot.interfaces.admin_api.auth import Principal, Role
from slsbot.interfaces.admin_api.cluster_auth import access_questions


def test_a_collection_asks_list_patch_and_star_on_its_resource_cluster_wide_without_a_namespace():
    assert access_questions("/api/v1/strategies", None) == {
        Role.ADMIN: AccessQuestion(verb="*", resource="strategies"),
        Role.OPERATOR: AccessQuestion(verb="patch", resource="strategies"),
        Role.VIEWER: AccessQuestion(verb="list", resource="strategies"),
    }


def test_one_object_asks_get_and_patch_of_that_name_in_the_requested_namespace():
    questions = access_questions("/api/v1/experiments/ab-1/promote", "trading")
    assert questions[Role.VIEWER] == AccessQuestion(
        verb="get", resource="experiments", namespace="trading", name="ab-1"
    )
    assert questions[Role.OPERATOR] == AccessQuestion(
        verb="patch", resource="experiments", namespace="trading", name="ab-1"
    )
    assert questions[Role.ADMIN] == AccessQuestion(verb="*", resource="experiments", namespace="trading")


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/api/v1/incidents/inc-1/acknowledge", "incidents"),
        ("/api/v1/accounts/overview", "tradingaccounts"),
        ("/api/v1/events", "strategies"),
        ("/api/v1/audit/refused", "strategies"),
        ("/api/v1/fleet", "strategies"),
        ("/api/v1/riskpolicies", "riskpolicies"),
        ("/healthz", "strategies"),
    ],
)
def test_every_route_maps_to_a_slsbot_resource(path, resource):
    assert {q.resource for q in access_questions(path, None).values()} == {resource}
    assert all(q.group == "slsbot.io" for q in access_questions(path, None).values())


def test_an_empty_namespace_means_cluster_wide():
    assert all(q.namespace is None for q in access_questions("/api/v1/strategies", "").values())


def test_a_refused_role_names_the_authorizers_reason_in_the_403():
    principal = Principal(Role.VIEWER, "alice", refusals=((Role.ADMIN, "no star"), (Role.OPERATOR, "no patch here")))
    principal.require(Role.VIEWER)
    with pytest.raises(
        PermissionDenied, match=r"viewer:alice may not do this: it needs the operator role \(no patch here\)"
    ):
        principal.require(Role.OPERATOR)


def test_user_names_are_bounded():
    long = "system:serviceaccount:a-very-long-namespace-name:and-an-even-longer-service-account"
    assert len(bounded_name(long)) == 48 and bounded_name("alice") == "alice"


def test_the_kill_switch_asks_patch_of_that_risk_policy():
    questions = access_questions("/api/v1/riskpolicies/acct-risk/kill-switch", "trading")
    assert questions[Role.OPERATOR] == AccessQuestion(
        verb="patch", resource="riskpolicies", name="acct-risk", namespace="trading"
    )
    assert questions[Role.VIEWER] == AccessQuestion(
        verb="get", resource="riskpolicies", name="acct-risk", namespace="trading"
    )
