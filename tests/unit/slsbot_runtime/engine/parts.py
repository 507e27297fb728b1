"""The loop's collaborators wired as ``TradingLoop`` wires them, over a real paper exchange and a real state store,
with a hand-moved clock; no trading loop and no deciders."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slsbot.api import PaperSettings, RiskPolicySpec
from slsbot.api.strategy import Sizing
from slsbot_runtime.data.gaps import GapTracker
from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.domain.types import Candle, Fill, Side
from slsbot_runtime.engine.loop_state import LoopState
from slsbot_runtime.engine.refusals import EntryRefusals
from slsbot_runtime.engine.restart import Restart
from slsbot_runtime.engine.risk_watch import RiskWatch
from slsbot_runtime.engine.settings import LoopSettings
from slsbot_runtime.engine.shutdown import Shutdown
from slsbot_runtime.engine.status_publisher import StatusPublisher
from slsbot_runtime.exchange.base import BookPersistence, Exchange
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.manager import RiskManager

HOUR = 3_600_000
SYMBOL = "BTC/USDT"
T0 = 1_700_000_000_000 // HOUR * HOUR
SETTINGS = LoopSettings(
    name="t",
    strategy_key="default/t",
    symbols=(SYMBOL,),
    interval_ms=HOUR,
    warmup_candles=2,
    starting_cash=10_000.0,
    quote_currency="USDT",
    commit_every_candles=3,
    commit_interval_s=60.0,
)


class HandClock:
    """Wall time the test moves; ``sleep`` moves it too (and counts the naps)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.naps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += seconds


class OwnBookExchange(PaperExchange):
    """A paper exchange that keeps its book to itself, as a real exchange does: no ``BookPersistence``, so nothing
    stores, restores or settles its book from outside, and a market order fills only on its next candle."""

    def book_persistence(self) -> BookPersistence | None:
        return None


@dataclass
class Parts:
    state: LoopState
    exchange: Exchange
    store: StateStore
    ledger: Ledger
    orders: OrderManager
    risk: RiskManager
    refusals: EntryRefusals
    gaps: GapTracker
    publisher: StatusPublisher
    restart: Restart
    shutdown: Shutdown
    clock: HandClock


def paper(cls: type[PaperExchange] = PaperExchange) -> PaperExchange:
    return cls(PaperSettings(starting_balance=10_000.0), interval_ms=HOUR)


def candle(ts: int, price: float) -> Candle:
    return Candle(SYMBOL, ts, price, price * 1.01, price * 0.99, price, 1_000.0)


def wire(
    exchange: Exchange,
    store: StateStore,
    *,
    policy: RiskPolicySpec | None = None,
    metrics: RuntimeMetrics | None = None,
    clock: HandClock | None = None,
) -> Parts:
    """The collaborators as ``TradingLoop.__init__`` builds them."""
    clock = clock or HandClock()
    log = StrategyLog(logging.getLogger("slsbot_runtime.engine.loop"), SETTINGS.strategy_key)
    state = LoopState(starting_equity=SETTINGS.starting_cash)
    ledger = Ledger(cash=SETTINGS.starting_cash, quote_currency="USDT")
    holder: list[Restart] = []
    orders = OrderManager(
        exchange=exchange,
        store=store,
        ledger=ledger,
        strategy_key=SETTINGS.strategy_key,
        commit=lambda: holder[0].commit(),
    )
    risk = RiskManager(policy or RiskPolicySpec(), Sizing(), True)
    refusals = EntryRefusals(log, clock)
    gaps = GapTracker(interval_ms=HOUR, warmup_candles=SETTINGS.warmup_candles)
    publisher = StatusPublisher(
        name=SETTINGS.name,
        symbols=SETTINGS.symbols,
        warmup_candles=SETTINGS.warmup_candles,
        state=state,
        ledger=ledger,
        orders=orders,
        gaps=gaps,
        risk=risk,
        refusals=refusals,
        metrics=metrics,
        clock=clock,
    )
    book = exchange.book_persistence()
    restart = Restart(
        SETTINGS,
        state=state,
        store=store,
        book=book,
        ledger=ledger,
        orders=orders,
        risk=risk,
        risk_watch=RiskWatch(risk, log),
        refusals=refusals,
        publisher=publisher,
        log=log,
        clock=clock,
    )
    holder.append(restart)
    shutdown = Shutdown(
        SETTINGS,
        state=state,
        restart=restart,
        book=book,
        ledger=ledger,
        orders=orders,
        cancel=lambda cid, ts: orders.cancel(orders.orders[cid], ts=ts),
        refusals=refusals,
        publisher=publisher,
        log=log,
        clock=clock,
        sleep=clock.sleep,
    )
    return Parts(state, exchange, store, ledger, orders, risk, refusals, gaps, publisher, restart, shutdown, clock)


def trade(parts: Parts, side: Side, quantity: float, ts: int, fill_price: float) -> list[Fill]:
    """What a candle at ``ts`` decides and the next candle fills: an intent sent, then matched and booked."""
    parts.orders.create_intent(SYMBOL, side, quantity, candle_ts=ts, created_ts=ts + HOUR, reason="test")
    parts.orders.send_pending()
    fills = parts.exchange.on_candle(candle(ts + HOUR, fill_price))
    parts.orders.apply_fills(fills)
    parts.ledger.mark(SYMBOL, fill_price)
    parts.state.last_ts = ts + HOUR
    return fills
