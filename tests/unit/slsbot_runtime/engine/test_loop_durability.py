"""The same trading loop over a runtime's state store and a backtest's (``Durability``).

A runtime's store (``EVERY_COMMIT``, committing every candle as a live runtime does): each intent is on disk before
the exchange sees it, and a crash leaves every candle processed before it on disk. A backtest's (``NONE``): nothing
is ever on disk, a crash leaves nothing, and the fills and equity curve it keeps in memory are those the runtime's
store wrote.
What is on disk is read through a second, read-only connection, as another process would read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from slsbot.api import PaperSettings, RiskPolicySpec
from slsbot.api.strategy import Sizing
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.domain.types import Candle, Fill, Order, OrderRequest
from slsbot_runtime.engine import LoopSettings, TradingLoop
from slsbot_runtime.engine.signals import ComponentDecider
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.persistence.report import build_report
from slsbot_runtime.persistence.store import Durability, StateStore
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.strategy.registry import build_component

HOUR = 3_600_000
SYMBOLS = ("BTC/USDT", "ETH/USDT")
PAPER = PaperSettings(max_volume_participation=0.0002)  # small: orders fill over several candles


class Crash(BaseException):
    pass


class WatchedPaper(PaperExchange):
    """A paper exchange that, at each order, reads the state file as another process would and notes whether the
    intent is already there; it crashes the process at its ``crash_at``-th candle."""

    def __init__(self, path: Path, crash_at: int | None = None) -> None:
        super().__init__(PAPER, interval_ms=HOUR)
        self.path, self.crash_at, self.candles = path, crash_at, 0
        self.intent_on_disk: list[bool] = []
        self.last_candle: dict[str, int] = {}

    def place_order(self, request: OrderRequest) -> Order:
        reader = StateStore.open(self.path, readonly=True)
        try:
            self.intent_on_disk.append(request.client_order_id in {o.client_order_id for o in reader.load_orders()})
        finally:
            reader.close()
        return super().place_order(request)

    def on_candle(self, candle: Candle) -> list[Fill]:
        self.candles += 1
        if self.candles == self.crash_at:
            raise Crash(f"at candle {self.candles}")
        self.last_candle[candle.symbol] = candle.ts
        return super().on_candle(candle)


@pytest.fixture(scope="module")
def feed(market_data_dir: Path) -> ReplayFeed:
    folder = market_data_dir / "binance-spot-1h-2017"
    histories = [load_history(folder, s, "1h", interval_ms=HOUR).slice(3000, 3600) for s in SYMBOLS]
    return ReplayFeed(histories, interval_ms=HOUR)


def make_loop(path: Path, durability: Durability, exchange: PaperExchange) -> TradingLoop:
    settings = LoopSettings(
        name="d",
        strategy_key="default/d",
        symbols=SYMBOLS,
        interval_ms=HOUR,
        warmup_candles=30,
        starting_cash=10_000.0,
        quote_currency="USDT",
        commit_every_candles=1,  # as a live runtime commits
        commit_interval_s=3600,
    )
    deciders = {s: ComponentDecider(build_component("sma_cross", 1, {"fast": 4, "slow": 12})) for s in SYMBOLS}
    return TradingLoop(
        settings,
        exchange=exchange,
        store=StateStore.open(path, durability=durability),
        deciders=deciders,
        risk=RiskManager(RiskPolicySpec(), Sizing(), True),
    )


def test_a_runtime_store_has_each_intent_on_disk_before_it_is_sent(feed: ReplayFeed, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    exchange = WatchedPaper(path)
    make_loop(path, Durability.EVERY_COMMIT, exchange).run(feed)
    assert len(exchange.intent_on_disk) > 20 and all(exchange.intent_on_disk)


def test_a_backtest_store_has_nothing_on_disk_while_the_loop_runs(feed: ReplayFeed, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    exchange = WatchedPaper(path)
    make_loop(path, Durability.NONE, exchange).run(feed)
    assert len(exchange.intent_on_disk) > 20 and not any(exchange.intent_on_disk)


def test_a_crash_leaves_every_processed_candle_of_a_runtime_and_nothing_of_a_backtest(
    feed: ReplayFeed, tmp_path: Path
) -> None:
    on_disk, processed = {}, {}
    for durability in Durability:
        path = tmp_path / f"{durability}.db"
        exchange = WatchedPaper(path, crash_at=900)
        loop = make_loop(path, durability, exchange)
        with pytest.raises(Crash):
            loop.run(feed)
        assert loop.orders.submissions > 10
        loop.store.close()  # whatever was only staged is lost, as in a killed process
        reader = StateStore.open(path, readonly=True)
        on_disk[durability] = (reader.load_cursor(), len(reader.load_orders()), len(reader.load_equity()))
        reader.close()
        processed[durability] = (exchange.last_candle, len(loop.orders.orders), loop.processed)
    assert processed[Durability.EVERY_COMMIT][2] == 899  # the 900th candle crashed before it was processed
    assert on_disk[Durability.EVERY_COMMIT] == processed[Durability.EVERY_COMMIT]
    assert on_disk[Durability.NONE] == ({}, 0, 0)


def test_the_finished_run_is_the_same_on_either_store(feed: ReplayFeed, tmp_path: Path) -> None:
    loops = {}
    for durability in Durability:
        loop = make_loop(tmp_path / f"{durability}.db", durability, PaperExchange(PAPER, interval_ms=HOUR))
        loop.run(feed)
        loops[durability] = loop
    written = loops[Durability.EVERY_COMMIT].store
    fills, points = written.load_fills(), written.load_equity()
    assert len(fills) > 20 and len(points) == 1200
    kept = loops[Durability.NONE].store
    assert kept.staged_fills() == fills
    assert kept.staged_equity() == ([p.ts for p in points], [p.equity for p in points])
    assert build_report(str(tmp_path / f"{Durability.NONE}.db"))["summary"]["orders_total"] == 0  # nothing written
    for loop in loops.values():
        loop.store.close()
