"""domain.promotion: what an A/B promotion copies into the baseline's spec, and whose a retired candidate is."""

from __future__ import annotations

from slsbot.api import Experiment, Strategy
from slsbot.domain.promotion import TRADING_LOGIC_FIELDS, owned_by, promoted_spec, same_trading_logic

BASE, CAND = "btc", "btc-v2"


def _strategy(name: str, *, fast: int = 10, account: str = "paper") -> Strategy:
    return Strategy.model_validate(
        {
            "metadata": {"name": name},
            "spec": {
                "accountRef": {"name": account},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": fast}}]},
                "marketData": {"source": "replay", "secondsPerCandle": 0.05},
            },
        }
    )


def _experiment() -> Experiment:
    return Experiment.model_validate(
        {
            "metadata": {"name": "ab"},
            "spec": {
                "type": "ab",
                "strategyRef": {"name": BASE},
                "variants": [
                    {"name": "baseline", "strategyRef": {"name": BASE}},
                    {"name": "candidate", "strategyRef": {"name": CAND}},
                ],
            },
        }
    )


def test_promoted_spec_takes_the_trading_logic_and_keeps_the_baselines_account_candles_and_port():
    baseline = _strategy(BASE).spec
    candidate = _strategy(CAND, fast=20, account="other").spec
    candidate.market_data.seconds_per_candle = 1.0
    candidate.paused = True
    candidate.runtime.image = "ghcr.io/slsbot/runtime:2"
    candidate.runtime.port = 9100
    spec = promoted_spec(baseline, candidate)
    for name in TRADING_LOGIC_FIELDS:
        if name != "runtime":
            assert getattr(spec, name) == getattr(candidate, name)
    assert spec.runtime.image == "ghcr.io/slsbot/runtime:2" and spec.runtime.port == baseline.runtime.port
    assert spec.account_ref.name == "paper" and spec.market_data.seconds_per_candle == 0.05 and not spec.paused
    assert same_trading_logic(spec, candidate) and not same_trading_logic(baseline, candidate)


def _owned(resource, *owners):
    references = [
        {"apiVersion": "slsbot.io/v1alpha1", "kind": kind, "name": name, "uid": uid} for kind, name, uid in owners
    ]
    metadata = resource.metadata.model_copy(update={"ownerReferences": references})
    return resource.model_copy(update={"metadata": metadata})


def test_the_candidate_is_the_experiments_to_delete_when_it_or_the_experiments_own_owner_owns_it():
    experiment = _experiment()
    experiment = experiment.model_copy(update={"metadata": experiment.metadata.model_copy(update={"uid": "u-ab"})})
    candidate = _strategy(CAND)
    assert not owned_by(candidate, experiment)
    assert owned_by(_owned(candidate, ("Experiment", "ab", "u-ab")), experiment)
    assert not owned_by(_owned(candidate, ("Experiment", "other", "u-x")), experiment)
    # A tuning run's promotion makes the candidate and the A/B Experiment, both owned by the tuning Experiment.
    tuned = _owned(experiment, ("Experiment", "btc-tuning", "u-t"))
    assert owned_by(_owned(candidate, ("Experiment", "btc-tuning", "u-t")), tuned)
    assert not owned_by(_owned(candidate, ("Experiment", "eth-tuning", "u-e")), tuned)
