"""The paper exchange applies the market's rules like a venue: step, tick, minimum amount and notional, and fills
that stay inside the candle they fill on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from slsbot.api import PaperSettings
from slsbot_runtime.backtest.inputs import BacktestWindow, backtest_config, load_window
from slsbot_runtime.backtest.step import run_step
from slsbot_runtime.config_loading import parse_runtime_config
from slsbot_runtime.domain.errors import OrderRejected
from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import Candle, OrderRequest, OrderStatus, OrderType, Side
from slsbot_runtime.exchange.paper import PaperExchange

HOUR = 3_600_000
BTC = "BTC/USDT"


def paper(**changes: float) -> PaperExchange:
    settings = {"spread_bps": 0.0, "slippage_bps": 0.0, "max_volume_participation": 1.0, **changes}
    return PaperExchange(PaperSettings(**settings), interval_ms=HOUR)


def candle(hour: int, open_: float, high: float, low: float, close: float, volume: float = 1e9) -> Candle:
    return Candle(BTC, hour * HOUR, open_, high, low, close, volume)


def order(cid: str, side: Side, quantity: float, hour: int = 0, **extra: object) -> OrderRequest:
    return OrderRequest(cid, BTC, side, quantity, created_ts=(hour + 1) * HOUR, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("quantity", [1e-9, 1e-13])
def test_an_order_below_one_step_is_refused_and_never_rests(quantity: float) -> None:
    exchange = paper()
    exchange.on_candle(candle(0, 40_000, 40_100, 39_900, 40_000))
    with pytest.raises(OrderRejected, match=r"quantity: rounds to 0 at BTC/USDT's amount step 1e-05 BTC") as refused:
        exchange.place_order(order("tiny", Side.BUY, quantity))
    assert "the smallest order is 0.00013 BTC" in str(refused.value)
    assert exchange.fetch_open_orders() == [] and exchange.fetch_order("tiny", BTC) is None
    assert exchange.on_candle(candle(1, 40_000, 40_100, 39_900, 40_000)) == []


def test_an_order_below_the_minimum_notional_is_refused_at_the_last_close() -> None:
    exchange = paper()
    exchange.on_candle(candle(0, 40_000, 40_100, 39_900, 40_000))
    with pytest.raises(OrderRejected, match=r"0.0001 BTC at 40000 is 4 USDT, below BTC/USDT's minimum notional 5 USDT"):
        exchange.place_order(order("small", Side.BUY, 0.0001))
    limit = order("limit", Side.BUY, 0.0002, type=OrderType.LIMIT, limit_price=20_000.0)
    with pytest.raises(OrderRejected, match="at 20000 is 4 USDT"):  # a limit order is judged at its limit
        exchange.place_order(limit)
    assert exchange.fetch_open_orders() == []
    assert exchange.place_order(order("enough", Side.BUY, 0.00013)).status == OrderStatus.OPEN


def test_quantities_are_cut_to_the_step_and_limit_prices_to_the_tick() -> None:
    exchange = paper()
    exchange.on_candle(candle(0, 40_000, 40_100, 39_900, 40_000))
    placed = exchange.place_order(order("a", Side.BUY, 0.0123456))
    assert placed.quantity == 0.01234
    limit = exchange.place_order(order("b", Side.BUY, 0.01, type=OrderType.LIMIT, limit_price=39_950.004))
    assert limit.limit_price == 39_950.0
    market, at_limit = exchange.on_candle(candle(1, 40_000, 40_100, 39_900, 40_000))
    assert market.quantity == 0.01234 and at_limit.price == 39_950.0


def test_a_fill_cut_by_the_volume_is_a_whole_number_of_steps() -> None:
    exchange = paper(max_volume_participation=0.1, starting_balance=100_000.0)
    exchange.on_candle(candle(0, 40_000, 40_100, 39_900, 40_000))
    exchange.place_order(order("a", Side.BUY, 0.5))
    [first] = exchange.on_candle(candle(1, 40_000, 40_100, 39_900, 40_000, volume=1.234567))
    assert first.quantity == 0.12345  # 10% of 1.234567, down to the step
    [second] = exchange.on_candle(candle(2, 40_000, 40_100, 39_900, 40_000))
    assert first.quantity + second.quantity == pytest.approx(0.5, abs=1e-12)
    assert exchange.fetch_order("a", BTC).status == OrderStatus.FILLED


def test_market_fills_stay_inside_the_candle_they_fill_on() -> None:
    exchange = paper(spread_bps=20.0, slippage_bps=50.0)  # 0.6% against the trader
    exchange.on_candle(candle(0, 40_000, 40_100, 39_900, 40_000))
    exchange.place_order(order("buy", Side.BUY, 0.1))
    [buy] = exchange.on_candle(candle(1, 40_000, 40_050, 39_990, 40_020))  # 40,240 would be above the high
    assert buy.price == 40_050
    exchange.place_order(order("sell", Side.SELL, 0.1, hour=1))
    [sell] = exchange.on_candle(candle(2, 40_000, 40_010, 39_950, 40_000))  # 39,760 would be below the low
    assert sell.price == 39_950
    exchange.place_order(order("again", Side.BUY, 0.1, hour=2))
    [inside] = exchange.on_candle(candle(3, 40_000, 41_000, 39_000, 40_000))  # wide candle: the full 0.6%
    assert inside.price == 40_240


def test_settle_now_follows_the_same_rules() -> None:
    exchange = paper(spread_bps=2.0, slippage_bps=3.0, starting_balance=100.0)
    exchange.on_candle(candle(0, 40_000, 40_100, 39_900, 40_000.0))
    exchange.place_order(order("a", Side.BUY, 0.01))  # 400 USDT: more than the 100 held
    [fill] = exchange.settle_now()
    assert fill.price == 40_016.0  # the last close moved against the buyer (0.04%), on the tick: not kinder
    assert fill.quantity == 0.00249  # cut to what 100 USDT pays, fee included, in whole steps
    assert exchange.fetch_order("a", BTC).status == OrderStatus.CANCELED
    assert exchange.balance("USDT") >= 0


def test_given_rules_replace_the_defaults() -> None:
    fine = MarketRules(BTC, 1e-8, 1e-8)
    exchange = PaperExchange(PaperSettings(), interval_ms=HOUR, market_rules={BTC: fine})
    assert exchange.market_rules(BTC) is fine
    assert exchange.market_rules("ETH/USDT").amount_step == 0.0001
    assert exchange.place_order(order("a", Side.BUY, 1e-8)).quantity == 1e-8


def test_every_fill_of_the_ensemble_example_lies_inside_its_candle(repo_root) -> None:
    """On real candles, with the example's spread and slippage (3 bps against the trader): before fills were
    clamped, this month had 6 of its 116 fills outside their candle's range."""
    data = yaml.safe_load((repo_root / "examples/backtest/ensemble-8-symbols.yaml").read_text())
    data["marketData"]["dataDir"] = str(repo_root / "data/market/binance-spot-1h-2024")
    window = BacktestWindow(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
    config = backtest_config(parse_runtime_config(data), data_dir=None, window=window)
    histories = load_window(config, window)
    fills = run_step(config, histories).fills
    assert len(fills) > 50
    candles = {
        (history.symbol, int(ts)): (low, high)
        for history in histories
        for ts, low, high in zip(history.ts, history.low, history.high, strict=True)
    }
    outside = [
        fill for fill in fills if not candles[fill.symbol, fill.ts][0] <= fill.price <= candles[fill.symbol, fill.ts][1]
    ]
    assert outside == []
    steps = {fill.symbol: PaperExchange(PaperSettings(), interval_ms=HOUR).market_rules(fill.symbol) for fill in fills}
    assert all(steps[fill.symbol].is_on_step(fill.quantity) for fill in fills)


def test_a_cut_that_would_leave_less_than_the_minimum_notional_is_not_made() -> None:
    exchange = paper(starting_balance=4.0)  # 4 USDT buys 0.0000999 BTC at 40,000: dust below the 5 USDT minimum
    exchange.on_candle(candle(0, 40_000, 40_100, 39_900, 40_000))
    exchange.place_order(order("a", Side.BUY, 0.001))
    assert exchange.on_candle(candle(1, 40_000, 40_100, 39_900, 40_000)) == []
    assert exchange.fetch_order("a", BTC).status == OrderStatus.REJECTED
    assert exchange.balance("BTC") == 0.0 and exchange.balance("USDT") == 4.0
