"""The trading loop on the ccxt adapter against the fake Binance (a real HTTP server on 127.0.0.1):
orders go out with their client ids, fills come back through the adapter, and a crash before or after a
send is reconciled without a duplicate order on the exchange."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.fakes (tests is not a package)

from tests.fakes.fake_exchange_server import (  # noqa: E402
    FAKE_API_KEY,
    FAKE_SECRET,
    FakeExchangeServer,
    ManualClock,
    RecordedKlines,
)

from slsbot.api import RiskPolicySpec  # noqa: E402
from slsbot.api.strategy import Sizing, SizingMethod  # noqa: E402
from slsbot_runtime.data.discovery import load_history  # noqa: E402
from slsbot_runtime.data.replay import ReplayFeed  # noqa: E402
from slsbot_runtime.domain.types import Candle, Order, OrderRequest  # noqa: E402
from slsbot_runtime.engine import LoopSettings, TradingLoop  # noqa: E402
from slsbot_runtime.engine.signals import ComponentDecider  # noqa: E402
from slsbot_runtime.exchange.ccxt_exchange import CcxtExchange  # noqa: E402
from slsbot_runtime.exchange.ccxt_venues import open_ccxt_exchange  # noqa: E402
from slsbot_runtime.exchange.credentials import ExchangeCredentials  # noqa: E402
from slsbot_runtime.exchange.retry import RetryPolicy  # noqa: E402
from slsbot_runtime.persistence.store import StateStore  # noqa: E402
from slsbot_runtime.risk.manager import RiskManager  # noqa: E402
from slsbot_runtime.strategy.registry import build_component  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOUR = 3_600_000
SYMBOL = "BTC/USDT"
START_BALANCE_BTC = 0.5  # the fake account holds some BTC of its own: the bot's position is on top of it


class Crash(BaseException):
    pass


@pytest.fixture(scope="module")
def candles() -> list[Candle]:
    history = load_history(
        REPO / "data/market/binance-spot-1h-2024",
        SYMBOL,
        "1h",
        interval_ms=HOUR,
        start=datetime(2025, 1, 2, tzinfo=UTC),
    )
    return list(ReplayFeed([history.slice(0, 160)], interval_ms=HOUR))


@pytest.fixture
def clock(candles: list[Candle]) -> ManualClock:
    return ManualClock(candles[0].ts)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeExchangeServer]:
    with FakeExchangeServer(clock, klines=RecordedKlines()) as server:
        yield server


def open_exchange(fake: FakeExchangeServer, clock: ManualClock) -> CcxtExchange:
    return open_ccxt_exchange(
        "binance",
        ExchangeCredentials(FAKE_API_KEY, FAKE_SECRET),
        testnet=False,
        endpoint=fake.url,
        timeout_ms=5_000,
        rate_limit=False,
        retry=RetryPolicy(max_attempts=3, base_delay_s=0.1),
        sleep=clock.sleep,
    )


def make_loop(path: Path, exchange: CcxtExchange) -> TradingLoop:
    settings = LoopSettings(
        name="live",
        strategy_key="default/live",
        symbols=(SYMBOL,),
        interval_ms=HOUR,
        warmup_candles=12,
        starting_cash=10_000.0,
        quote_currency="USDT",
        fixed_quantity=0.01,
        commit_every_candles=1,
    )
    sizing = Sizing(method=SizingMethod.FIXED_QUANTITY, quantity=0.01)
    decider = ComponentDecider(build_component("sma_cross", 1, {"fast": 3, "slow": 9}))
    return TradingLoop(
        settings,
        exchange=exchange,
        store=StateStore.open(path),
        deciders={SYMBOL: decider},
        risk=RiskManager(RiskPolicySpec(), sizing, True),
    )


def drive(loop: TradingLoop, clock: ManualClock, candles: list[Candle]) -> None:
    """Each candle is processed a second after its close, as a live feed delivers it."""
    loop.start()
    for candle in candles:
        clock.set(candle.ts + HOUR + 1_000)
        loop.process(candle)
    loop.finish()


def check_exactly_once(loop: TradingLoop, fake: FakeExchangeServer) -> None:
    ours = loop.orders.orders
    theirs = fake.account.orders
    client_ids = [o.client_order_id for o in theirs]
    assert len(client_ids) == len(set(client_ids)), "an order reached the exchange twice"
    assert set(client_ids) == set(ours)
    for order in theirs:
        mine = ours[order.client_order_id]
        assert mine.filled_quantity == pytest.approx(order.filled) and str(mine.status) == order.status.lower()
    held = fake.account.balances["BTC"] - START_BALANCE_BTC
    assert loop.ledger.quantity(SYMBOL) == pytest.approx(held, abs=1e-9)  # fees in BTC included


def test_orders_and_fills_flow_through_the_adapter(
    fake: FakeExchangeServer, clock: ManualClock, candles: list[Candle], tmp_path: Path
) -> None:
    loop = make_loop(tmp_path / "state.db", open_exchange(fake, clock))
    drive(loop, clock, candles)
    assert len(loop.orders.orders) >= 6
    assert loop.ledger.trade_count == len(fake.account.trades)
    check_exactly_once(loop, fake)


class CrashingAround(CcxtExchange):
    """The real adapter, crashing the process just before or just after the n-th order reaches it."""

    def __init__(self, inner: CcxtExchange, *, when: str, at: int) -> None:
        self.__dict__.update(inner.__dict__)
        self.when, self.at, self.count = when, at, 0

    def place_order(self, request: OrderRequest) -> Order:
        self.count += 1
        if self.when == "before" and self.count == self.at:
            raise Crash("before the send")
        order = super().place_order(request)
        if self.when == "after" and self.count == self.at:
            raise Crash("after the send, before its acknowledgement is on disk")
        return order


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_around_a_send_leaves_no_duplicate_on_the_exchange(
    when: str, fake: FakeExchangeServer, clock: ManualClock, candles: list[Candle], tmp_path: Path
) -> None:
    path = tmp_path / "state.db"
    crashing = make_loop(path, CrashingAround(open_exchange(fake, clock), when=when, at=3))
    with pytest.raises(Crash):
        drive(crashing, clock, candles)
    crashing.store.close()
    sent_before_restart = len(fake.account.orders)
    assert sent_before_restart == (2 if when == "before" else 3)

    restarted = make_loop(path, open_exchange(fake, clock))
    drive(restarted, clock, candles)
    report = restarted.reconcile_report
    assert report is not None
    if when == "before":
        assert len(report.resent) == 1  # the intent was on disk, the exchange had never seen it
    else:
        assert report.resent == [] and len(report.updated) == 1  # found on the exchange by its client id
    assert len(restarted.orders.orders) >= 6
    check_exactly_once(restarted, fake)
