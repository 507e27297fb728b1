"""plan_folder: what is in force after a folder of YAML is (re)read, file by file, with no I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slsbot.api import parse_resource
from slsbot.domain.manifests import AppliedFile, ManifestFile, plan_folder

A, B, C = Path("/m/a.yaml"), Path("/m/b.yaml"), Path("/m/c.yaml")


def account(name: str, exchange: str = "binance") -> Any:
    return parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": name},
            "spec": {"exchange": exchange},
        }
    )


def names(plan) -> list[str]:
    return [r.name for r in plan.resources]


def test_at_start_every_valid_file_is_in_force_in_name_order() -> None:
    plan = plan_folder([ManifestFile(B, "b1", (account("y"),)), ManifestFile(A, "a1", (account("x"),))], {})
    assert names(plan) == ["x", "y"]
    assert plan.refused == {}
    assert {path: applied.digest for path, applied in plan.applied.items()} == {A: "a1", B: "b1"}


def test_a_refused_file_keeps_its_last_good_objects_and_the_others_apply() -> None:
    current = {A: AppliedFile("a1", (account("x"),)), B: AppliedFile("b1", (account("y"),))}
    files = [
        ManifestFile(A, "a2", problems=("/m/a.yaml, document 1 (TradingAccount x): spec.exchange: bad",)),
        ManifestFile(B, "b2", (account("y", exchange="kraken"),)),
    ]
    plan = plan_folder(files, current)
    assert names(plan) == ["x", "y"]
    assert plan.applied[A] is current[A]
    assert plan.resources[1].spec.exchange == "kraken"
    assert plan.problems == ["/m/a.yaml, document 1 (TradingAccount x): spec.exchange: bad"]


def test_a_new_file_that_is_refused_adds_nothing() -> None:
    current = {A: AppliedFile("a1", (account("x"),))}
    plan = plan_folder([ManifestFile(A, "a1", (account("x"),)), ManifestFile(B, "b1", problems=("b: bad",))], current)
    assert names(plan) == ["x"] and B not in plan.applied and list(plan.refused) == [B]


def test_a_deleted_file_takes_its_objects_with_it() -> None:
    current = {A: AppliedFile("a1", (account("x"),)), B: AppliedFile("b1", (account("y"),))}
    plan = plan_folder([ManifestFile(A, "a1", (account("x"),))], current)
    assert names(plan) == ["x"] and plan.refused == {}


def test_an_object_another_file_already_declares_refuses_the_newcomer() -> None:
    current = {B: AppliedFile("b1", (account("x"),))}
    plan = plan_folder(
        [ManifestFile(A, "a1", (account("x"), account("z"))), ManifestFile(B, "b1", (account("x"),))], current
    )
    assert names(plan) == ["x"]
    assert plan.applied[B] is current[B]
    assert plan.problems == [
        "/m/a.yaml: TradingAccount default/x is also defined in /m/b.yaml; metadata.name must be unique per kind and "
        "namespace"
    ]


def test_between_two_new_files_the_first_in_name_order_keeps_the_object() -> None:
    plan = plan_folder([ManifestFile(A, "a1", (account("x"),)), ManifestFile(B, "b1", (account("x"),))], {})
    assert list(plan.applied) == [A] and list(plan.refused) == [B]


def test_an_object_moved_from_one_file_to_another_is_no_conflict() -> None:
    current = {A: AppliedFile("a1", (account("x"),)), B: AppliedFile("b1", (account("y"),))}
    plan = plan_folder([ManifestFile(A, "a2", ()), ManifestFile(B, "b2", (account("y"), account("x")))], current)
    assert sorted(names(plan)) == ["x", "y"] and plan.refused == {}


def test_a_refusal_that_brings_back_an_old_object_refuses_the_file_that_now_claims_it() -> None:
    """a.yaml gave x up (moved to c.yaml) but is now broken: it keeps x, so c.yaml's x is a duplicate."""
    current = {A: AppliedFile("a1", (account("x"),))}
    files = [ManifestFile(A, "a2", problems=("a: bad",)), ManifestFile(C, "c1", (account("x"),))]
    plan = plan_folder(files, current)
    assert names(plan) == ["x"] and plan.applied == {A: current[A]}
    assert set(plan.refused) == {A, C}
