"""The SMA 10/30 example against a reference implementation: backtrader's CrossOver strategy, trade by trade.

backtrader runs the strategy the example's comment describes: buy 0.1 BTC when the 10-candle SMA crosses above
the 30-candle SMA, close when it crosses back below, market orders filled at the next open, 0.1 % commission on
each side. On the recorded BTC/USDT 1h candles of 2024-09 to 2026-02 (gap-free, so no warmup after a gap
comes into play), both must make the same trades at the same times and prices.
"""

from __future__ import annotations

import calendar
import warnings

import pandas as pd
import pytest

from slsbot_runtime.backtest.runner import run_backtest
from slsbot_runtime.data.loaders import load_candle_file
from slsbot_runtime.features.base import OHLCV

with warnings.catch_warnings():  # backtrader 1.9.78's docstrings hold invalid escape sequences
    warnings.simplefilter("ignore", DeprecationWarning)
    import backtrader as bt

pytestmark = pytest.mark.slow  # two runs over 12,560 candles, one of them in backtrader


class _SmaCrossover(bt.Strategy):
    params = (("fast", 10), ("slow", 30), ("size", 0.1))

    def __init__(self) -> None:
        fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
        slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
        self.crossover = bt.indicators.CrossOver(fast, slow)
        self.trades: list[dict] = []

    def next(self) -> None:
        if not self.position:
            if self.crossover > 0:
                self.buy(size=self.p.size)
        elif self.crossover < 0:
            self.close()

    def notify_trade(self, trade: bt.Trade) -> None:
        if trade.isclosed:
            self.trades.append(
                {
                    "entry_ts": _ms(bt.num2date(trade.dtopen)),
                    "exit_ts": _ms(bt.num2date(trade.dtclose)),
                    "entry_price": trade.price,
                    "pnl": trade.pnlcomm,
                }
            )


def _ms(moment) -> int:
    return calendar.timegm(moment.timetuple()) * 1000


def _backtrader_trades(history: OHLCV) -> list[dict]:
    frame = pd.DataFrame(
        {
            "open": history.open,
            "high": history.high,
            "low": history.low,
            "close": history.close,
            "volume": history.volume,
        },
        index=pd.to_datetime(history.ts, unit="ms"),
    )
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(_SmaCrossover)
    cerebro.broker.setcash(100_000.0)
    cerebro.broker.setcommission(commission=0.001)
    (strategy,) = cerebro.run()
    return strategy.trades


def test_the_sma_example_makes_backtraders_crossover_trades(sma_config, repo_root):
    data_dir = repo_root / "data/market/binance-spot-1h-2024"
    history = load_candle_file(data_dir / "BTC_USDT-1h.feather", "BTC/USDT")
    expected = _backtrader_trades(history)
    ours = run_backtest(sma_config(**{"marketData.dataDir": str(data_dir)}), mode="fast")
    assert ours.candles == len(history)
    assert len(ours.trades) == len(expected) == 248
    assert [(t.entry_ts, t.exit_ts) for t in ours.trades] == [(t["entry_ts"], t["exit_ts"]) for t in expected]
    assert [t.entry_price for t in ours.trades] == pytest.approx([t["entry_price"] for t in expected], rel=1e-12)
    assert [t.pnl for t in ours.trades] == pytest.approx([t["pnl"] for t in expected], rel=1e-9, abs=1e-9)
    assert {t.quantity for t in ours.trades} == {0.1}
