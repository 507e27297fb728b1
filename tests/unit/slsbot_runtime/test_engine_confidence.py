"""The trading loop's signal confidence figures (the health block's ``confidence*``): each signal that sets a target
counts, a candle without an opinion does not, and a restart rebuilds them from its replay, as the uninterrupted run
has them."""

from __future__ import annotations

from pathlib import Path

from slsbot.api import PaperSettings, RiskPolicySpec
from slsbot.api.strategy import Sizing, SizingMethod
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.domain.types import FLAT, Candle, Signal
from slsbot_runtime.engine import LoopSettings, TradingLoop
from slsbot_runtime.engine.health import CONFIDENCE_RECENT
from slsbot_runtime.engine.signals import ComponentDecider
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams

HOUR = 3_600_000
SYMBOL = "BTC/USDT"


class EveryThirdHour(StrategyComponent):
    """An opinion every third candle (long, then flat), its confidence the hour of the day / 24; none otherwise."""

    id = "every_third_hour"
    Params = StrategyParams

    def __init__(self) -> None:
        super().__init__({})

    @property
    def warmup(self) -> int:
        return 0

    def on_candle(self, candle: Candle, features: object) -> Signal:
        hour = candle.ts // HOUR
        if hour % 3:
            return FLAT
        return Signal(1.0 if hour % 6 == 0 else -1.0, (hour % 24) / 24, "every third hour")


def make_loop(store: StateStore) -> TradingLoop:
    policy = RiskPolicySpec.model_validate(
        {
            "perTrade": {"maxPercent": 100},
            "volatilityHalt": {"enabled": False},
            "circuitBreaker": {"levels": []},
            "maxDrawdownPercent": 100,
            "dailyLossLimitPercent": 100,
        }
    )
    settings = LoopSettings(
        name="t",
        strategy_key="default/t",
        symbols=(SYMBOL,),
        interval_ms=HOUR,
        warmup_candles=10,
        starting_cash=10_000.0,
        quote_currency="USDT",
        fixed_quantity=0.05,
    )
    return TradingLoop(
        settings,
        exchange=PaperExchange(PaperSettings(), interval_ms=HOUR),
        store=store,
        deciders={SYMBOL: ComponentDecider(EveryThirdHour())},
        risk=RiskManager(policy, Sizing(method=SizingMethod.FIXED_QUANTITY, quantity=0.05), True),
    )


def test_signals_count_and_a_restart_rebuilds_the_figures_from_its_replay(btc_2018: OHLCV, tmp_path: Path) -> None:
    whole = make_loop(StateStore.open(":memory:"))
    whole.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    hours = btc_2018.ts // HOUR
    expected = [(h % 24) / 24 for h in hours if h % 3 == 0]
    assert whole.confidence.signals == len(expected)
    figures = whole.confidence.to_json()
    assert figures["confidence"] == expected[-1]
    assert figures["confidence_recent_mean"] == round(sum(expected[-CONFIDENCE_RECENT:]) / CONFIDENCE_RECENT, 6)

    path = tmp_path / "state.db"
    first = make_loop(StateStore.open(path))
    first.run(ReplayFeed([btc_2018.slice(0, 400)], interval_ms=HOUR))
    first.store.close()
    second = make_loop(StateStore.open(path))
    second.run(ReplayFeed([btc_2018], interval_ms=HOUR))  # its first 400 candles are replayed, not traded
    assert second.state.replayed == 400
    assert second.confidence.to_json() == figures and second.confidence.signals == whole.confidence.signals
