"""Round trips and metrics against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slsbot_runtime.backtest.metrics import fingerprint, performance, round_trips
from slsbot_runtime.domain.types import Fill, Side
from slsbot_runtime.execution.ledger import Ledger

H = 3_600_000


def _fill(i, side, qty, price, fee=0.0, ts=None):
    return Fill(f"f{i}", f"c{i}", "BTC/USDT", side, qty, price, fee, "USDT", ts if ts is not None else i * H)


def test_a_long_round_trip_nets_its_fees():
    trades = round_trips([_fill(0, Side.BUY, 0.1, 100.0, fee=0.01), _fill(1, Side.SELL, 0.1, 110.0, fee=0.011)])
    assert len(trades) == 1
    t = trades[0]
    assert t.side == "long" and t.entry_ts == 0 and t.exit_ts == H
    assert t.entry_price == 100.0 and t.exit_price == 110.0
    assert t.fees == pytest.approx(0.021)
    assert t.pnl == pytest.approx(1.0 - 0.021)


def test_partial_fills_are_volume_weighted():
    fills = [
        _fill(0, Side.BUY, 1.0, 100.0),
        _fill(1, Side.BUY, 3.0, 104.0),
        _fill(2, Side.SELL, 2.0, 110.0),
        _fill(3, Side.SELL, 2.0, 90.0),
    ]
    (t,) = round_trips(fills)
    assert t.entry_price == pytest.approx(103.0)
    assert t.exit_price == pytest.approx(100.0)
    assert t.quantity == pytest.approx(4.0)
    assert t.pnl == pytest.approx(-12.0)
    assert t.exit_ts == 3 * H


def test_a_flip_closes_one_trade_and_opens_the_next():
    fills = [_fill(0, Side.BUY, 1.0, 100.0), _fill(1, Side.SELL, 3.0, 120.0), _fill(2, Side.BUY, 2.0, 110.0)]
    long_trade, short_trade = round_trips(fills)
    assert long_trade.side == "long" and long_trade.pnl == pytest.approx(20.0)
    assert short_trade.side == "short" and short_trade.entry_ts == H
    assert short_trade.quantity == pytest.approx(2.0)
    assert short_trade.pnl == pytest.approx(20.0)


#: A volume-capped exit as the paper exchange fills it: the pieces add up to the position, but the position
#: minus them leaves 2.9e-11 of float residue, more than an absolute 1e-12 and flat by the ledger's rule.
BOUGHT = 500480.73622102157
PIECES = (162528.88313722145, 213102.93897446836, 124848.91410933173)


def test_an_exit_filled_in_pieces_closes_the_trade_where_the_ledger_is_flat():
    assert BOUGHT - PIECES[0] - PIECES[1] - PIECES[2] > 1e-12, "the scenario must leave residue"
    fills = [
        _fill(0, Side.BUY, BOUGHT, 0.10),
        *(_fill(1 + k, Side.SELL, piece, 0.11) for k, piece in enumerate(PIECES)),
        _fill(4, Side.BUY, 1_000.0, 0.10),
        _fill(5, Side.SELL, 1_000.0, 0.09),
    ]
    ledger = Ledger(cash=1e6, quote_currency="USDT")
    flat_after = [ledger.apply(fill).quantity == 0.0 for fill in fills]
    assert flat_after == [False, False, False, True, False, True]
    first, second = round_trips(fills)
    assert (first.entry_ts, first.exit_ts, first.side) == (0, 3 * H, "long")
    assert first.quantity == pytest.approx(BOUGHT) and first.pnl == pytest.approx(0.01 * BOUGHT)
    assert (second.entry_ts, second.exit_ts, second.quantity) == (4 * H, 5 * H, 1_000.0)
    assert second.pnl == pytest.approx(-10.0)


def test_an_open_position_at_the_end_is_not_a_trade():
    assert round_trips([_fill(0, Side.BUY, 1.0, 100.0)]) == []


def test_metrics_by_hand():
    ts = [0, H, 2 * H, 3 * H]
    equity = [100.0, 110.0, 99.0, 108.9]
    trades = round_trips(
        [
            _fill(0, Side.BUY, 1, 100),
            _fill(1, Side.SELL, 1, 110),
            _fill(2, Side.BUY, 1, 100),
            _fill(3, Side.SELL, 1, 95),
        ]
    )
    m = performance(ts, equity, trades, timeframe_seconds=3600, exposure=0.5)
    r = np.array([0.1, -0.1, 0.1])
    assert m["total_return_pct"] == pytest.approx(8.9)
    assert m["max_drawdown_pct"] == pytest.approx(10.0)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(8760))
    assert m["sortino"] == pytest.approx(r.mean() / math.sqrt(0.01 / 3) * math.sqrt(8760))
    assert m["profit_factor"] == pytest.approx(10 / 5)
    assert m["win_rate_pct"] == pytest.approx(50.0)
    assert m["expectancy"] == pytest.approx(2.5)
    assert m["trades"] == 2 and m["exposure_pct"] == 50.0


def test_cagr_and_calmar_over_two_years():
    year = 365 * 86400 * 1000
    m = performance([0, year, 2 * year], [100.0, 90.0, 121.0], [], timeframe_seconds=86400, exposure=1.0)
    assert m["cagr_pct"] == pytest.approx(10.0)
    assert m["max_drawdown_pct"] == pytest.approx(10.0)
    assert m["calmar"] == pytest.approx(1.0)


def test_no_losing_trade_means_no_profit_factor_rather_than_infinity():
    trades = round_trips([_fill(0, Side.BUY, 1, 100), _fill(1, Side.SELL, 1, 110)])
    m = performance([0, H], [100, 110], trades, timeframe_seconds=3600, exposure=1.0)
    assert m["profit_factor"] is None
    assert m["max_drawdown_pct"] == 0.0 and m["calmar"] is None


def test_a_single_point_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="--from/--to"):
        performance([0], [100], [], timeframe_seconds=3600, exposure=0)


def test_fingerprint_is_stable_and_sensitive():
    trades = round_trips([_fill(0, Side.BUY, 1, 100), _fill(1, Side.SELL, 1, 110)])
    m = performance([0, H], [100, 110], trades, timeframe_seconds=3600, exposure=1.0)
    assert fingerprint(trades, m) == fingerprint(list(trades), dict(m))
    changed = dict(m, trades=3)
    assert fingerprint(trades, changed) != fingerprint(trades, m)
