"""Restart after a crash at the worst moments gives exactly the uninterrupted run.

A crash is simulated in-process: the exchange raises ``Crash`` (a BaseException nothing catches) at a
chosen call, the loop object and its staged writes are dropped, and a new loop with a new paper exchange
starts from the state file, exactly as a restarted process would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slsbot.api import PaperSettings, RiskPolicySpec
from slsbot.api.strategy import Sizing
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.domain.errors import ExchangeUnavailable, StateError
from slsbot_runtime.domain.types import Candle, Fill, Order, OrderRequest
from slsbot_runtime.engine import LoopSettings, Phase, TradingLoop
from slsbot_runtime.engine.signals import ComponentDecider
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.exchange.retry import RetryPolicy
from slsbot_runtime.persistence.report import build_report
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.runtime_process import BuiltRuntime, RuntimeProcess
from slsbot_runtime.strategy.registry import build_component

HOUR = 3_600_000
SYMBOLS = ("BTC/USDT", "ETH/USDT")
PAPER = PaperSettings(max_volume_participation=0.0002)  # small: many partial fills across candles
# tight limits, so the risk manager's state (peak, breaker levels, daily start) shapes the decisions
POLICY = RiskPolicySpec.model_validate(
    {
        "dailyLossLimitPercent": 0.3,
        "circuitBreaker": {"levels": [{"action": "reduceSize", "drawdownPercent": 0.5, "sizeMultiplier": 0.5}]},
    }
)


class Crash(BaseException):
    pass


class CrashingPaper(PaperExchange):
    """A paper exchange that crashes the process at the n-th call of one method."""

    def __init__(self, *, method: str, at_call: int) -> None:
        super().__init__(PAPER, interval_ms=HOUR)
        self.method, self.at_call, self.calls = method, at_call, 0

    def _maybe_crash(self, method: str) -> None:
        if method == self.method:
            self.calls += 1
            if self.calls == self.at_call:
                raise Crash(f"{method} #{self.at_call}")

    def place_order(self, request: OrderRequest) -> Order:
        self._maybe_crash("place_order")
        return super().place_order(request)

    def on_candle(self, candle: Candle) -> list[Fill]:
        self._maybe_crash("on_candle")
        return super().on_candle(candle)


class DiesAfterPlacing(PaperExchange):
    """A paper exchange that takes the first order, answers it, and then the process dies (before the loop can
    commit the answer)."""

    def __init__(self) -> None:
        super().__init__(PAPER, interval_ms=HOUR)

    def place_order(self, request: OrderRequest) -> Order:
        super().place_order(request)
        raise Crash("after the first place_order")


class OutagePaper(PaperExchange):
    """A paper exchange whose calls to the account (orders, fills, balances) fail as an exchange adapter's do once its
    own retries ran out (``ExchangeUnavailable``): while ``down``, or for the next ``fail_calls`` calls. The matching
    of a candle (``on_candle``) is the simulation, not a call, and goes on."""

    def __init__(self) -> None:
        super().__init__(PAPER, interval_ms=HOUR)
        self.down = False
        self.fail_calls = 0
        self.refused = 0
        self.placed: list[str] = []

    def _call(self, what: str) -> None:
        if self.down or self.fail_calls > 0:
            self.fail_calls = max(self.fail_calls - 1, 0)
            self.refused += 1
            raise ExchangeUnavailable(f"binance {what}: connection refused (after 5 attempts)")

    def place_order(self, request: OrderRequest) -> Order:
        self._call("POST /api/v3/order")
        self.placed.append(request.client_order_id)
        return super().place_order(request)

    def cancel_order(self, client_order_id: str, symbol: str) -> Order:
        self._call("DELETE /api/v3/order")
        return super().cancel_order(client_order_id, symbol)

    def fetch_order(self, client_order_id: str, symbol: str) -> Order | None:
        self._call("GET /api/v3/order")
        return super().fetch_order(client_order_id, symbol)

    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        self._call("GET /api/v3/openOrders")
        return super().fetch_open_orders(symbol)

    def fetch_fills(self, symbol: str, since_ts: int = 0) -> list[Fill]:
        self._call("GET /api/v3/myTrades")
        return super().fetch_fills(symbol, since_ts)

    def fetch_balances(self) -> dict[str, Any]:
        self._call("GET /api/v3/account")
        return super().fetch_balances()


@pytest.fixture(scope="module")
def feed(market_data_dir: Path) -> ReplayFeed:
    folder = market_data_dir / "binance-spot-1h-2017"
    histories = [load_history(folder, s, "1h", interval_ms=HOUR).slice(3000, 4200) for s in SYMBOLS]
    return ReplayFeed(histories, interval_ms=HOUR)


def make_loop(path: Path, exchange: PaperExchange | None = None, **extra: Any) -> TradingLoop:
    settings = LoopSettings(
        name="r",
        strategy_key="default/r",
        symbols=SYMBOLS,
        interval_ms=HOUR,
        warmup_candles=30,
        starting_cash=10_000.0,
        quote_currency="USDT",
        commit_every_candles=97,
        commit_interval_s=3600,
        **extra,
    )
    deciders = {s: ComponentDecider(build_component("sma_cross", 1, {"fast": 4, "slow": 12})) for s in SYMBOLS}
    return TradingLoop(
        settings,
        exchange=exchange or PaperExchange(PAPER, interval_ms=HOUR),
        store=StateStore.open(path),
        deciders=deciders,
        risk=RiskManager(POLICY, Sizing(), True),
    )


def outcome(path: Path) -> dict[str, Any]:
    report = build_report(str(path))
    return {key: report[key] for key in ("orders", "fills", "positions", "equity_curve", "summary")}


@pytest.fixture(scope="module")
def uninterrupted(feed: ReplayFeed, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("clean") / "state.db"
    clean = make_loop(path)
    clean.run(feed)
    result = outcome(path)
    assert result["summary"]["orders_total"] > 40
    assert any(o["status"] == "filled" for o in result["orders"])
    assert len(result["fills"]) > result["summary"]["orders_total"]  # partial fills happened
    assert {"breaker_level_1", "daily_loss"} <= set(clean.risk.rule_counts())
    return result


def crash_then_finish(path: Path, feed: ReplayFeed, crashes: list[tuple[str, int]]) -> TradingLoop:
    for method, at_call in crashes:
        loop = make_loop(path, CrashingPaper(method=method, at_call=at_call))
        with pytest.raises(Crash):
            loop.run(feed)
        loop.store.close()  # whatever was only staged is lost, as in a killed process
    loop = make_loop(path)
    loop.run(feed)
    return loop


@pytest.mark.parametrize(
    "crashes",
    [
        [("place_order", 1)],  # intent on disk, never sent
        [("place_order", 7)],
        [("on_candle", 1500)],  # mid-batch: uncommitted candles are processed again
        [("place_order", 3), ("on_candle", 900), ("place_order", 2), ("on_candle", 300)],
    ],
    ids=["before-first-send", "before-a-later-send", "mid-batch", "four-crashes"],
)
def test_a_crashed_run_ends_exactly_like_the_uninterrupted_one(
    crashes: list[tuple[str, int]], feed: ReplayFeed, uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "state.db"
    crash_then_finish(path, feed, crashes)
    assert outcome(path) == uninterrupted


def test_a_crash_right_after_a_send_resends_nothing_twice(feed: ReplayFeed, uninterrupted, tmp_path: Path) -> None:
    """Sent, acknowledged by the exchange, then the process dies before the acknowledgement is committed:
    the restart finds the intent pending, the paper book (stored with the same commit) does not know it,
    so it is sent again with the same id, and the result is still exact."""
    path = tmp_path / "state.db"
    probe = make_loop(path, DiesAfterPlacing())
    with pytest.raises(Crash):
        probe.run(feed)
    assert probe.orders.submissions == 1
    probe.store.close()  # dies right after the first send
    loop = make_loop(path)
    loop.run(feed)
    assert loop.reconcile_report is not None and len(loop.reconcile_report.resent) == 1
    assert outcome(path) == uninterrupted


def test_a_finished_run_restarted_sends_nothing(feed: ReplayFeed, uninterrupted, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    make_loop(path).run(feed)
    again = make_loop(path)
    again.run(feed)
    assert again.orders.submissions == 0 and again.processed == 0
    assert again.replayed == len(feed)
    assert outcome(path) == uninterrupted


def test_state_that_disagrees_with_the_exchange_halts(feed: ReplayFeed, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = make_loop(path)
    first.start()
    candles = list(feed)
    for candle in candles[:1200]:
        first.process(candle)
    first.commit()
    assert first.ledger.open_positions() + len(first.orders.unfinished()) > 0 or first.orders.orders
    first.store.close()
    store = StateStore.open(path)
    store.stage_meta("cash", 123.0)  # the books no longer match the exchange's balances
    store.commit()
    store.close()
    loop = make_loop(path)
    loop.start()
    with pytest.raises(StateError, match=r"cash: 123\.0 USDT booked"):
        for candle in candles:
            loop.process(candle)
    assert loop.status.phase == Phase.HALTED and "cash" in (loop.status.error or "")
    with pytest.raises(StateError, match="halted"):
        loop.process(candles[-1])


def test_shutdown_with_flatten_right_after_a_restart(feed: ReplayFeed, tmp_path: Path) -> None:
    """Asked to flatten before any new candle: reconcile first, then close at the last stored close."""
    path = tmp_path / "state.db"
    first = make_loop(path)
    first.start()
    candles = iter(feed)
    while first.ledger.open_positions() == 0:
        first.process(next(candles))
    first.commit()
    first.store.close()
    loop = make_loop(path)
    loop.start()
    assert loop.ledger.open_positions() == 1
    loop.shutdown(cancel_orders=True, flatten=True)
    assert loop.reconcile_report is not None
    assert loop.ledger.open_positions() == 0 and loop.orders.unfinished() == []
    assert all(loop.exchange.balance(c) == pytest.approx(0.0, abs=1e-12) for c in ("BTC", "ETH"))


def test_a_restarted_loop_reconciles_once_the_feed_has_nothing_waiting(feed: ReplayFeed, tmp_path: Path) -> None:
    """A live feed replays up to the cursor, then has no candle for an interval: the loop reconciles (here: sends
    the intent a crash left unsent) when told the feed is quiet, not with the next new candle."""
    path = tmp_path / "state.db"
    candles = list(feed)
    probe = make_loop(path, DiesAfterPlacing())
    with pytest.raises(Crash):
        probe.run(candles)
    probe.store.close()
    cursor = StateStore.open(path, readonly=True).load_cursor()
    loop = make_loop(path)
    loop.start()
    replayed = [c for c in candles if c.ts <= cursor.get(c.symbol, -1)]
    for candle in replayed:
        assert loop.process(candle) is False
    assert loop.status.phase == Phase.RECONCILING and loop.reconcile_report is None
    loop.tick()
    assert loop.status.phase != Phase.RECONCILING
    assert loop.reconcile_report is not None and len(loop.reconcile_report.resent) == 1
    (sent,) = loop.reconcile_report.resent
    assert loop.exchange.fetch_order(sent, loop.orders.orders[sent].symbol) is not None
    stored = {o.client_order_id: o for o in StateStore.open(path, readonly=True).load_orders()}
    assert stored[sent].status != "pending"  # the resend's answer is on disk
    loop.tick()
    assert loop.orders.submissions == 1  # reconciled once


def test_a_restarted_loop_that_replayed_its_warmup_is_ready_once_reconciled_not_with_the_next_candle(
    feed: ReplayFeed, tmp_path: Path
) -> None:
    """A live runtime restarted between two candles (an hour apart on 1h) replays past its warmup and reconciles on
    a tick: it is ready then (``/readyz``, what the control plane waits for), not an interval later."""
    path = tmp_path / "state.db"
    candles = list(feed)
    first = make_loop(path)
    first.run(candles[:400])
    first.commit()
    first.store.close()
    loop = make_loop(path)
    loop.start()
    for candle in candles[:400]:
        assert loop.process(candle) is False  # replayed
    assert loop.status.ready is False
    loop.tick()
    assert loop.reconcile_report is not None and loop.status.ready is True


def test_a_fresh_loop_reconciles_with_its_first_candle_not_on_a_tick_before_start(tmp_path: Path) -> None:
    loop = make_loop(tmp_path / "state.db")
    loop.tick()
    assert loop.reconcile_report is None and loop.status.phase == Phase.STARTING


def crashed_after_a_send(path: Path, feed: ReplayFeed) -> dict[str, int]:
    """A state whose last intent was sent and acknowledged, the process dying before the answer was committed; its
    cursor."""
    probe = make_loop(path, DiesAfterPlacing())
    with pytest.raises(Crash):
        probe.run(feed)
    probe.store.close()
    return StateStore.open(path, readonly=True).load_cursor()


def test_a_restart_that_meets_an_exchange_outage_waits_then_reconciles_and_trades_on_exactly_once(
    feed: ReplayFeed, uninterrupted, tmp_path: Path
) -> None:
    """The reconciliation after a restart meets an exchange that is away (every call fails after the adapter's
    retries): no halt; /status says the runtime waits for the exchange, the health block that the exchange fails;
    the candle is not taken and nothing is sent; the reconciliation is tried again only once its backoff is over;
    once the exchange answers, the books are reconciled (the intent the crash left is resent, once) and the run
    ends exactly like the uninterrupted one."""
    path = tmp_path / "state.db"
    cursor = crashed_after_a_send(path, feed)
    exchange = OutagePaper()
    exchange.down = True
    loop = make_loop(path, exchange)
    now = [1_000_000.0]
    loop.clock = lambda: now[0]
    loop.start()
    candles = list(feed)
    first_new = next(i for i, c in enumerate(candles) if c.ts > cursor.get(c.symbol, -1))
    for candle in candles[:first_new]:
        assert loop.process(candle) is False  # replayed
    with pytest.raises(ExchangeUnavailable):
        loop.process(candles[first_new])
    status = loop.status
    assert status.phase == Phase.RECONCILING
    assert loop.halt_reason is None and status.error is None and status.ready is False
    assert status.idle_reason == "WaitingForExchange" and "connection refused" in (status.idle_message or "")
    health = loop.health.block(
        symbols=SYMBOLS, status=status.to_json(), confidence=loop.confidence, margin_used_percent=None, memory=(0, None)
    )
    assert health["exchange"]["connected"] is False and health["exchange"]["consecutive_errors"] == 1
    assert health["reconcile"]["problems"] == 0  # an outage is no disagreement
    assert loop.orders.submissions == 0 and loop.reconcile_report is None

    refused = exchange.refused
    with pytest.raises(ExchangeUnavailable):
        loop.process(candles[first_new])  # passed again before the backoff is over: no call to the exchange
    loop.tick()
    assert exchange.refused == refused
    now[0] += 61  # past the longest pause (a minute)
    loop.tick()  # tried again: still away
    assert exchange.refused == refused + 1 and loop.state.exchange_wait.failures == 2
    assert loop.status.phase == Phase.RECONCILING and loop.halt_reason is None

    exchange.down = False
    now[0] += 61
    loop.tick()
    report = loop.reconcile_report
    assert report is not None and len(report.resent) == 1
    assert loop.status.phase != Phase.RECONCILING and loop.status.idle_reason != "WaitingForExchange"
    assert not loop.state.exchange_wait.waiting
    health = loop.health.block(
        symbols=SYMBOLS,
        status=loop.status.to_json(),
        confidence=loop.confidence,
        margin_used_percent=None,
        memory=(0, None),
    )
    assert health["exchange"]["connected"] is True and health["reconcile"]["problems"] == 0
    for candle in candles[first_new:]:
        loop.process(candle)
    loop.finish()
    assert len(exchange.placed) == len(set(exchange.placed)), "a client order id was sent twice"
    assert outcome(path) == uninterrupted


def test_a_runtime_whose_restart_reconciliation_meets_an_outage_is_not_halted_and_runs_to_the_end(
    feed: ReplayFeed, uninterrupted, tmp_path: Path
) -> None:
    """The runtime process: the reconciliation's first attempts fail with a temporary error (as after the adapter's
    retries); the candle is held and the reconciliation tried again with backoff, the runtime trades on and ends
    exactly like the uninterrupted run (exit 0), never halted."""
    path = tmp_path / "state.db"
    crashed_after_a_send(path, feed)
    exchange = OutagePaper()
    exchange.fail_calls = 3  # three attempts in a row fail on their first call
    fast = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)
    loop = make_loop(path, exchange, reconcile_retry=fast)
    built = BuiltRuntime(loop, feed, 0.0, False, loop.store)
    process = RuntimeProcess(lambda: built, name="r", state_path=str(path), until_end=True, health_deadline_s=60.0)
    process.start()
    assert process.wait() == 0
    assert loop.halt_reason is None and loop.status.phase == Phase.FINISHED
    assert exchange.refused == 3 and loop.reconcile_report is not None and len(loop.reconcile_report.resent) == 1
    assert len(exchange.placed) == len(set(exchange.placed))
    loop.store.close()
    assert outcome(path) == uninterrupted
