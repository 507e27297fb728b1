"""The vectorized bookkeeping of fast mode against the step loop's own pieces."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slsbot.api import Ensemble as EnsembleSpec
from slsbot_runtime.backtest.eligibility import FastModeUnavailable
from slsbot_runtime.backtest.vectorized import (
    NO_OPINION,
    batch_decisions,
    next_decisions,
    next_true,
    record_changes,
    targets,
    warm_mask,
)
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.data.gaps import GapTracker
from slsbot_runtime.data.replay import iterate_history
from slsbot_runtime.domain.types import Signal
from slsbot_runtime.engine.planning import plan_symbol, target_sign
from slsbot_runtime.engine.signals import ComponentDecider, EnsembleDecider
from slsbot_runtime.engine.track_record import SignalTrackRecord
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams
from slsbot_runtime.strategy.ensemble import Ensemble
from slsbot_runtime.strategy.registry import LIBRARY

H = 3_600_000


def test_warmup_matches_the_gap_tracker_across_the_real_33_hour_gap(market_data_dir):
    history = load_history(market_data_dir / "binance-spot-1h-2017", "BTC/USDT", "1h", interval_ms=H)
    history = history.slice(3_500, 5_000)  # 2018-01 .. 2018-03, around the 2018-02-08 outage
    tracker = GapTracker(interval_ms=H, warmup_candles=30)
    expected = []
    for candle in iterate_history(history):
        tracker.observe(candle)
        expected.append(tracker.is_warm(candle.symbol))
    mask = warm_mask(history.ts, interval_ms=H, warmup_candles=30)
    assert mask.tolist() == expected
    assert not all(expected[30:]), "the window must contain a gap that restarts the warmup"


@pytest.mark.parametrize("long_only", [True, False])
def test_targets_equal_the_planners_target_sign(long_only):
    directions = np.array([1.0, 0.3, 0.0, -0.0, -0.2, -1.0, math.nan])
    coded = targets(directions, long_only=long_only).tolist()
    expected = [target_sign(d, long_only=long_only, must_flatten=False) for d in directions]
    assert coded == [NO_OPINION if t is None else t for t in expected]


def test_next_true_points_at_the_next_set_entry():
    assert next_true(np.array([False, True, False, False, True, False])).tolist() == [1, 1, 4, 4, 4, 6, 6]


@pytest.mark.parametrize("entries_allowed", [True, False])
def test_the_next_decision_tables_agree_with_plan_symbol_at_every_candle(entries_allowed):
    rng = np.random.default_rng(7)
    directions = rng.choice([-1.0, 0.0, 1.0, 0.5], size=300)
    warm = rng.random(300) > 0.2
    tables = next_decisions(targets(directions, long_only=False), warm, entries_allowed=entries_allowed)
    for held in (-1, 0, 1):
        acting = [
            bool(
                plan_symbol(
                    direction=float(directions[i]),
                    position=float(held),
                    working=[],
                    long_only=False,
                    must_flatten=False,
                    entries_allowed=entries_allowed and bool(warm[i]),  # the loop's rule: only entries wait
                )
            )
            for i in range(300)
        ]
        assert tables[held] == next_true(np.array(acting)).tolist()


class _StepOnly(StrategyComponent):
    """A component with no vectorized form."""

    id = "step_only"
    Params = StrategyParams

    @property
    def warmup(self) -> int:
        return 0

    def on_candle(self, candle, features):
        return Signal(1.0)


class _ReadsFeatures(_StepOnly):
    id = "reads_features"
    required_features = ("rsi_14",)

    def signals(self, history, features):
        return np.ones(len(history))


def _ensemble(*strategies: str) -> EnsembleDecider:
    spec = EnsembleSpec.model_validate({"members": [{"name": s.replace("_", "-"), "strategy": s} for s in strategies]})
    return EnsembleDecider(Ensemble(spec, registry=LIBRARY.extended(_StepOnly, _ReadsFeatures)))


def _btc(market_data_dir):
    return load_history(market_data_dir / "binance-spot-1h-2017", "BTC/USDT", "1h", interval_ms=H).slice(0, 500)


def test_the_ensembles_batch_equals_its_decisions_candle_by_candle(market_data_dir):
    history = _btc(market_data_dir)
    batch = batch_decisions(_ensemble("sma_cross", "rsi_reversion", "donchian_breakout"), history)
    live = _ensemble("sma_cross", "rsi_reversion", "donchian_breakout")
    decided = [live.decide(candle) for candle in iterate_history(history)]
    assert batch.direction.tolist() == [d.direction for d in decided]
    # confidences agree to rounding only; fast mode never sizes from them (fixedQuantity sizing)
    assert batch.confidence.tolist() == pytest.approx([d.confidence for d in decided], abs=1e-9)


def test_a_member_without_a_vectorized_form_is_named(market_data_dir):
    with pytest.raises(FastModeUnavailable, match="step-only"):
        batch_decisions(_ensemble("sma_cross", "step_only"), _btc(market_data_dir))


def test_a_member_reading_features_is_refused_naming_it(market_data_dir):
    with pytest.raises(FastModeUnavailable, match=r"ensemble\.members\[reads-features\]: reads feature-engine"):
        batch_decisions(_ensemble("sma_cross", "reads_features"), _btc(market_data_dir))
    with pytest.raises(FastModeUnavailable, match="reads feature-engine"):
        batch_decisions(ComponentDecider(_ReadsFeatures()), _btc(market_data_dir))


@pytest.mark.parametrize("long_only", [True, False])
def test_the_track_record_fed_only_where_it_changes_is_the_one_fed_every_candle(market_data_dir, long_only):
    """Fast mode feeds the signal track record (Kelly sizing) only the candles ``record_changes`` finds: at every
    candle it must answer what the loop's record, fed every candle, answers."""
    history = load_history(market_data_dir / "binance-spot-1h-2017", "BTC/USDT", "1h", interval_ms=H).slice(0, 4_000)
    batch = batch_decisions(_ensemble("sma_cross", "rsi_reversion", "donchian_breakout"), history)
    target = targets(batch.direction, long_only=long_only)
    changes = set(record_changes(target).tolist())
    assert 100 < len(changes) < len(history) / 4
    every, sparse = SignalTrackRecord(0.002, min_trades=5), SignalTrackRecord(0.002, min_trades=5)
    answers = set()
    for i, (coded, close) in enumerate(zip(target.tolist(), history.close.tolist(), strict=True)):
        opinion = None if coded == NO_OPINION else coded
        every.observe(opinion, close)
        if i in changes:
            sparse.observe(opinion, close)
        assert sparse.win_rate_and_payoff() == every.win_rate_and_payoff(), i
        answers.add(every.win_rate_and_payoff())
    assert len(answers) > 50, "the record must have changed along the way"


def test_record_changes_of_a_short_series():
    o = NO_OPINION
    assert record_changes(np.array([o, 0, 1, o, 1, 0, 0, -1, o, -1, 1], dtype=np.int8)).tolist() == [2, 5, 7, 10]
    assert record_changes(np.array([], dtype=np.int8)).tolist() == []
