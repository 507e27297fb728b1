"""From a run's fills and equity to the answer: curve, exposure, trades, metrics, fingerprint, JSON."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from slsbot_runtime.backtest.fast import run_fast
from slsbot_runtime.backtest.inputs import BacktestWindow, backtest_config, load_window
from slsbot_runtime.backtest.report import RunRecord, equity_curve, exposure, summarize, trade_json
from slsbot_runtime.domain.errors import DataError
from slsbot_runtime.domain.types import Fill, Side
from slsbot_runtime.execution.ledger import Ledger

H = 3_600_000


def _fill(n, symbol, side, qty, price, ts, fee=0.0):
    return Fill(f"f{n}", f"c{n}", symbol, side, qty, price, fee, "USDT", ts)


def test_the_curve_keeps_the_last_equity_of_each_open_time():
    ts = np.array([0, 0, H, H, 2 * H])
    equity = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    curve_ts, curve = equity_curve(ts, equity)
    assert curve_ts.tolist() == [0, H, 2 * H]
    assert curve.tolist() == [2.0, 4.0, 5.0]


def test_exposure_counts_points_with_any_position_open_after_the_fills():
    fills = [
        _fill(0, "BTC/USDT", Side.BUY, 0.1, 100.0, 1 * H),
        _fill(1, "BTC/USDT", Side.SELL, 0.1, 110.0, 3 * H),
        _fill(2, "ETH/USDT", Side.BUY, 1.0, 10.0, 2 * H),
        _fill(3, "ETH/USDT", Side.SELL, 0.4, 11.0, 4 * H),
        _fill(4, "ETH/USDT", Side.SELL, 0.6, 11.0, 5 * H),
    ]
    curve_ts = np.arange(8) * H
    # open after the fills at 1H (BTC), 2H, 3H and 4H (ETH, partly sold): 4 of 8 points
    assert exposure(fills, curve_ts) == pytest.approx(4 / 8)
    assert exposure([], curve_ts) == 0.0


def test_exposure_ends_where_an_exit_filled_in_pieces_leaves_the_ledger_flat():
    # the pieces of a volume-capped exit leave 2.9e-11 DOGE of float residue: flat for the ledger
    bought, pieces = 500480.73622102157, (162528.88313722145, 213102.93897446836, 124848.91410933173)
    fills = [
        _fill(0, "DOGE/USDT", Side.BUY, bought, 0.1, 0),
        *(_fill(1 + k, "DOGE/USDT", Side.SELL, piece, 0.1, (1 + k) * H) for k, piece in enumerate(pieces)),
        _fill(4, "DOGE/USDT", Side.BUY, 1e-4, 0.1, 5 * H),  # small next to the first, but a position
    ]
    assert exposure(fills, np.arange(8) * H) == pytest.approx(6 / 8)  # open 0H-2H and 5H-7H


def test_a_doge_backtest_whose_exits_fill_in_pieces_reports_every_round_trip(sma_config, repo_root):
    # 200,000 DOGE an entry against 0.3% of each candle's volume: most exits take several candles
    config = sma_config(
        **{
            "symbols": ["DOGE/USDT"],
            "marketData.dataDir": str(repo_root / "data/market/binance-spot-1h-2024"),
            "sizing.quantity": 200_000,
            "account.paper.maxVolumeParticipation": 0.003,
        }
    )
    prepared = backtest_config(config, data_dir=None, window=BacktestWindow())
    record = run_fast(prepared, load_window(prepared, BacktestWindow()))
    pieces = Counter(fill.client_order_id for fill in record.fills if fill.side == Side.SELL)
    assert sum(1 for count in pieces.values() if count > 1) > 50, "exits must fill in pieces"
    # counted apart from round_trips: the fills booked in a Ledger; a round trip ends where it is flat
    ledger, pnls, exits, trip = Ledger(cash=1e9, quote_currency="USDT"), [], [], 0.0
    for fill in record.fills:
        realized = ledger.position(fill.symbol).realized_pnl
        row = ledger.apply(fill)
        trip += row.realized_pnl - realized
        if row.quantity == 0.0:
            pnls.append(trip)
            exits.append(fill.ts)
            trip = 0.0
    result = summarize(record, timeframe="1h", timeframe_seconds=3600, symbols=["DOGE/USDT"])
    assert result.metrics["trades"] == len(pnls) > 150
    assert [trade.exit_ts for trade in result.trades] == exits
    assert [trade.pnl for trade in result.trades] == pytest.approx(pnls, rel=1e-9, abs=1e-6)
    profit_factor = sum(p for p in pnls if p > 0) / -sum(p for p in pnls if p < 0)
    assert result.metrics["profit_factor"] == pytest.approx(profit_factor, rel=1e-9)


def test_summarize_gives_trades_metrics_and_a_stable_fingerprint():
    fills = [
        _fill(0, "BTC/USDT", Side.BUY, 0.5, 100.0, 1 * H, fee=0.05),
        _fill(1, "BTC/USDT", Side.SELL, 0.5, 120.0, 3 * H, fee=0.06),
    ]
    ts = np.arange(5) * H
    equity = np.array([1000.0, 999.95, 1005.0, 1009.89, 1009.89])
    record = RunRecord("step", fills, ts, equity, 0.01)
    result = summarize(record, timeframe="1h", timeframe_seconds=3600, symbols=["BTC/USDT"])
    assert len(result.trades) == 1
    assert result.trades[0].pnl == pytest.approx(10.0 - 0.11)
    assert result.metrics["trades"] == 1
    assert result.metrics["exposure_pct"] == pytest.approx(40.0)
    assert result.metrics["final_equity"] == 1009.89
    again = summarize(
        RunRecord("fast", list(fills), ts.copy(), equity.copy(), 5.0),
        timeframe="1h",
        timeframe_seconds=3600,
        symbols=["BTC/USDT"],
    )
    assert again.fingerprint == result.fingerprint  # mode and timing are not part of it
    changed = summarize(
        RunRecord("step", fills, ts, equity + 0.01, 0.01), timeframe="1h", timeframe_seconds=3600, symbols=["BTC/USDT"]
    )
    assert changed.fingerprint != result.fingerprint
    data = result.to_json()
    assert set(data) == {"trades", "metrics", "fingerprint", "run"}
    assert data["run"]["first_candle"] == "1970-01-01T00:00:00Z" and data["run"]["candles"] == 5


def test_trades_carry_readable_times():
    fills = [
        _fill(0, "BTC/USDT", Side.BUY, 1.0, 1.0, 1_600_000_000_000),
        _fill(1, "BTC/USDT", Side.SELL, 1.0, 2.0, 1_600_003_600_000),
    ]
    record = RunRecord("step", fills, np.array([0, H]), np.array([1.0, 2.0]), 0.0)
    trade = summarize(record, timeframe="1h", timeframe_seconds=3600, symbols=["BTC/USDT"]).trades[0]
    data = trade_json(trade)
    assert data["entry_time"] == "2020-09-13T12:26:40Z" and data["exit_time"] == "2020-09-13T13:26:40Z"
    for key in ("entry_ts", "exit_ts", "side", "quantity", "entry_price", "exit_price", "fees", "pnl"):
        assert key in data


def test_a_window_of_one_candle_is_refused_with_the_option_named():
    record = RunRecord("step", [], np.array([0]), np.array([1.0]), 0.0)
    with pytest.raises(DataError, match="--from/--to"):
        summarize(record, timeframe="1h", timeframe_seconds=3600, symbols=["BTC/USDT"])
