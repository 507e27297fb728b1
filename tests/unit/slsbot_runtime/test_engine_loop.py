"""The trading loop in-process on real candles: fill timing, warmup after a real gap, pause, long-only,
shutdown, metrics. A tiny test-local component makes the signal whatever the test needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from slsbot.api import PaperSettings, RiskPolicySpec
from slsbot.api.strategy import Sizing, SizingMethod
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.domain.types import FLAT, Candle, OrderStatus, Side, Signal
from slsbot_runtime.engine import LoopSettings, Phase, TradingLoop
from slsbot_runtime.engine.health import CONFIDENCE_RECENT
from slsbot_runtime.engine.signals import ComponentDecider
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams

HOUR = 3_600_000
SYMBOL = "BTC/USDT"
GAP_NEXT_TS = int(datetime(2018, 2, 9, 10, tzinfo=UTC).timestamp() * 1000)  # first candle after the 33 h outage


class Scripted(StrategyComponent):
    """Direction (and confidence, 1 unless given) from functions of the candle's open time."""

    id = "scripted"
    Params = StrategyParams

    def __init__(
        self, direction_at: Callable[[int], float], confidence_at: Callable[[int], float] = lambda ts: 1.0
    ) -> None:
        super().__init__({})
        self.direction_at = direction_at
        self.confidence_at = confidence_at

    @property
    def warmup(self) -> int:
        return 0

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        direction = self.direction_at(candle.ts)
        return Signal(direction, self.confidence_at(candle.ts), "scripted") if direction else FLAT


def every(hours: int) -> Callable[[int], float]:
    """Long for ``hours`` candles, then flat for as many, and so on."""
    return lambda ts: 1.0 if (ts // HOUR // hours) % 2 == 0 else -1.0


def make_loop(
    direction_at: Callable[[int], float],
    *,
    store: StateStore | None = None,
    warmup: int = 10,
    metrics: RuntimeMetrics | None = None,
    fixed: float | None = 0.05,
    confidence_at: Callable[[int], float] = lambda ts: 1.0,
    **paper: float,
) -> TradingLoop:
    settings = LoopSettings(
        name="t",
        strategy_key="default/t",
        symbols=(SYMBOL,),
        interval_ms=HOUR,
        warmup_candles=warmup,
        starting_cash=10_000.0,
        quote_currency="USDT",
        fixed_quantity=fixed,
    )
    sizing = Sizing(method=SizingMethod.FIXED_QUANTITY, quantity=fixed) if fixed else Sizing()
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
        exchange=PaperExchange(PaperSettings(**paper), interval_ms=HOUR),
        store=store or StateStore.open(":memory:"),
        deciders={SYMBOL: ComponentDecider(Scripted(direction_at, confidence_at))},
        risk=RiskManager(policy, sizing, True),
        metrics=metrics,
    )


def test_a_signal_at_a_close_fills_at_the_next_open(btc_2018) -> None:
    loop = make_loop(every(24), spread_bps=0, slippage_bps=0, max_volume_participation=1.0)
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    orders = list(loop.orders.orders.values())
    assert len(orders) > 10
    times = btc_2018.ts.tolist()
    for order in orders:
        assert order.status == OrderStatus.FILLED
        decided_on = order.created_ts - HOUR  # the candle whose close the decision was taken at
        next_open = btc_2018.open[times.index(decided_on) + 1]  # the next candle (after the gap, if one)
        assert order.average_price == pytest.approx(next_open, rel=1e-12)
    assert loop.ledger.trade_count == len(orders)


def test_no_entry_during_warmup_after_the_real_gap(btc_2018) -> None:
    loop = make_loop(every(1), warmup=20)  # wants to trade on every candle
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    entries = sorted(o.created_ts - HOUR for o in loop.orders.orders.values() if o.side == Side.BUY)
    first = int(btc_2018.ts[0])
    # the 20th candle after the start, and after the gap, is the first warm one (entries on even hours only)
    assert first + 19 * HOUR <= entries[0] <= first + 20 * HOUR
    after_gap = [ts for ts in entries if ts >= GAP_NEXT_TS]
    assert GAP_NEXT_TS + 19 * HOUR <= after_gap[0] <= GAP_NEXT_TS + 20 * HOUR
    assert [g.missing for g in loop.gaps.gaps] == [33]
    assert len(entries) > 150


def test_an_exit_is_not_held_back_by_the_warmup_after_the_real_gap(btc_2018) -> None:
    # long up to the outage, then the signal says leave: the exit goes out at the first candle after it,
    # not 20 candles later when the symbol is warm again (data/gaps.py: only entries wait)
    loop = make_loop(lambda ts: 1.0 if ts < GAP_NEXT_TS else -1.0, warmup=20)
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    first = int(btc_2018.ts[0])
    decided = sorted((o.created_ts - HOUR, o.side) for o in loop.orders.orders.values())
    assert decided == [(first + 19 * HOUR, Side.BUY), (GAP_NEXT_TS, Side.SELL)]
    assert loop.ledger.open_positions() == 0


def test_a_working_entry_is_canceled_and_the_fills_sold_during_the_warmup_when_the_signal_turns(btc_2018) -> None:
    # an entry that fills a sliver per candle is still working at the outage; the signal turns at the first
    # candle after it: the rest is canceled and what filled is sold then, not 20 candles later
    long_from = GAP_NEXT_TS - 37 * HOUR  # three candles before the last one ahead of the outage
    loop = make_loop(
        lambda ts: 1.0 if long_from <= ts < GAP_NEXT_TS else -1.0, warmup=20, max_volume_participation=1e-6
    )
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    entry, exit_ = sorted(loop.orders.orders.values(), key=lambda o: o.created_ts)
    assert entry.side == Side.BUY and entry.created_ts == long_from + HOUR
    assert entry.status == OrderStatus.CANCELED and 0 < entry.filled_quantity < 0.05
    assert entry.updated_ts == GAP_NEXT_TS + HOUR  # canceled at the close of the first candle after the outage
    assert exit_.side == Side.SELL and exit_.created_ts == GAP_NEXT_TS + HOUR
    assert exit_.quantity == pytest.approx(entry.filled_quantity, rel=1e-9)


def test_the_first_days_loss_is_measured_from_the_starting_cash() -> None:
    loop = make_loop(lambda ts: 0.0)
    loop.start()
    assert loop.risk.state().equity == 10_000.0  # the risk manager knows the equity before the first candle
    loop.risk.on_candle(0, 9_400.0)
    assert loop.risk.state().day_start_equity == 10_000.0


def test_long_only_never_sells_short(btc_2018) -> None:
    loop = make_loop(lambda ts: -1.0)
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    assert loop.orders.orders == {}
    assert loop.risk.rule_counts() == {}  # nothing was even proposed


def test_paused_stops_entries_but_not_exits(btc_2018) -> None:
    loop = make_loop(every(24))
    loop.start()
    candles = iter(ReplayFeed([btc_2018], interval_ms=HOUR))
    while loop.ledger.open_positions() == 0:
        loop.process(next(candles))
    loop.pause()
    before = len(loop.orders.orders)
    for _ in range(100):
        loop.process(next(candles))
    sides = [o.side for o in list(loop.orders.orders.values())[before:]]
    assert sides == [Side.SELL]  # the exit went through; no new entry while paused
    assert loop.ledger.open_positions() == 0 and loop.status.phase == Phase.PAUSED
    loop.resume()
    for _ in range(100):
        loop.process(next(candles))
    assert Side.BUY in [o.side for o in list(loop.orders.orders.values())[before:]]


def test_an_allocation_of_zero_closes_the_position_through_the_normal_exit_and_opens_nothing(btc_2018) -> None:
    loop = make_loop(lambda ts: 1.0)  # always long: only the allocation can make it sell
    loop.start()
    candles = iter(ReplayFeed([btc_2018], interval_ms=HOUR))
    while loop.ledger.open_positions() == 0:
        loop.process(next(candles))
    loop.risk.set_allocation(0)  # what the runtime process does at a candle boundary
    before = len(loop.orders.orders)
    for _ in range(50):
        loop.process(next(candles))
    added = list(loop.orders.orders.values())[before:]
    assert [(o.side, o.reason) for o in added] == [(Side.SELL, "exit long: target flat")]
    assert added[0].status == OrderStatus.FILLED and loop.ledger.open_positions() == 0
    loop.publisher.publish()
    assert loop.status.phase == Phase.RUNNING and loop.status.idle_reason == "NoAllocation"
    loop.risk.set_allocation(25)
    for _ in range(5):
        loop.process(next(candles))
    assert loop.ledger.open_positions() == 1 and list(loop.orders.orders.values())[-1].side == Side.BUY


def test_shutdown_with_flatten_leaves_no_position(btc_2018) -> None:
    loop = make_loop(lambda ts: 1.0)
    loop.start()
    for candle in list(ReplayFeed([btc_2018], interval_ms=HOUR))[:30]:
        loop.process(candle)
    assert loop.ledger.open_positions() == 1
    loop.shutdown(cancel_orders=True, flatten=True)
    assert loop.ledger.open_positions() == 0
    assert loop.orders.unfinished() == [] and loop.status.phase == Phase.FINISHED
    last = list(loop.orders.orders.values())[-1]
    assert last.side == Side.SELL and last.reason.startswith("flatten")
    assert loop.exchange.balance("BTC") == pytest.approx(0.0, abs=1e-12)


def test_metrics_follow_the_loop(btc_2018) -> None:
    registry = CollectorRegistry()
    loop = make_loop(every(24), metrics=RuntimeMetrics(registry))
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    value = registry.get_sample_value
    assert value("slsbot_runtime_candles_processed_total", {"symbol": SYMBOL}) == 800
    assert value("slsbot_runtime_feed_gaps_total", {"symbol": SYMBOL}) == 33
    assert value("slsbot_runtime_fills_total", {"symbol": SYMBOL, "side": "buy"}) >= 5
    assert value("slsbot_runtime_orders", {"status": "filled"}) == len(loop.orders.orders)
    assert value("slsbot_runtime_equity") == pytest.approx(loop.ledger.equity())
    assert value("slsbot_runtime_decision_latency_seconds_count") == 800
    assert value("slsbot_runtime_phase", {"phase": "finished"}) == 1
    assert value("slsbot_runtime_phase", {"phase": "running"}) == 0


def test_risk_rejections_are_counted_by_rule(btc_2018) -> None:
    registry = CollectorRegistry()
    loop = make_loop(every(24), metrics=RuntimeMetrics(registry), fixed=None)
    loop.risk = RiskManager(RiskPolicySpec(max_symbol_exposure_percent=0.001), Sizing(), True)
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    assert loop.orders.orders == {}
    rejected = registry.get_sample_value("slsbot_runtime_risk_rejections_total", {"rule": "symbol_exposure"})
    assert rejected == loop.risk.rule_counts()["symbol_exposure"] > 5


def test_every_risk_decision_is_counted_and_every_rejection_is_kept_in_the_state_file(btc_2018, tmp_path: Path) -> None:
    from slsbot_runtime.persistence.report import build_report

    path = tmp_path / "state.db"
    registry = CollectorRegistry()
    loop = make_loop(every(24), store=StateStore.open(path), metrics=RuntimeMetrics(registry), fixed=None)
    loop.risk = RiskManager(RiskPolicySpec(max_symbol_exposure_percent=0.001), Sizing(), True)
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    loop.store.close()
    rejected = loop.risk.action_counts()["rejected"]
    value = registry.get_sample_value
    report = build_report(str(path))
    decisions = report["risk_decisions"]
    assert len(decisions) == rejected > 5
    by_rule = report["summary"]["risk_decisions_by_rule"]
    assert by_rule["symbol_exposure"] > 5
    for rule, count in by_rule.items():
        assert value("slsbot_runtime_risk_decisions_total", {"action": "rejected", "rule": rule}) == count
    first = decisions[0]
    assert first["action"] == "rejected" and first["quantity"] == 0.0 and first["requested_quantity"] is None
    assert first["symbol"] == SYMBOL and first["side"] == "buy" and first["is_entry"] is True
    assert first["events"][0] == {"rule": first["rule"], "message": first["message"]} and first["message"]
    assert any(e["rule"] == "symbol_exposure" and "exposure" in e["message"] for e in first["events"])
    assert [d["ts"] for d in decisions] == sorted(d["ts"] for d in decisions)
    assert {d["ts"] for d in decisions} <= set(btc_2018.ts.tolist())
    assert report["summary"]["risk_decisions_by_action"] == {"rejected": rejected}


def test_an_entry_below_the_markets_minimum_is_a_recorded_decision_never_an_order(btc_2018) -> None:
    loop = make_loop(every(24), fixed=0.0001)  # about 1 USDT of BTC in 2018: below Binance's 5 USDT minimum
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    assert loop.orders.orders == {} and loop.exchange.fetch_open_orders() == []
    decisions = loop.store.load_risk_decisions()
    assert len(decisions) > 5 and {d.rule for d in decisions} == {"market_minimum"}
    assert "below BTC/USDT's minimum notional 5 USDT" in decisions[0].message


def test_entries_are_sent_on_the_markets_step(btc_2018) -> None:
    loop = make_loop(every(24), fixed=0.0123456789, spread_bps=0, slippage_bps=0, max_volume_participation=1.0)
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    orders = list(loop.orders.orders.values())
    assert len(orders) > 5
    assert {order.quantity for order in orders} == {0.01234}
    assert all(order.status == OrderStatus.FILLED for order in orders)


def test_plain_approvals_are_counted_without_a_rule_and_not_stored(btc_2018) -> None:
    registry = CollectorRegistry()
    loop = make_loop(every(24), metrics=RuntimeMetrics(registry))
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    approved = loop.risk.action_counts()["approved"]
    assert approved == len(loop.orders.orders) > 5
    value = registry.get_sample_value
    assert value("slsbot_runtime_risk_decisions_total", {"action": "approved", "rule": "none"}) == approved
    assert loop.store.load_risk_decisions() == []


def test_a_restart_does_not_record_a_replayed_rejection_twice(btc_2018, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    policy = RiskPolicySpec(max_symbol_exposure_percent=0.001)
    first = make_loop(every(24), store=StateStore.open(path), fixed=None)
    first.risk = RiskManager(policy, Sizing(), True)
    first.run(ReplayFeed([btc_2018.slice(0, 400)], interval_ms=HOUR))
    first.store.close()
    second = make_loop(every(24), store=StateStore.open(path), fixed=None)
    second.risk = RiskManager(policy, Sizing(), True)
    second.run(ReplayFeed([btc_2018], interval_ms=HOUR))  # the first 400 candles are replayed
    stored = second.store.load_risk_decisions()
    whole = make_loop(every(24), fixed=None)
    whole.risk = RiskManager(policy, Sizing(), True)
    whole.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    assert [(d.ts, d.rule) for d in stored] == [(d.ts, d.rule) for d in whole.store.load_risk_decisions()]
    assert len(stored) > 5


def test_an_orders_answer_is_committed_right_after_the_send(btc_2018, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    loop = make_loop(every(24), store=StateStore.open(path))
    loop.clock = lambda: 0.0  # no commit for time passing; commit_every_candles is 1000
    loop.start()
    candles = iter(ReplayFeed([btc_2018], interval_ms=HOUR))
    while loop.orders.submissions == 0:
        loop.process(next(candles))
    (order,) = loop.orders.orders.values()
    assert order.status == OrderStatus.OPEN and order.exchange_order_id
    (stored,) = StateStore.open(path, readonly=True).load_orders()
    assert stored == order


def every_third_hour(ts: int) -> float:
    """An opinion every third candle (long, then flat), none otherwise."""
    hour = ts // HOUR
    return 0.0 if hour % 3 else (1.0 if hour % 6 == 0 else -1.0)


def hour_of_day(ts: int) -> float:
    return (ts // HOUR % 24) / 24


def test_signal_confidence_counts_each_signal_and_a_restart_rebuilds_it_from_its_replay(btc_2018, tmp_path) -> None:
    """The health block's ``confidence*`` figures: each signal that sets a target counts, a candle without an opinion
    does not, and a restart rebuilds them from its replay, as the uninterrupted run has them."""
    whole = make_loop(every_third_hour, confidence_at=hour_of_day)
    whole.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    hours = btc_2018.ts // HOUR
    expected = [(h % 24) / 24 for h in hours if h % 3 == 0]
    assert whole.confidence.signals == len(expected)
    figures = whole.confidence.to_json()
    assert figures["confidence"] == expected[-1]
    assert figures["confidence_recent_mean"] == round(sum(expected[-CONFIDENCE_RECENT:]) / CONFIDENCE_RECENT, 6)

    path = tmp_path / "state.db"
    first = make_loop(every_third_hour, confidence_at=hour_of_day, store=StateStore.open(path))
    first.run(ReplayFeed([btc_2018.slice(0, 400)], interval_ms=HOUR))
    first.store.close()
    second = make_loop(every_third_hour, confidence_at=hour_of_day, store=StateStore.open(path))
    second.run(ReplayFeed([btc_2018], interval_ms=HOUR))  # its first 400 candles are replayed, not traded
    assert second.state.replayed == 400
    assert second.confidence.to_json() == figures and second.confidence.signals == whole.confidence.signals
