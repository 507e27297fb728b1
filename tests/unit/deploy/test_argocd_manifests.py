"""deploy/argocd/ agrees with itself, with the CRDs and with examples/cluster/: the argocd-cm patch is what the .lua
files generate, every slsbot kind the examples use has a health check, the sync waves order every object after what
it names, and the Applications cover the examples once each, ignoring only fields that exist."""

from __future__ import annotations

import importlib.util
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
ARGOCD = REPO / "deploy" / "argocd"
EXAMPLES = REPO / "examples" / "cluster"
WAVE = "argocd.argoproj.io/sync-wave"
# Each kind after the kinds it names: a policy's accounts, an account's strategies, a strategy's experiments.
KIND_ORDER = ["Namespace", "RiskPolicy", "TradingAccount", "Strategy", "Experiment"]


def _generator():
    spec = importlib.util.spec_from_file_location("argocd_generate", ARGOCD / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _generator()


def examples() -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(EXAMPLES.glob("*.yaml"))}


def wave(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["annotations"][WAVE])


def test_the_argocd_cm_patch_is_what_the_health_scripts_generate():
    scripts = generate.health_scripts()
    assert generate.PATCH.read_text() == generate.render_patch(scripts), (
        "run: .venv/bin/python deploy/argocd/generate.py"
    )
    patch = yaml.safe_load(generate.PATCH.read_text())
    assert (patch["kind"], patch["metadata"]["name"], patch["metadata"]["namespace"]) == (
        "ConfigMap",
        "argocd-cm",
        "argocd",
    )
    common = (ARGOCD / "health" / "_common.lua").read_text()
    lua = {
        f"resource.customizations.health.{path.stem}": common + path.read_text()
        for path in ARGOCD.glob("health/*_*.lua")
        if path.name != "_common.lua"
    }
    assert len(lua) == 4
    assert patch["data"] == lua  # byte for byte, as YAML reads the block scalars back


def test_every_slsbot_kind_of_the_examples_has_a_health_check_under_argo_cds_key():
    kinds = {obj["kind"] for obj in examples().values() if obj["apiVersion"].startswith("slsbot.io/")}
    keys = set(generate.health_scripts())
    assert kinds == {"RiskPolicy", "TradingAccount", "Strategy", "Experiment"}
    assert {f"resource.customizations.health.slsbot.io_{kind}" for kind in kinds} <= keys


def test_the_generator_refuses_a_script_named_without_its_group_and_kind(tmp_path):
    (tmp_path / "strategy.lua").write_text("return {}\n")
    with pytest.raises(ValueError, match=r"name a health check <group>_<Kind>\.lua"):
        generate.health_scripts(tmp_path)


def test_the_generator_refuses_what_a_yaml_block_scalar_would_change(tmp_path):
    (tmp_path / "slsbot.io_Strategy.lua").write_text("local hs = {}  \nreturn hs\n")
    with pytest.raises(ValueError, match="trailing spaces"):
        generate.health_scripts(tmp_path)


def test_every_example_has_a_sync_wave_by_its_kind_policies_before_accounts_before_strategies_before_experiments():
    found = examples()
    missing = [name for name, obj in found.items() if WAVE not in (obj["metadata"].get("annotations") or {})]
    assert missing == []
    by_kind: dict[str, set[int]] = {}
    for obj in found.values():
        assert isinstance(obj["metadata"]["annotations"][WAVE], str)  # annotations are strings
        by_kind.setdefault(obj["kind"], set()).add(wave(obj))
    assert all(len(waves) == 1 for waves in by_kind.values()), by_kind
    ordered = [by_kind[kind].pop() for kind in KIND_ORDER]
    assert ordered == sorted(set(ordered)), dict(zip(KIND_ORDER, ordered, strict=True))


def references(obj: dict[str, Any]) -> list[tuple[str, str]]:
    spec = obj.get("spec") or {}
    named = []
    if "accountRef" in spec:
        named.append(("TradingAccount", spec["accountRef"]["name"]))
    if "riskPolicyRef" in spec:
        named.append(("RiskPolicy", spec["riskPolicyRef"]["name"]))
    if "strategyRef" in spec:
        named.append(("Strategy", spec["strategyRef"]["name"]))
    named += [("Strategy", v["strategyRef"]["name"]) for v in spec.get("variants") or []]
    if obj["metadata"].get("namespace"):
        named.append(("Namespace", obj["metadata"]["namespace"]))
    return named


def test_every_object_comes_in_a_later_wave_than_everything_it_names():
    found = examples()
    waves = {(obj["kind"], obj["metadata"]["name"]): wave(obj) for obj in found.values()}
    for name, obj in found.items():
        for ref in references(obj):
            assert ref in waves, f"{name} names {ref}, which no example declares"
            assert waves[ref] < wave(obj), f"{name} (wave {wave(obj)}) names {ref} of wave {waves[ref]}"


def applications() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((ARGOCD / "application.yaml").read_text()))


def selected(app: dict[str, Any]) -> set[str]:
    directory = app["spec"]["source"].get("directory") or {}
    names = {path.name for path in (REPO / app["spec"]["source"]["path"]).glob("*.yaml")}
    if "include" in directory:
        names = {n for n in names if fnmatch(n, directory["include"])}
    if "exclude" in directory:
        names = {n for n in names if not fnmatch(n, directory["exclude"])}
    return names


def test_the_applications_sync_every_example_once_and_only_the_bots_wait_wave_by_wave():
    apps = {app["metadata"]["name"]: app for app in applications()}
    assert set(apps) == {"slsbot-bots", "slsbot-experiments"}
    bots, experiments = selected(apps["slsbot-bots"]), selected(apps["slsbot-experiments"])
    assert bots.isdisjoint(experiments) and bots | experiments == set(examples())
    found = examples()
    assert {found[n]["kind"] for n in experiments} == {"Experiment"}
    # One wave: Argo CD applies the Experiments without waiting for their health (an A/B test steps for days).
    assert len({wave(found[n]) for n in experiments}) == 1
    assert sorted({wave(found[n]) for n in bots}) == [0, 1, 2, 3]


def crd_schema(kind: str) -> dict[str, Any]:
    for path in (REPO / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    raise AssertionError(f"no CRD for {kind}")


def test_the_applications_ignore_only_spec_fields_that_exist_and_respect_that_in_a_sync():
    ignored = 0
    for app in applications():
        assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]
        for rule in app["spec"]["ignoreDifferences"]:
            assert rule["group"] == "slsbot.io"
            for pointer in rule["jsonPointers"]:
                node = crd_schema(rule["kind"])
                for part in pointer.strip("/").split("/"):
                    assert part in node.get("properties", {}), f"{rule['kind']} has no {pointer}"
                    node = node["properties"][part]
                assert node["type"] == "boolean", (rule["kind"], pointer)
                ignored += 1
    assert ignored == 5  # Strategy paused, RiskPolicy killSwitch, Experiment paused, abort, promote
