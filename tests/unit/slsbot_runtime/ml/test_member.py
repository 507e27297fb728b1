"""Models as ensemble members: a model out of the vote weighs nothing (the rule-based members decide as if it were
not there) and the attribution still sums to the net vote, in the loop and in fast mode."""

from __future__ import annotations

import numpy as np
import pytest

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import build_deciders
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.ml.wiring import build_model_bank

MODEL = {
    "name": "logit",
    "kind": "logisticRegression",
    "features": ["logret_1", "logret_6", "rsi_14", "macd_hist", "realized_vol_24", "bb_pctb_20"],
    "lookback": 400,
    "retrainEvery": "120h",
    "horizon": 2,
}


def _config(models: list[dict], voting: str = "confidence") -> RuntimeConfig:
    return RuntimeConfig.model_validate(
        {
            "name": "models",
            "account": {"name": "paper", "exchange": "binance"},
            "symbols": ["BTC/USDT"],
            "ensemble": {
                "voting": voting,
                "members": [
                    {"name": "trend", "strategy": "ema_cross", "params": {"fast": 12, "slow": 48, "mode": "level"}},
                    {"name": "rsi", "strategy": "rsi_reversion"},
                ],
            },
            "ml": {"models": models},
        }
    )


@pytest.mark.parametrize("voting", ["majority", "confidence", "sharpe"])
def test_a_model_out_of_the_vote_leaves_the_decision_to_the_others(btc_2024: OHLCV, voting: str) -> None:
    history = btc_2024.slice(0, 1200)
    with_model = _config([MODEL], voting)
    bank = build_model_bank(with_model, fast=True)  # in-process training, as fast mode does
    assert bank is not None
    decider = build_deciders(with_model, models=bank)["BTC/USDT"]
    rules = build_deciders(_config([], voting))["BTC/USDT"]
    out, voted = 0, 0
    for i in range(len(history)):
        candle = history.candle(i)
        decision = _decide(decider, candle)
        alone = _decide(rules, candle)
        contributions = decision.attribution
        assert sum(contributions.values()) == pytest.approx(decision.net_vote, abs=1e-12)
        if not bank.in_vote("logit"):
            out += 1
            assert decision.weights["logit"] == 0.0 and contributions["logit"] == 0.0
            if voting != "sharpe":  # sharpe weights track every member's signal, voting or not
                assert decision.direction == alone.direction and decision.net_vote == alone.net_vote
        else:
            voted += 1
            if voting != "sharpe" and decision.weights["logit"] > 0 and bank.signal("BTC/USDT", "logit")[0] != 0:
                assert contributions["logit"] != 0.0
    assert out > 300 and voted > 300  # missing until the first retrain, voting after


def _decide(decider, candle):  # the decider's own order: the bank sees the candle, then the ensemble decides
    if decider.prepare is not None:
        decider.prepare(candle)
    values = decider.features.update(candle) if decider.features is not None else {}
    return decider.ensemble.decide(candle, values)


def test_fast_mode_weights_a_model_out_of_the_vote_at_zero(btc_2024: OHLCV) -> None:
    history = btc_2024.slice(0, 1200)
    config = _config([MODEL])
    bank = build_model_bank(config, fast=True)
    assert bank is not None
    bank.run_batch([history])
    batch = build_deciders(config, models=bank)["BTC/USDT"].ensemble.decide_batch(history, {})
    mask = bank.vote_mask("BTC/USDT", "logit")
    column = list(batch.names).index("logit")
    assert (batch.contributions[~mask, column] == 0).all()
    assert np.allclose(batch.contributions.sum(axis=1), batch.net_vote, atol=1e-12)
    assert (batch.contributions[mask, column] != 0).mean() > 0.5
