"""The kopf edge: slsbot errors become kopf's retry or stop, and wake-ups cut a strategy's sleep short."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from slsbot.api import TradingAccount
from slsbot.domain.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidSpecError,
    NotFoundError,
    PermissionDenied,
    RuntimeUnreachable,
)
from slsbot.interfaces.kopf_handlers import (
    FINALIZER,
    kopf_error,
    kopf_settings,
    namespace_dependencies,
    parsed_or_none,
)
from slsbot.interfaces.operator_steps import Wakeups


@pytest.mark.parametrize(
    ("error", "delay"),
    [
        (ConflictError("modified"), 0.5),
        (BackendUnavailable("down"), 5.0),
        (RuntimeUnreachable("refused"), 5.0),
        (NotFoundError("gone"), 10.0),
        (PermissionDenied("rbac"), 60.0),
    ],
)
def test_errors_that_may_pass_are_retried_after_a_delay_that_suits_them(error, delay):
    converted = kopf_error(error)
    assert isinstance(converted, kopf.TemporaryError)
    assert converted.delay == delay
    assert str(error) in str(converted)


def test_an_invalid_spec_stops_retrying_unless_the_caller_must_keep_going():
    assert isinstance(kopf_error(InvalidSpecError("spec.x: bad")), kopf.PermanentError)
    kept = kopf_error(InvalidSpecError("spec.x: bad"), permanent_if_invalid=False)
    assert isinstance(kept, kopf.TemporaryError) and kept.delay == 60.0


async def test_a_wake_up_ends_the_wait_and_unknown_objects_are_ignored():
    wakeups = Wakeups()
    event = wakeups.event("ns", "btc")
    assert wakeups.event("ns", "btc") is event
    wakeups.wake("ns", "eth")  # nobody waits for it: nothing happens
    waiter = asyncio.create_task(event.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    wakeups.wake("ns", "btc")
    await asyncio.wait_for(waiter, timeout=1)
    wakeups.forget("ns", "btc")
    assert wakeups.event("ns", "btc") is not event


def test_kopf_keeps_its_bookkeeping_under_our_group():
    settings = kopf_settings()
    assert settings.persistence.finalizer == FINALIZER == "slsbot.io/finalizer"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.peering.standalone is True


def test_kopf_watches_neither_crds_nor_namespaces_so_the_operator_needs_no_cluster_wide_rights():
    assert kopf_settings().scanning.disabled is True


def _account(name: str, namespace: str = "ns", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "TradingAccount",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"exchange": "binance", "mode": "paper", **spec},
    }


def test_kopfs_bodies_are_parsed_once_and_a_refused_one_is_left_out_of_the_index():
    parsed = parsed_or_none(TradingAccount, kopf.Body(_account("paper")))
    assert isinstance(parsed, TradingAccount) and parsed.name == "paper"
    assert parsed_or_none(TradingAccount, kopf.Body(_account("casino", mode="casino"))) is None


def test_a_pass_sees_a_snapshot_of_its_namespaces_accounts_and_policies_by_name():
    accounts = {"ns": [TradingAccount.model_validate(_account("a")), TradingAccount.model_validate(_account("b"))]}
    accounts["other"] = [TradingAccount.model_validate(_account("c", "other"))]
    dependencies = namespace_dependencies(accounts, {}, "ns")  # kopf.Index: key -> the values of its objects
    assert sorted(dependencies.accounts) == ["a", "b"] and dependencies.policies == {}
    accounts["ns"].pop()  # kopf updates its index later: the pass's snapshot does not change under it
    assert sorted(dependencies.accounts) == ["a", "b"]
