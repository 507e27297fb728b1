"""Every example manifest is accepted by its CRD's schema and by its model; bad values are rejected by the
CRD schema itself (as the API server would), with the error naming the field.

The API server validates against the structural schema; ``jsonschema``'s Draft 4 validator reads the same
OpenAPI v3.0 keywords (boolean ``exclusiveMinimum`` included) and ignores the ``x-kubernetes-*`` ones. CEL
rules are not evaluated here; the models check the same conditions (see tests/unit/slsbot/api/).

Unknown fields: a structural schema cannot forbid them; the API server prunes them, or rejects them when the
client asks for strict field validation (kubectl does by default). :func:`strict` models that by closing every
object that does not preserve unknown fields.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
import yaml

from slsbot.api import KINDS, Resource, parse_resource
from slsbot.domain.allocation import AllocationClaim, allocated_percent
from slsbot.domain.crd_schema import PRESERVE_UNKNOWN
from slsbot.domain.crds import build_crd

NOT_SLSBOT_KINDS = {"Namespace", "RuntimeConfig"}  # examples of other things, checked elsewhere
REPO = Path(__file__).resolve().parents[4]
EXAMPLE_FILES = sorted((REPO / "examples").rglob("*.yaml"))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _schema(kind: str) -> dict[str, Any]:
    return build_crd(KINDS[kind].kind_info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as strict field validation applies it: unknown fields are errors, not pruned."""
    closed = copy.deepcopy(schema)
    stack = [closed]
    while stack:
        node = stack.pop()
        if "properties" in node and not node.get(PRESERVE_UNKNOWN):
            node["additionalProperties"] = False
        stack.extend(node.get("properties", {}).values())
        if "items" in node:
            stack.append(node["items"])
    return closed


def crd_errors(document: dict[str, Any], *, strict_fields: bool = False) -> list[str]:
    schema = _schema(document["kind"])
    validator = jsonschema.Draft4Validator(strict(schema) if strict_fields else schema)
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def _example(folder: str, name: str) -> dict[str, Any]:
    [document] = _documents(REPO / "examples" / folder / name)
    return document


def _by_kind(folder: str) -> dict[str, dict[str, dict[str, Any]]]:
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted((REPO / "examples" / folder).glob("*.yaml")):
        for document in _documents(path):
            found.setdefault(document["kind"], {})[document["metadata"]["name"]] = document
    return found


def test_there_are_examples():
    assert len(EXAMPLE_FILES) >= 12


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_example_is_valid_under_its_crd_and_its_model(path):
    documents = _documents(path)
    assert documents, f"{path} is empty"
    for document in documents:
        kind = document.get("kind")
        if kind in NOT_SLSBOT_KINDS:
            continue
        assert kind in KINDS, f"{path}: kind {kind!r} is neither an slsbot kind nor a known other kind"
        assert crd_errors(document, strict_fields=True) == []
        resource = parse_resource(document)
        assert isinstance(resource, Resource)
        assert resource.spec.to_wire() == parse_resource(resource.to_wire()).spec.to_wire()


@pytest.mark.parametrize(("folder", "namespace"), [("cluster", "slsbot"), ("local", "default")])
def test_examples_reference_objects_in_the_same_folder_and_namespace(folder, namespace):
    found = _by_kind(folder)
    for kind, objects in found.items():
        if kind in KINDS:
            assert {doc["metadata"].get("namespace", "default") for doc in objects.values()} == {namespace}
    for account in found.get("TradingAccount", {}).values():
        if "riskPolicyRef" in account["spec"]:
            assert account["spec"]["riskPolicyRef"]["name"] in found["RiskPolicy"]
    for strategy in found.get("Strategy", {}).values():
        assert strategy["spec"]["accountRef"]["name"] in found["TradingAccount"]
    for experiment in found.get("Experiment", {}).values():
        refs = [experiment["spec"]["strategyRef"]] + [v["strategyRef"] for v in experiment["spec"].get("variants", [])]
        assert {ref["name"] for ref in refs} <= set(found["Strategy"])


@pytest.mark.parametrize("folder", ["cluster", "local"])
def test_the_strategies_of_each_example_account_claim_at_most_all_of_its_capital(folder):
    found = _by_kind(folder)
    claims = [AllocationClaim.of(parse_resource(doc)) for doc in found.get("Strategy", {}).values()]
    for account in found.get("TradingAccount", {}):
        assert allocated_percent(account, claims) <= 100, account


def test_cluster_examples_cover_what_the_issue_asks():
    found = _by_kind("cluster")
    accounts = [parse_resource(doc).spec for doc in found["TradingAccount"].values()]
    assert any(a.mode == "paper" and a.exchange == "binance" for a in accounts)
    live = [a for a in accounts if a.mode == "live"]
    assert live and all(a.credentials is not None and a.credentials.vault is not None for a in live)
    assert found["RiskPolicy"]
    strategies = [parse_resource(doc).spec for doc in found["Strategy"].values()]
    assert {tuple(s.symbols) for s in strategies} >= {("BTC/USDT",), ("ETH/USDT",)}
    for spec in strategies:
        assert spec.timeframe == "1h"
        ids = [m.strategy for m in spec.ensemble.members]
        assert "sma_cross" in ids and len(ids) >= 2
    assert {doc["spec"]["type"] for doc in found["Experiment"].values()} == {"tuning", "ab"}


def test_no_example_writes_a_secret_inline():
    for path in EXAMPLE_FILES:
        for document in _documents(path):
            text = yaml.safe_dump(document).lower()
            assert "apisecret" not in text and "privatekey" not in text, path
            credentials = document.get("spec", {}).get("credentials", {})
            assert set(credentials) <= {"vault", "secretRef"}, path


def test_local_examples_are_what_make_run_loads(repo_root):
    found = _by_kind("local")
    assert set(found) == {"TradingAccount", "RiskPolicy", "Strategy", "Experiment"}
    experiments = {name: parse_resource(doc) for name, doc in found["Experiment"].items()}
    assert {name: e.spec.type for name, e in experiments.items()} == {"btc-tuning": "tuning", "btc-ab": "ab"}
    tuning = experiments["btc-tuning"]
    assert tuning.spec.strategy_ref.name == "btc-trend"
    assert tuning.spec.history.data_dir is None  # it tunes on its Strategy's candles
    [account] = [parse_resource(doc) for doc in found["TradingAccount"].values()]
    assert account.name == "paper-binance" and account.spec.mode == "paper"
    assert account.spec.paper.starting_balance == 10_000 and account.spec.paper.quote_currency == "USDT"
    assert len(found["RiskPolicy"]) == 1
    strategies = {name: parse_resource(doc).spec for name, doc in found["Strategy"].items()}
    assert {name: spec.symbols for name, spec in strategies.items()} == {
        "btc-trend": ["BTC/USDT"],
        "btc-trend-candidate": ["BTC/USDT"],
        "eth-trend": ["ETH/USDT"],
    }
    members = {"btc-trend-candidate": {"fast": 20, "slow": 50}}
    for name, spec in strategies.items():
        assert spec.timeframe == "1h"
        assert spec.market_data.source == "replay"
        assert spec.market_data.data_dir == "../../data/market/binance-spot-1h-2024"  # from examples/local
        assert (spec.market_data.seconds_per_candle, spec.market_data.loop) == (0.1, True)
        assert [(m.name, m.strategy, m.params) for m in spec.ensemble.members] == [
            ("sma", "sma_cross", members.get(name, {"fast": 10, "slow": 30}))
        ]
        for symbol in spec.symbols:
            candles = (
                repo_root / "examples" / "local" / spec.market_data.data_dir / f"{symbol.replace('/', '_')}-1h.feather"
            )
            assert candles.exists(), f"{candles} is missing: make run would have no data"
    experiment = experiments["btc-ab"]
    assert (experiment.spec.baseline.strategy_ref.name, experiment.spec.candidate.strategy_ref.name) == (
        "btc-trend",
        "btc-trend-candidate",
    )


# Bad values are rejected by the CRD schema itself, naming the field; the model rejects them too.


def _broken(folder: str, name: str, change) -> dict[str, Any]:
    document = copy.deepcopy(_example(folder, name))
    change(document["spec"])
    return document


BAD = {
    "negative maxDrawdownPercent": (
        _broken("cluster", "10-riskpolicy-standard-risk.yaml", lambda s: s.update(maxDrawdownPercent=-5)),
        "spec.maxDrawdownPercent",
    ),
    "zero maxDrawdownPercent (exclusive minimum)": (
        _broken("cluster", "10-riskpolicy-standard-risk.yaml", lambda s: s.update(maxDrawdownPercent=0)),
        "spec.maxDrawdownPercent",
    ),
    "bad mode enum": (
        _broken("cluster", "20-tradingaccount-paper-binance.yaml", lambda s: s.update(mode="yolo")),
        "spec.mode",
    ),
    "bad timeframe enum": (
        _broken("cluster", "30-strategy-btc-trend.yaml", lambda s: s.update(timeframe="2h")),
        "spec.timeframe",
    ),
    "bad symbol pattern": (
        _broken("cluster", "30-strategy-btc-trend.yaml", lambda s: s.update(symbols=["BTCUSDT"])),
        "spec.symbols[0]",
    ),
    "missing required exchange": (
        _broken("cluster", "20-tradingaccount-paper-binance.yaml", lambda s: s.pop("exchange")),
        "'exchange' is a required property",
    ),
    "empty ensemble": (
        _broken("local", "30-strategy-btc-trend.yaml", lambda s: s["ensemble"].update(members=[])),
        "spec.ensemble.members",
    ),
    "string where a number goes": (
        _broken("cluster", "20-tradingaccount-paper-binance.yaml", lambda s: s["paper"].update(feeRate="cheap")),
        "spec.paper.feeRate",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_value_is_rejected_by_the_crd_schema_naming_the_field(case):
    document, field = BAD[case]
    errors = crd_errors(document)
    assert any(field in error for error in errors), errors
    with pytest.raises(pydantic.ValidationError):
        parse_resource(document)


def test_the_bounds_themselves_are_accepted():
    document = _broken("cluster", "10-riskpolicy-standard-risk.yaml", lambda s: s.update(maxDrawdownPercent=100))
    assert crd_errors(document) == []


def test_an_unknown_field_is_pruned_by_default_and_rejected_under_strict_field_validation():
    document = _broken("cluster", "10-riskpolicy-standard-risk.yaml", lambda s: s.update(maxDrawdownPercnt=5))
    assert crd_errors(document) == [], "a structural schema cannot forbid fields: the API server prunes them"
    errors = crd_errors(document, strict_fields=True)
    assert any("spec" in error and "maxDrawdownPercnt" in error for error in errors), errors
    with pytest.raises(pydantic.ValidationError, match="maxDrawdownPercnt"):
        parse_resource(document)


def test_free_form_params_keep_unknown_keys_even_under_strict_field_validation():
    document = _broken(
        "local", "30-strategy-btc-trend.yaml", lambda s: s["ensemble"]["members"][0]["params"].update(extra=1)
    )
    assert crd_errors(document, strict_fields=True) == []
