"""Modes: step always runs, fast refuses what it cannot reproduce, auto falls back and says why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slsbot_runtime.backtest.eligibility import FastModeUnavailable
from slsbot_runtime.backtest.inputs import BacktestWindow
from slsbot_runtime.backtest.runner import run_backtest

WINDOW = BacktestWindow(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 7, 1, tzinfo=UTC))


def test_auto_runs_fast_when_the_config_is_eligible(sma_config):
    result = run_backtest(sma_config(), window=WINDOW, mode="auto")
    assert result.mode == "fast" and result.fallback_reason is None
    assert result.metrics["trades"] == len(result.trades) > 0


def test_the_same_inputs_give_the_same_fingerprint(sma_config):
    first = run_backtest(sma_config(), window=WINDOW, mode="step")
    second = run_backtest(sma_config(), window=WINDOW, mode="step")
    assert first.fingerprint == second.fingerprint and first.trades == second.trades
    other = run_backtest(sma_config(**{"account.paper.feeRate": 0.002}), window=WINDOW, mode="step")
    assert other.fingerprint != first.fingerprint


def test_fast_refuses_an_anomaly_model_naming_it_and_auto_falls_back(sma_config):
    config = sma_config(**{"ml.models": [{"name": "odd", "kind": "isolationForest", "role": "anomaly"}]})
    with pytest.raises(FastModeUnavailable, match=r"ml\.models\[odd\]"):
        run_backtest(config, window=WINDOW, mode="fast")
    month = BacktestWindow(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 2, 1, tzinfo=UTC))
    result = run_backtest(config, window=month, mode="auto")
    assert result.mode == "step"
    assert result.fallback_reason is not None and result.fallback_reason.startswith("ml.models[odd]")


def test_a_breaker_the_equity_path_trips_is_reproduced_in_fast_mode(sma_config):
    # 2 BTC a trade on 100,000 USDT: the 2020 swings draw the account down by more than 1%, which stops entries
    levels = [{"action": "stopEntries", "drawdownPercent": 1, "cooldown": "24h"}]
    config = sma_config(**{"sizing.quantity": 2.0, "risk.circuitBreaker.levels": levels})
    auto = run_backtest(config, window=WINDOW, mode="auto")
    step = run_backtest(config, window=WINDOW, mode="step")
    assert auto.mode == "fast" and auto.fallback_reason is None
    assert auto.fingerprint == step.fingerprint and auto.trades == step.trades
    unlimited = run_backtest(sma_config(**{"sizing.quantity": 2.0}), window=WINDOW, mode="step")
    assert step.metrics["trades"] < unlimited.metrics["trades"], "the breaker must have stopped some entries"


@pytest.mark.parametrize("mode", ["step", "fast"])
def test_progress_is_reported_up_to_every_candle_and_the_curve_is_kept(sma_config, mode):
    heard: list[tuple[int, int]] = []
    result = run_backtest(
        sma_config(), window=WINDOW, mode=mode, progress=lambda done, total: heard.append((done, total))
    )
    assert len(heard) >= 2, "a report every few thousand candles and one at the end"
    assert {total for _, total in heard} == {result.candles}
    assert [done for done, _ in heard] == sorted(done for done, _ in heard)
    assert heard[-1] == (result.candles, result.candles)
    assert len(result.equity_ts) == len(result.equity) == result.candles  # one symbol: a point per candle
    assert result.equity[-1] == result.metrics["final_equity"]
    assert result.metrics["total_return_pct"] == pytest.approx(100 * (result.equity[-1] / result.equity[0] - 1))


def test_the_equity_retention_of_the_config_never_changes_a_step_backtest(sma_config):
    # six months of candles, a window of one day thinned to one row per 4 hours, 100 rows at most: a runtime
    # with this config would keep a few hundred rows; the backtest reads every one of them
    thinned = sma_config(
        **{"state.equityRetention": {"fullResolution": "1d", "downsampleInterval": "4h", "maxDownsampledRows": 100}}
    )
    kept = run_backtest(sma_config(**{"state.equityRetention": {"keepAll": True}}), window=WINDOW, mode="step")
    result = run_backtest(thinned, window=WINDOW, mode="step")
    assert result.fingerprint == kept.fingerprint and result.metrics == kept.metrics
    assert result.candles == kept.candles > 4000
