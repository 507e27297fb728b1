"""The trading mode's effect on a real ``TradingLoop`` over a real paper exchange and state file: safe opens nothing
and refuses any order that would add to a position; halted cancels and flattens once, also across a restart; the
runtime puts itself in safe after ``rejectLimit`` rejected orders and on a disagreement with the exchange."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from slsbot.api import PaperSettings, RiskPolicySpec
from slsbot.api.health import TradingMode
from slsbot.api.strategy import Sizing, SizingMethod
from slsbot_runtime.domain.errors import ExchangeUnavailable, OrderRejected, StateError
from slsbot_runtime.domain.trading_mode import META_KEY
from slsbot_runtime.domain.types import FLAT, Candle, Order, OrderRequest, OrderStatus, OrderType, Side, Signal
from slsbot_runtime.engine import LoopSettings, TradingLoop
from slsbot_runtime.engine.signals import ComponentDecider
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams

HOUR = 3_600_000
SYMBOL = "BTC/USDT"
T0 = 1_700_000_000_000 // HOUR * HOUR


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
        direction = self.direction_at(candle.ts)
        return Signal(direction, 1.0, "scripted") if direction else FLAT


class LostBookExchange(PaperExchange):
    """A paper exchange whose book was not kept: what the state file says is open, it does not know."""

    def book_persistence(self) -> None:
        return None


class RejectingExchange(PaperExchange):
    """A paper exchange that refuses every order, as a venue does below its minimum notional."""

    def place_order(self, request: OrderRequest) -> Order:
        raise OrderRejected("Filter failure: NOTIONAL")


def candle(i: int) -> Candle:
    price = 100.0 + i
    return Candle(SYMBOL, T0 + i * HOUR, price, price * 1.01, price * 0.99, price, 1_000.0)


def make_loop(
    direction_at: Callable[[int], float],
    store: StateStore,
    *,
    exchange: type[PaperExchange] = PaperExchange,
    reject_limit: int = 3,
    clock: Callable[[], float] | None = None,
) -> TradingLoop:
    settings = LoopSettings(
        name="t",
        strategy_key="default/t",
        symbols=(SYMBOL,),
        interval_ms=HOUR,
        warmup_candles=0,
        starting_cash=10_000.0,
        quote_currency="USDT",
        fixed_quantity=0.5,
        commit_every_candles=1,
        reject_limit=reject_limit,
    )
    policy = RiskPolicySpec.model_validate(
        {
            "perTrade": {"maxPercent": 100},
            "volatilityHalt": {"enabled": False},
            "circuitBreaker": {"levels": []},
            "maxDrawdownPercent": 100,
            "dailyLossLimitPercent": 100,
        }
    )
    return TradingLoop(
        settings,
        exchange=exchange(PaperSettings(starting_balance=10_000.0), interval_ms=HOUR),
        store=store,
        deciders={SYMBOL: ComponentDecider(Scripted(direction_at))},
        risk=RiskManager(policy, Sizing(method=SizingMethod.FIXED_QUANTITY, quantity=0.5), True),
        **({} if clock is None else {"clock": clock}),
    )


def always_long(_ts: int) -> float:
    return 1.0


def run(loop: TradingLoop, first: int, last: int) -> None:
    for i in range(first, last):
        loop.process(candle(i))


def test_safe_mode_opens_nothing_and_says_why(tmp_path: Path) -> None:
    loop = make_loop(always_long, StateStore.open(str(tmp_path / "s.db")))
    loop.start()
    loop.set_trading_mode(TradingMode.SAFE, reason="operator: looking into fills", flatten=False)
    run(loop, 0, 5)
    loop.beat()
    assert loop.orders.orders == {} and loop.ledger.open_positions() == 0
    status = loop.status
    assert status.trading_mode == "safe" and status.trading_mode_reason == "operator: looking into fills"
    assert status.idle_reason == "SafeMode" and "reduce-only" in (status.idle_message or "")


def test_safe_mode_refuses_an_order_that_would_increase_a_position_and_lets_an_exit_out(tmp_path: Path) -> None:
    loop = make_loop(lambda ts: 1.0 if ts < T0 + 3 * HOUR else -1.0, StateStore.open(str(tmp_path / "s.db")))
    loop.start()
    run(loop, 0, 3)  # long 0.5, filled at the next open
    assert loop.ledger.quantity(SYMBOL) == pytest.approx(0.5)
    loop.set_trading_mode(TradingMode.SAFE, reason="test", flatten=False)
    # an order that would add to the long, staged as a decision would: refused before it reaches the exchange
    adding = loop.orders.create_intent(SYMBOL, Side.BUY, 0.1, candle_ts=T0 + 3 * HOUR, created_ts=T0 + 4 * HOUR)
    selling_too_much = loop.orders.create_intent(
        SYMBOL, Side.SELL, 0.8, candle_ts=T0 + 3 * HOUR, created_ts=T0 + 4 * HOUR
    )
    loop.orders.send_pending()
    for order in (adding, selling_too_much):
        assert order.status == OrderStatus.REJECTED and order.reason.startswith("refused: safe mode (test)")
        assert loop.exchange.fetch_order(order.client_order_id, SYMBOL) is None  # never sent
    run(loop, 3, 6)  # the signal turns: the exit goes out, reduce-only, and no short is opened
    exits = [o for o in loop.orders.orders.values() if o.side == Side.SELL and o.status == OrderStatus.FILLED]
    assert len(exits) == 1 and exits[0].quantity == pytest.approx(0.5)
    assert loop.ledger.quantity(SYMBOL) == pytest.approx(0.0)
    assert loop.orders.reduce_only is True


def test_halt_cancels_flattens_once_and_sends_nothing_after_even_across_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    loop = make_loop(always_long, StateStore.open(path))
    loop.start()
    run(loop, 0, 3)
    assert loop.ledger.quantity(SYMBOL) == pytest.approx(0.5)
    resting = loop.orders.create_intent(SYMBOL, Side.BUY, 0.1, candle_ts=T0 + 2 * HOUR, created_ts=T0 + 3 * HOUR)
    loop.orders.send_pending()
    assert resting.status == OrderStatus.OPEN
    loop.set_trading_mode(TradingMode.HALTED, reason="kill switch", flatten=True)
    assert resting.status == OrderStatus.CANCELED
    assert loop.ledger.quantity(SYMBOL) == pytest.approx(0.0)
    flattens = [o for o in loop.orders.orders.values() if o.reason == "flatten on halt"]
    assert len(flattens) == 1 and flattens[0].status == OrderStatus.FILLED
    assert loop.store.load_meta()[META_KEY] == {
        "mode": "halted",
        "reason": "kill switch",
        "flatten": True,
        "settled": True,
    }
    count = len(loop.orders.orders)
    run(loop, 3, 6)
    assert len(loop.orders.orders) == count  # no orders at all
    assert loop.status.idle_reason == "Halted"
    loop.store.close()

    again = make_loop(always_long, StateStore.open(path))
    again.start()
    run(again, 3, 8)
    assert again.modes.current.mode is TradingMode.HALTED
    assert len(again.orders.orders) == count  # nothing flattened twice, nothing new
    assert again.ledger.quantity(SYMBOL) == pytest.approx(0.0)


def test_a_halt_cut_short_by_a_restart_is_finished_after_the_reconciliation_exactly_once(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    loop = make_loop(always_long, StateStore.open(path))
    loop.start()
    run(loop, 0, 3)
    loop.commit()
    # the halt was written, then the process died before it cancelled or flattened anything
    loop.store.stage_meta(META_KEY, {"mode": "halted", "reason": "kill", "flatten": True, "settled": False})
    loop.commit()
    loop.store.close()

    again = make_loop(always_long, StateStore.open(path))
    again.start()
    assert again.status.trading_mode == "halted"
    run(again, 0, 5)  # replays 0..2, reconciles, settles the halt, then trades nothing
    flattens = [o for o in again.orders.orders.values() if o.reason == "flatten on halt"]
    assert len(flattens) == 1 and again.ledger.quantity(SYMBOL) == pytest.approx(0.0)
    assert again.modes.current.settled
    count = len(again.orders.orders)
    again.store.close()

    third = make_loop(always_long, StateStore.open(path))
    third.start()
    run(third, 0, 7)
    assert len(third.orders.orders) == count


def test_reject_limit_rejected_orders_in_a_row_put_the_runtime_in_safe_mode_by_itself(tmp_path: Path) -> None:
    loop = make_loop(always_long, StateStore.open(str(tmp_path / "s.db")), exchange=RejectingExchange, reject_limit=3)
    loop.start()
    run(loop, 0, 10)
    rejected = [o for o in loop.orders.orders.values() if o.reason.startswith("Filter failure")]
    assert len(rejected) == 3  # the third put it in safe mode: no entry was tried after it
    assert loop.modes.current.mode is TradingMode.SAFE
    assert "3 orders in a row rejected or failed" in (loop.status.trading_mode_reason or "")
    assert loop.store.load_meta()[META_KEY]["mode"] == "safe"  # persisted
    health = loop.health
    assert health.rejects == 3 and health.consecutive_rejects == 3


def test_a_disagreement_with_the_exchange_puts_it_in_safe_mode_before_anything_else(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    loop = make_loop(always_long, StateStore.open(path))
    loop.start()
    run(loop, 0, 2)
    order = loop.orders.create_intent(SYMBOL, Side.BUY, 0.1, candle_ts=T0 + HOUR, created_ts=T0 + 2 * HOUR)
    loop.orders.send_pending()
    assert order.status == OrderStatus.OPEN
    loop.commit()
    loop.store.close()

    # a new process with a fresh paper book: the open order is unknown to "the exchange"
    again = make_loop(always_long, StateStore.open(path), exchange=LostBookExchange)
    again.start()
    with pytest.raises(StateError):
        run(again, 0, 3)
    assert again.modes.current.mode is TradingMode.SAFE
    assert "disagree with the exchange" in (again.modes.current.reason or "")
    assert again.store.load_meta()[META_KEY]["mode"] == "safe"
    assert again.health.reconcile_problems == 1


class HandClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_halt_on_an_exchange_that_fills_later_waits_for_its_exits_and_never_cancels_them(tmp_path: Path) -> None:
    clock = HandClock()
    loop = make_loop(always_long, StateStore.open(str(tmp_path / "s.db")), exchange=LostBookExchange, clock=clock)
    loop.start()
    run(loop, 0, 3)
    assert loop.ledger.quantity(SYMBOL) == pytest.approx(0.5)
    loop.set_trading_mode(TradingMode.HALTED, reason="kill", flatten=True)
    (exit_order,) = [o for o in loop.orders.orders.values() if o.reason == "flatten on halt"]
    assert exit_order.status == OrderStatus.OPEN  # a market order this exchange fills with its next candle
    assert not loop.modes.current.settled
    for _ in range(3):
        clock.now += 5
        loop.tick()  # looks again: the exit is not cancelled, no second exit is sent
    assert exit_order.status == OrderStatus.OPEN and len(loop.orders.orders) == 2
    loop.process(candle(3))  # the next candle fills it
    clock.now += 5
    loop.tick()
    assert exit_order.status == OrderStatus.FILLED and loop.ledger.quantity(SYMBOL) == pytest.approx(0.0)
    assert loop.modes.current.settled and loop.store.load_meta()[META_KEY]["settled"] is True
    assert len(loop.orders.orders) == 2


class AwayExchange(LostBookExchange):
    """Takes orders, then cannot be asked about them (an outage between a send and its refresh)."""

    def fetch_order(self, client_order_id: str, symbol: str) -> Order | None:
        raise ExchangeUnavailable("binance GET https://api.binance.com/api/v3/order?signature=abc: 503")


def test_an_order_that_cannot_be_refreshed_counts_as_an_exchange_error(tmp_path: Path) -> None:
    loop = make_loop(lambda _ts: 0.0, StateStore.open(str(tmp_path / "s.db")), exchange=AwayExchange)
    loop.start()
    run(loop, 0, 1)
    resting = loop.orders.create_intent(
        SYMBOL, Side.BUY, 0.1, candle_ts=T0, created_ts=T0 + HOUR, order_type=OrderType.LIMIT, limit_price=60.0
    )
    loop.orders.send_pending()
    assert resting.status == OrderStatus.OPEN and loop.health.exchange.errors == 0
    run(loop, 1, 3)  # the resting order is refreshed on each candle, and the exchange cannot answer
    exchange = loop.health.exchange
    assert exchange.errors == 2 and exchange.consecutive_errors == 2
    assert exchange.last_error is not None and "abc" not in exchange.last_error


def test_a_hold_stops_entries_unwritten_and_gives_back_the_mode_before_it(tmp_path: Path) -> None:
    store = StateStore.open(str(tmp_path / "s.db"))
    loop = make_loop(always_long, store)
    loop.start()
    before = loop.modes.hold_entries("credential rotation")
    assert before is not None and loop.modes.mode is TradingMode.SAFE
    run(loop, 0, 3)
    assert loop.orders.orders == {}, "an entry went out during the hold"
    assert META_KEY not in store.load_meta(), "the hold was written to the state file"
    assert loop.modes.release_entries(before) is True
    assert loop.modes.mode is TradingMode.NORMAL
    run(loop, 3, 4)
    assert len(loop.orders.orders) == 1


def test_a_change_during_a_hold_wins_over_its_release(tmp_path: Path) -> None:
    loop = make_loop(always_long, StateStore.open(str(tmp_path / "s.db")))
    loop.start()
    before = loop.modes.hold_entries("credential rotation")
    loop.set_trading_mode(TradingMode.HALTED, reason="operator", flatten=False)
    assert loop.modes.release_entries(before) is False and loop.modes.mode is TradingMode.HALTED

    loop.set_trading_mode(TradingMode.NORMAL, reason="operator", flatten=False)
    before = loop.modes.hold_entries("credential rotation")
    assert loop.modes.go_safe("3 orders in a row rejected") is True  # the runtime's own move during a hold
    assert loop.modes.release_entries(before) is False
    assert loop.modes.mode is TradingMode.SAFE and loop.modes.current.reason == "3 orders in a row rejected"

    assert loop.modes.hold_entries("credential rotation") is None  # already safe: nothing to hold or give back
    assert loop.modes.release_entries(None) is False and loop.modes.mode is TradingMode.SAFE


def test_a_halt_reason_that_quotes_a_signed_request_is_shown_without_its_credentials(tmp_path: Path) -> None:
    loop = make_loop(lambda i: 0.0, StateStore.open(tmp_path / "state.db"))
    loop.start()
    loop.halt("ExchangeError: POST https://api.example.com/api/v3/order?symbol=BTCUSDT&signature=c0ffee: apiKey=AKIA1")
    assert loop.halt_reason == "ExchangeError: POST https://api.example.com/api/v3/order?<redacted> apiKey=<redacted>"
    assert "c0ffee" not in repr(loop.status) and "AKIA1" not in repr(loop.status)
