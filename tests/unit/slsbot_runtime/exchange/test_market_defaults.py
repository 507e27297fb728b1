"""The paper exchange's default market rules: Binance's spot filters for the recorded pairs, checked against the
recorded candles themselves (every price on the tick, the hourly volumes on the step), and a fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slsbot_runtime.exchange.market_defaults import FALLBACK_STEP, default_market_rules, recorded_symbols

RECORDED = Path(__file__).resolve().parents[4] / "data" / "market" / "binance-spot-1h-2024"


def test_the_eight_recorded_pairs_have_binance_filters() -> None:
    assert sorted(recorded_symbols()) == sorted(
        f"{base}/USDT" for base in ("BTC", "ETH", "BNB", "SOL", "XRP", "ADA", "DOGE", "LTC")
    )
    btc = default_market_rules("BTC/USDT")
    assert (btc.amount_step, btc.price_tick, btc.min_amount, btc.min_notional) == (0.00001, 0.01, 0.00001, 5.0)
    assert "Binance spot filters" in btc.source
    doge = default_market_rules("DOGE/USDT")
    assert (doge.amount_step, doge.price_tick) == (1.0, 0.00001)


def test_any_other_symbol_gets_the_fallback() -> None:
    for symbol in ("PEPE/USDT", "ETH/BTC", "BTC/USDT:USDT"):
        rules = default_market_rules(symbol)
        assert (rules.amount_step, rules.price_tick, rules.min_notional) == (FALLBACK_STEP, FALLBACK_STEP, 0.0)
        assert rules.symbol == symbol


@pytest.mark.parametrize("symbol", recorded_symbols())
def test_the_recorded_candles_trade_on_the_default_tick_and_step(symbol: str) -> None:
    rules = default_market_rules(symbol)
    frame = pd.read_feather(RECORDED / f"{symbol.replace('/', '_')}-1h.feather")
    prices = frame[["open", "high", "low", "close"]].to_numpy(dtype=np.float64)
    ticks = prices / rules.price_tick
    assert np.all(np.abs(ticks - np.round(ticks)) < 1e-6), f"a {symbol} price is off the {rules.price_tick} tick"
    # an hour's volume is a sum of trade quantities, each a whole number of steps: on the step (up to the
    # float error of large sums), and not on a 10x coarser one
    volume = frame["volume"].to_numpy(dtype=np.float64)
    steps = volume / rules.amount_step
    on_step = np.abs(steps - np.round(steps)) < np.maximum(1e-6, steps * 1e-12)
    assert on_step.mean() > 0.99
    coarser = volume / (rules.amount_step * 10)
    assert (np.abs(coarser - np.round(coarser)) < 1e-6).mean() < 0.5
