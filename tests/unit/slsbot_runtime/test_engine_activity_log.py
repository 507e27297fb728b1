"""What the runtime's log says the bot did: one INFO line per order sent, fill, cancel, breaker level tripped or
released, risk halt and shutdown, each naming the strategy; on real candles with a scripted signal."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from slsbot.api import PaperSettings, RiskPolicySpec
from slsbot.api.strategy import Sizing, SizingMethod
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.domain.types import Candle, Signal
from slsbot_runtime.engine import LoopSettings, TradingLoop
from slsbot_runtime.engine.signals import ComponentDecider
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams

HOUR = 3_600_000
SYMBOL = "BTC/USDT"
PERMISSIVE = {
    "perTrade": {"maxPercent": 100},
    "volatilityHalt": {"enabled": False},
    "circuitBreaker": {"levels": []},
    "maxDrawdownPercent": 100,
    "dailyLossLimitPercent": 100,
}


class Scripted(StrategyComponent):
    id = "scripted"
    Params = StrategyParams

    def __init__(self, direction_at: Callable[[int], float]) -> None:
        super().__init__({})
        self.direction_at = direction_at

    @property
    def warmup(self) -> int:
        return 0

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        return Signal(self.direction_at(candle.ts), 1.0, "scripted")


def every(hours: int) -> Callable[[int], float]:
    return lambda ts: 1.0 if (ts // HOUR // hours) % 2 == 0 else -1.0


@pytest.fixture(scope="module")
def btc_2018(btc_2018):
    """The shared 800 hours, halved: enough for every log line these tests look for."""
    return btc_2018.slice(0, 400)


def make_loop(*, fixed: float = 0.05, policy: Mapping[str, Any] = PERMISSIVE, **paper: Any) -> TradingLoop:
    settings = LoopSettings(
        name="t",
        strategy_key="default/t",
        symbols=(SYMBOL,),
        interval_ms=HOUR,
        warmup_candles=10,
        starting_cash=10_000.0,
        quote_currency="USDT",
        fixed_quantity=fixed,
    )
    return TradingLoop(
        settings,
        exchange=PaperExchange(PaperSettings(**paper), interval_ms=HOUR),
        store=StateStore.open(":memory:"),
        deciders={SYMBOL: ComponentDecider(Scripted(every(24)))},
        risk=RiskManager(
            RiskPolicySpec.model_validate(policy), Sizing(method=SizingMethod.FIXED_QUANTITY, quantity=fixed), True
        ),
    )


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("slsbot_runtime") and r.levelno >= logging.INFO]


def test_each_order_and_fill_is_one_line_naming_the_strategy(btc_2018, caplog) -> None:
    loop = make_loop()
    with caplog.at_level("INFO", logger="slsbot_runtime"):
        loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    logged = lines(caplog)
    assert all(line.startswith("default/t: ") for line in logged)
    sent = [line for line in logged if "order sent:" in line]
    fills = [line for line in logged if ": fill:" in line]
    orders = list(loop.orders.orders.values())
    assert len(sent) == len(fills) == len(orders) > 10
    first = orders[0]
    assert sent[0] == (
        f"default/t: order sent: buy 0.05 BTC/USDT market ({first.client_order_id}), the exchange says open: "
        "enter long (scripted)"
    )
    assert re.fullmatch(
        rf"default/t: fill: buy 0\.05 BTC/USDT at [0-9.]+, fee [0-9.]+ USDT \({first.client_order_id}, 100% filled\); "
        r"position 0\.05, realized PnL 0\.00",
        fills[0],
    )
    closing = next(line for line in fills if ": fill: sell" in line)
    assert "position 0, realized PnL " in closing


def test_a_drain_logs_each_cancel_and_the_shutdown(btc_2018, caplog) -> None:
    # at most 0.0001% of a candle's volume fills per candle: an entry of 50 BTC stays open for many candles
    loop = make_loop(fixed=50.0, max_volume_participation=0.000001)
    loop.start()
    candles = iter(ReplayFeed([btc_2018], interval_ms=HOUR))
    while not loop.orders.unfinished():
        loop.process(next(candles))
    loop.process(next(candles))
    working = [order.client_order_id for order in loop.orders.unfinished()]
    with caplog.at_level("INFO", logger="slsbot_runtime"):
        loop.shutdown(cancel_orders=True, flatten=False)
    logged = lines(caplog)
    canceled = [line for line in logged if "order canceled:" in line]
    assert [line.split()[3] for line in canceled] == working
    assert re.fullmatch(
        rf"default/t: order canceled: {working[0]} buy [0-9.]+ BTC/USDT \(market\), [0-9.]+ filled, now canceled",
        canceled[0],
    )
    assert re.fullmatch(
        r"default/t: shut down \(cancelOrders=True, flatten=False\) after \d+ candles: 0 open orders and 1 open "
        r"positions remain, equity [0-9.]+ USDT, state flushed",
        logged[-1],
    )
    assert loop.status.idle_reason == "Finished" and "shut down" in loop.status.idle_message


def test_breaker_levels_are_logged_when_they_trip_and_when_they_release(btc_2024, caplog) -> None:
    # 0.1 BTC on 10,000 USDT through the autumn-2024 rally: dips trip a 1% level, the rally releases it
    level = {"action": "reduceSize", "drawdownPercent": 1, "sizeMultiplier": 0.5, "cooldown": "1h"}
    loop = make_loop(fixed=0.1, policy={**PERMISSIVE, "circuitBreaker": {"levels": [level]}})
    with caplog.at_level("INFO", logger="slsbot_runtime"):
        loop.run(ReplayFeed([btc_2024.slice(0, 1500)], interval_ms=HOUR))
    logged = lines(caplog)
    tripped = [line for line in logged if line.startswith("default/t: circuit breaker level 1 (reduceSize at 1.00%")]
    released = [line for line in logged if line.startswith("default/t: circuit breaker level 1 released at ")]
    assert tripped and released and abs(len(tripped) - len(released)) <= 1
    assert re.search(r"tripped at 2024-\d\d-\d\dT\d\d:\d\dZ, held at least until .*\) tripped: drawdown \d", tripped[0])
    first_trip, first_release = logged.index(tripped[0]), logged.index(released[0])
    assert first_trip < first_release


def test_the_kill_switch_is_said_once_when_it_halts_trading(btc_2018, caplog) -> None:
    loop = make_loop(policy={**PERMISSIVE, "killSwitch": True})
    with caplog.at_level("INFO", logger="slsbot_runtime"):
        loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    halts = [line for line in lines(caplog) if "kill switch" in line]
    assert halts == [
        "default/t: the kill switch is on (riskPolicy killSwitch): every position is closed, no entry is opened"
    ]
    assert loop.orders.orders == {}


def test_nothing_is_formatted_when_info_is_off(btc_2018, caplog, monkeypatch) -> None:
    # a backtest logs nothing at INFO: the strategy prefix, the refusal summaries and the lines are never built
    from slsbot_runtime.domain.strategy_log import StrategyLog

    built: list[str] = []
    original = StrategyLog.process
    monkeypatch.setattr(
        StrategyLog, "process", lambda self, msg, kwargs: (built.append(msg), original(self, msg, kwargs))[1]
    )
    loop = make_loop()
    with caplog.at_level("WARNING", logger="slsbot_runtime"):
        loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    assert len(loop.orders.orders) > 10 and built == []
