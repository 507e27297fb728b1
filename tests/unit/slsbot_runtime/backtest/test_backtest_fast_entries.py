"""How fast mode sizes an entry by the ensemble's confidence: the vectorized confidence when a hair either side of
it gives the same size, else the live decider's own confidence, fed the symbol's candles up to the entry."""

from __future__ import annotations

from array import array
from pathlib import Path

import numpy as np
import pytest
import yaml

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import build_deciders
from slsbot_runtime.backtest.eligibility import FastModeUnavailable
from slsbot_runtime.backtest.fast_entries import CONFIDENCE_SLACK, EntrySizer, SymbolEntries
from slsbot_runtime.backtest.vectorized import batch_decisions, record_changes, targets
from slsbot_runtime.config_loading import parse_runtime_config
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.data.replay import iterate_history
from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import PortfolioSnapshot, Side
from slsbot_runtime.engine.track_record import SignalTrackRecord
from slsbot_runtime.risk.base import TradeProposal
from slsbot_runtime.risk.manager import RiskManager

REPO = Path(__file__).resolve().parents[4]
H = 3_600_000
STEP = 1e-5  # the amount step of the market the entry is sized for


def _config(**ml) -> RuntimeConfig:
    data = yaml.safe_load((REPO / "examples/backtest/ensemble-8-symbols.yaml").read_text())
    data["symbols"] = ["BTC/USDT"]
    data["risk"]["perTrade"] = {"minPercent": 0.001, "maxPercent": 100}  # nothing clamps the Kelly size
    data["risk"]["maxSymbolExposurePercent"] = 1000
    data["ml"] = ml
    return parse_runtime_config(data)


@pytest.fixture(scope="module")
def btc():
    return load_history(REPO / "data/market/binance-spot-1h-2024", "BTC/USDT", "1h", interval_ms=H).slice(0, 800)


def _entries(config: RuntimeConfig, history) -> SymbolEntries:
    decided = batch_decisions(build_deciders(config)["BTC/USDT"], history)
    target = targets(decided.direction, long_only=True)
    return SymbolEntries(
        symbol="BTC/USDT",
        history=history,
        targets=array("b", target.tobytes()),
        closes=array("d", history.close.tolist()),
        directions=array("d", decided.direction.tolist()),
        confidences=array("d", decided.confidence.tolist()),
        changes=array("q", record_changes(target).tolist()),
        halted=None,
        record=SignalTrackRecord(0.002),
    )


def _live_confidence(config: RuntimeConfig, history, i: int) -> float:
    decider = build_deciders(config)["BTC/USDT"]
    for t, candle in enumerate(iterate_history(history)):
        decision = decider.decide(candle)
        if t == i:
            return min(max(decision.confidence, 0.0), 1.0)
    raise AssertionError(i)


def _on_a_step(config: RuntimeConfig, confidence: float, price: float) -> float:
    """The equity at which a Kelly size from ``confidence`` is a whole number of steps (10,000 of them)."""
    return 10_000 * STEP * price / (confidence * min(config.risk.kelly_fraction, 0.25))


def test_an_entry_whose_size_a_hair_of_confidence_would_change_is_sized_by_the_live_confidence(btc):
    config = _config()
    entries = _entries(config, btc)
    i = next(t for t in range(300, len(btc)) if entries.directions[t] > 0 and 0.05 < entries.confidences[t] < 0.95)
    live = _live_confidence(config, btc, i)
    assert live == pytest.approx(entries.confidences[i], abs=CONFIDENCE_SLACK)  # they agree to rounding
    price = entries.closes[i]
    rules = MarketRules("BTC/USDT", amount_step=STEP, price_tick=0.01)
    equity = _on_a_step(config, live, price)
    portfolio = PortfolioSnapshot(int(btc.ts[i]), equity, equity)
    risk = RiskManager(config.risk, config.sizing, True)
    sizer = EntrySizer(config, risk)
    quantity = sizer.size(entries, i, Side.BUY, price, rules, portfolio)
    assert entries.record.win_rate_and_payoff() == (None, None)  # too few round trips yet: the confidence sizes
    assert sizer.live_candles == i + 1, "the live decider must have been fed every candle up to the entry"

    def sized(confidence: float) -> float:
        proposal = TradeProposal("BTC/USDT", Side.BUY, price, confidence, is_entry=True, rules=rules)
        return risk.evaluate(proposal, portfolio).quantity

    assert quantity == sized(live)
    assert sized(live - CONFIDENCE_SLACK) != sized(live + CONFIDENCE_SLACK)  # a step boundary lies between


def test_an_entry_a_hair_of_confidence_does_not_change_is_sized_without_the_live_decider(btc):
    config = _config()
    entries = _entries(config, btc)
    i = next(t for t in range(300, len(btc)) if entries.directions[t] > 0 and 0.05 < entries.confidences[t] < 0.95)
    price = entries.closes[i]
    rules = MarketRules("BTC/USDT", amount_step=STEP, price_tick=0.01)
    equity = _on_a_step(config, entries.confidences[i], price) * 1.00003  # a third of a step past the boundary
    portfolio = PortfolioSnapshot(int(btc.ts[i]), equity, equity)
    sizer = EntrySizer(config, RiskManager(config.risk, config.sizing, True))
    quantity = sizer.size(entries, i, Side.BUY, price, rules, portfolio)
    assert sizer.live_candles == 0
    assert quantity == pytest.approx(10_000 * STEP)
    assert np.isclose(quantity / STEP, round(quantity / STEP))


def test_with_signal_models_voting_an_entry_that_needs_the_live_confidence_is_refused_naming_why(btc):
    config = _config()
    entries = _entries(config, btc)
    with_models = _config(models=[{"name": "rf", "kind": "randomForest"}])
    i = next(t for t in range(300, len(btc)) if entries.directions[t] > 0 and 0.05 < entries.confidences[t] < 0.95)
    price = entries.closes[i]
    rules = MarketRules("BTC/USDT", amount_step=STEP, price_tick=0.01)
    equity = _on_a_step(config, entries.confidences[i], price)
    portfolio = PortfolioSnapshot(int(btc.ts[i]), equity, equity)
    sizer = EntrySizer(with_models, RiskManager(config.risk, config.sizing, True))
    with pytest.raises(FastModeUnavailable, match=r"^.*sizing\.method: the entry on BTC/USDT at .* --mode step"):
        sizer.size(entries, i, Side.BUY, price, rules, portfolio)
