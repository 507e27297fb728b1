"""Fast mode gives exactly the step mode's trades, equity and fingerprint on real candles, including the
cases where the paper exchange does something other than a clean fill at the next open."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest
import yaml

from slsbot_runtime.backtest.fast import run_fast
from slsbot_runtime.backtest.inputs import BacktestWindow, backtest_config, load_window
from slsbot_runtime.backtest.report import RunRecord
from slsbot_runtime.backtest.runner import run_backtest
from slsbot_runtime.backtest.step import run_step

WINDOW = BacktestWindow(datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 9, 1, tzinfo=UTC))


def _both(config, window=WINDOW) -> tuple[RunRecord, RunRecord]:
    prepared = backtest_config(config, data_dir=None, window=window)
    histories = load_window(prepared, window)
    return run_step(prepared, histories), run_fast(prepared, histories)


def _assert_same(step: RunRecord, fast: RunRecord) -> None:
    assert fast.fills == step.fills
    assert np.array_equal(fast.candle_ts, step.candle_ts)
    assert np.array_equal(fast.equity, step.equity)  # bit for bit


@pytest.mark.slow
def test_the_sma_example_over_five_years_of_btc_gives_identical_trades_and_fingerprint(sma_config):
    config = sma_config()
    step = run_backtest(config, mode="step")
    fast = run_backtest(config, mode="fast")
    assert step.candles == fast.candles == 45_024
    assert len(step.trades) > 500
    assert fast.trades == step.trades
    assert fast.metrics == step.metrics
    assert fast.fingerprint == step.fingerprint
    assert (step.mode, fast.mode) == ("step", "fast")


def test_partial_fills_latency_spread_and_slippage_match(sma_config):
    config = sma_config(
        **{
            "sizing.quantity": 1.0,
            "account.paper.maxVolumeParticipation": 0.0005,
            "account.paper.latencyMs": 60_000,
            "account.paper.spreadBps": 5,
            "account.paper.slippageBps": 3,
        }
    )
    step, fast = _both(config)
    per_order = Counter(fill.client_order_id for fill in step.fills)
    assert max(per_order.values()) > 1, "the scenario must produce partial fills"
    _assert_same(step, fast)


def test_shorts_and_buys_cut_by_the_cash_balance_match(sma_config):
    # 600 USDT: the crossings of 2019 come when 0.1 BTC costs more than the cash left
    config = sma_config(**{"longOnly": False, "account.paper.startingBalance": 600, "sizing.quantity": 0.1})
    step, fast = _both(config)
    buys = [fill for fill in step.fills if fill.side == "buy"]
    assert any(fill.quantity < 0.1 - 1e-9 for fill in buys), "some buys must be cut to what the cash pays for"
    assert any(fill.side == "sell" for fill in step.fills)
    _assert_same(step, fast)


def test_two_symbols_sharing_the_account_across_real_gaps_match(sma_config):
    window = BacktestWindow(datetime(2018, 1, 1, tzinfo=UTC), datetime(2018, 8, 1, tzinfo=UTC))
    config = sma_config(
        **{"symbols": ["BTC/USDT", "ETH/USDT"], "sizing.quantity": 1.0, "account.paper.startingBalance": 15_000}
    )
    step, fast = _both(config, window)
    assert {fill.symbol for fill in step.fills} == {"BTC/USDT", "ETH/USDT"}
    _assert_same(step, fast)


def test_an_exit_during_the_warmup_after_the_real_33_hour_outage_matches(sma_config):
    # the turtle rule's exit comes 29 candles after the 2018-02-08 outage, inside the 50-candle warmup:
    # only entries wait for the warmup, so both modes sell there
    gap_next = int(datetime(2018, 2, 9, 10, tzinfo=UTC).timestamp() * 1000)  # the first candle after the outage
    window = BacktestWindow(datetime(2018, 1, 1, tzinfo=UTC), datetime(2018, 3, 1, tzinfo=UTC))
    turtle = {"members": [{"name": "turtle", "strategy": "donchian_breakout"}]}
    config = sma_config(**{"ensemble": turtle, "marketData.warmupCandles": 50})
    step, fast = _both(config, window)
    hour = 3_600_000
    during = [fill for fill in step.fills if gap_next < fill.ts <= gap_next + 50 * hour]
    assert [(fill.side, (fill.ts - gap_next) // hour) for fill in during] == [("sell", 30)]
    _assert_same(step, fast)


def test_a_paused_config_trades_nothing_in_either_mode(sma_config):
    step, fast = _both(sma_config(paused=True))
    assert step.fills == [] and fast.fills == []
    _assert_same(step, fast)


@pytest.mark.parametrize("voting", ["majority", "confidence", "sharpe"])
def test_the_whole_library_as_one_ensemble_matches_for_every_voting_method(sma_config, repo_root, voting):
    ensemble = yaml.safe_load((repo_root / "examples/backtest/ensemble-8-symbols.yaml").read_text())["ensemble"]
    config = sma_config(
        **{
            "ensemble": {**ensemble, "voting": voting},
            "marketData.dataDir": str(repo_root / "data/market/binance-spot-1h-2024"),
            "marketData.warmupCandles": 200,
        }
    )
    window = BacktestWindow(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC))
    step, fast = _both(config, window)
    assert len(step.fills) > 10
    _assert_same(step, fast)


def test_fixed_sizes_cut_by_the_per_trade_maximum_and_exposure_caps_match(sma_config):
    config = sma_config(
        **{
            "symbols": ["BTC/USDT", "ETH/USDT"],
            "sizing.quantity": 2.0,
            "account.paper.startingBalance": 50_000,
            "risk.perTrade.maxPercent": 12,
            "risk.maxTotalExposurePercent": 20,
        }
    )
    step, fast = _both(config)
    entries = {fill.client_order_id: fill.quantity for fill in step.fills if fill.side == "buy"}
    assert len(set(entries.values())) > 10, "entries must be resized along the equity path"
    _assert_same(step, fast)


def _short_entries(fills) -> dict[str, float]:
    """Client id -> quantity sold, for the orders that opened a short from flat."""
    held: dict[str, float] = {}
    seen: set[str] = set()
    sold: dict[str, float] = {}
    for fill in fills:
        before = held.get(fill.symbol, 0.0)
        if fill.client_order_id not in seen and fill.side == "sell" and abs(before) <= 1e-12:
            sold[fill.client_order_id] = 0.0
        seen.add(fill.client_order_id)
        if fill.client_order_id in sold:
            sold[fill.client_order_id] += fill.quantity
        held[fill.symbol] = before + (fill.quantity if fill.side == "buy" else -fill.quantity)
    return sold


def test_shorts_cut_by_their_collateral_across_two_symbols_and_their_interest_match(sma_config):
    """Each entry is sized to the whole equity (perTrade.maxPercent 100); fully collateralised shorts are cut to
    what the equity backs, which values the other symbol's holding at its last close: fast mode must give the
    exchange the closes of the candles it skips."""
    window = BacktestWindow(datetime(2018, 1, 1, tzinfo=UTC), datetime(2018, 8, 1, tzinfo=UTC))
    changes = {
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "longOnly": False,
        "sizing.quantity": 10.0,
        "account.paper.startingBalance": 5_000,
        "account.paper.shortBorrowRatePerDay": 0.001,
        "risk.maxLeverage": 5,
    }
    step, fast = _both(sma_config(**changes, **{"account.paper.shortInitialMargin": 1.0}), window)
    loose, _ = _both(sma_config(**changes, **{"account.paper.shortInitialMargin": 0.01}), window)
    collateralised, uncollateralised = _short_entries(step.fills), _short_entries(loose.fills)
    cut = [cid for cid, sold in collateralised.items() if sold < uncollateralised.get(cid, 0.0) - 1e-9]
    assert len(cut) > 10, "shorts must be cut by their collateral"
    covers = [f for f in step.fills if f.side == "buy" and f.fee > f.quantity * f.price * 0.001 * (1 + 1e-9)]
    assert len(covers) > 10, "buying back a short must pay its interest"
    _assert_same(step, fast)
