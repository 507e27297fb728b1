"""Buy-and-hold: bought as the paper exchange fills a market buy (checked against the exchange itself), held, and
marked at every close."""

from __future__ import annotations

import numpy as np
import pytest

from slsbot.api.account import PaperSettings
from slsbot_runtime.domain.types import OrderRequest, OrderType, Side
from slsbot_runtime.evaluation.benchmark import buy_and_hold
from slsbot_runtime.exchange.paper import PaperExchange

H = 3_600_000
PAPER = PaperSettings(starting_balance=100_000, fee_rate=0.001, spread_bps=1, slippage_bps=2)


def test_each_symbol_is_bought_with_its_share_as_the_paper_exchange_fills_a_market_buy(btc_eth):
    histories = btc_eth(5000, 48)
    curve = buy_and_hold(histories, paper=PAPER, before_ts=int(histories[0].ts[0]) - H)
    assert [p.symbol for p in curve.purchases] == ["BTC/USDT", "ETH/USDT"]
    for purchase, history in zip(curve.purchases, histories, strict=True):
        exchange = PaperExchange(PAPER.model_copy(update={"starting_balance": 50_000}), interval_ms=H)
        first = history.candle(0)
        exchange.place_order(
            OrderRequest("bh-1", history.symbol, Side.BUY, purchase.quantity, OrderType.MARKET, created_ts=first.ts)
        )
        (fill,) = exchange.on_candle(first)
        assert (fill.ts, fill.quantity) == (purchase.ts, purchase.quantity)
        assert fill.price == purchase.price and fill.fee == pytest.approx(purchase.fee, rel=1e-12)
        assert purchase.price > history.open[0]  # half the spread and the slippage, against the buyer
        one_more_step = purchase.quantity + exchange.market_rules(history.symbol).amount_step
        assert purchase.quantity * purchase.price * 1.001 <= 50_000 < one_more_step * purchase.price * 1.001


def test_the_curve_is_the_cash_left_plus_the_holdings_at_each_close(btc_eth):
    histories = btc_eth(5000, 48)
    curve = buy_and_hold(histories, paper=PAPER, before_ts=int(histories[0].ts[0]) - H)
    cash = 100_000 - sum(p.quantity * p.price + p.fee for p in curve.purchases)
    btc, eth = curve.purchases
    expected = cash + btc.quantity * histories[0].close + eth.quantity * histories[1].close
    assert curve.ts[0] == histories[0].ts[0] - H and curve.equity[0] == 100_000
    np.testing.assert_array_equal(curve.ts[1:], histories[0].ts)
    np.testing.assert_allclose(curve.equity[1:], expected, rtol=1e-13)
    assert curve.exposed_points == 48
    # net of costs: below the gross buy-and-hold of the same amounts
    gross = sum(50_000 * h.close[-1] / h.open[0] for h in histories)
    assert curve.equity[-1] < gross


def test_a_share_too_small_for_the_market_stays_in_cash(btc_eth):
    histories = btc_eth(5000, 24)
    tiny = PAPER.model_copy(update={"starting_balance": 8.0})  # 4 USDT each, under Binance's 5 USDT minimum
    curve = buy_and_hold(histories, paper=tiny, before_ts=int(histories[0].ts[0]) - H)
    assert curve.purchases == () and curve.exposed_points == 0
    assert set(curve.equity.tolist()) == {8.0}
