"""The SMA 10/30 example against a reference implementation: backtrader's CrossOver strategy, trade by trade.

backtrader runs the strategy the example's comment describes: buy 0.1 BTC when the 10-candle SMA crosses above
the 30-candle SMA, close when it crosses back below, market orders filled at the next open, 0.1 % commission on
each side. On the recorded BTC/USDT 1h candles of 2024-09 to 2026-02 (gap-free, so no warmup after a gap
comes into play), both must make the same trades at the same times and prices. The backtrader side is
``bench.backtrader_sma_cross``, the reference ``make bench`` times step mode against.
"""

from __future__ import annotations

import pytest

from slsbot_runtime.backtest.runner import run_backtest
from slsbot_runtime.bench import backtrader_sma_cross
from slsbot_runtime.data.loaders import load_candle_file

pytestmark = pytest.mark.slow  # two runs over 12,560 candles, one of them in backtrader


def test_the_sma_example_makes_backtraders_crossover_trades(sma_config, repo_root):
    data_dir = repo_root / "data/market/binance-spot-1h-2024"
    history = load_candle_file(data_dir / "BTC_USDT-1h.feather", "BTC/USDT")
    expected = backtrader_sma_cross(history).trades  # the reference make bench times step mode against
    ours = run_backtest(sma_config(**{"marketData.dataDir": str(data_dir)}), mode="fast")
    assert ours.candles == len(history)
    assert len(ours.trades) == len(expected) == 248
    assert [(t.entry_ts, t.exit_ts) for t in ours.trades] == [(t["entry_ts"], t["exit_ts"]) for t in expected]
    assert [t.entry_price for t in ours.trades] == pytest.approx([t["entry_price"] for t in expected], rel=1e-12)
    assert [t.pnl for t in ours.trades] == pytest.approx([t["pnl"] for t in expected], rel=1e-9, abs=1e-9)
    assert {t.quantity for t in ours.trades} == {0.1}
