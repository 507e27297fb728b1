"""What the loop's status says beyond the phase: profit at a glance (kept across a restart), and why no new trade
is taken (``idle_reason``/``idle_message``), on real candles with a scripted signal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from slsbot.api import PaperSettings, RiskPolicySpec
from slsbot.api.strategy import Sizing, SizingMethod
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.domain.equity import drawdown_percent, max_drawdown_percent
from slsbot_runtime.domain.timeframes import utc_minute
from slsbot_runtime.domain.types import Candle, Signal
from slsbot_runtime.engine import LoopSettings, TradingLoop
from slsbot_runtime.engine.signals import ComponentDecider
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams

HOUR = 3_600_000
SYMBOL = "BTC/USDT"
FIGURES = (
    "starting_equity", "return_pct", "realized_pnl", "unrealized_pnl", "closed_trades", "win_rate_pct",
    "drawdown_pct", "max_drawdown_pct",
)  # fmt: skip
PERMISSIVE = {
    "perTrade": {"maxPercent": 100},
    "volatilityHalt": {"enabled": False},
    "circuitBreaker": {"levels": []},
    "maxDrawdownPercent": 100,
    "dailyLossLimitPercent": 100,
}


class Scripted(StrategyComponent):
    """Direction and confidence from functions of the candle's open time."""

    id = "scripted"
    Params = StrategyParams

    def __init__(self, direction_at: Callable[[int], float], confidence_at: Callable[[int], float]) -> None:
        super().__init__({})
        self.direction_at, self.confidence_at = direction_at, confidence_at

    @property
    def warmup(self) -> int:
        return 0

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        return Signal(self.direction_at(candle.ts), self.confidence_at(candle.ts), "scripted")


def every(hours: int) -> Callable[[int], float]:
    return lambda ts: 1.0 if (ts // HOUR // hours) % 2 == 0 else -1.0


class Clock:
    """Wall time the test moves on by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_loop(
    direction_at: Callable[[int], float],
    *,
    confidence_at: Callable[[int], float] = lambda ts: 1.0,
    store: StateStore | None = None,
    fixed: float | None = 0.05,
    policy: Mapping[str, Any] = PERMISSIVE,
    clock: Callable[[], float] | None = None,
    warmup: int = 10,
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
    return TradingLoop(
        settings,
        exchange=PaperExchange(PaperSettings(), interval_ms=HOUR),
        store=store or StateStore.open(":memory:"),
        deciders={SYMBOL: ComponentDecider(Scripted(direction_at, confidence_at))},
        risk=RiskManager(RiskPolicySpec.model_validate(policy), sizing, True),
        **({"clock": clock} if clock is not None else {}),
    )


def figures(loop: TradingLoop) -> tuple[Any, ...]:
    status = loop._snapshot()
    return tuple(getattr(status, name) for name in FIGURES)


def test_profit_at_a_glance_agrees_with_the_ledger_and_the_equity_curve(btc_2018) -> None:
    store = StateStore.open(":memory:")
    loop = make_loop(every(24), store=store, fixed=0.3)
    loop.start()
    for number, candle in enumerate(ReplayFeed([btc_2018], interval_ms=HOUR)):
        loop.process(candle)
        if number > 600 and loop.ledger.open_positions():
            break  # a position open: the unrealised result is not 0
    status = loop._snapshot()
    positions = loop.ledger.positions.values()
    wins, losses = sum(p.wins for p in positions), sum(p.losses for p in positions)
    assert status.starting_equity == 10_000.0
    assert status.return_pct == pytest.approx((status.equity / 10_000.0 - 1.0) * 100.0, rel=1e-12)
    assert status.realized_pnl == pytest.approx(sum(p.realized_pnl for p in positions), rel=1e-12)
    assert status.closed_trades == wins + losses > 10
    assert status.win_rate_pct == pytest.approx(wins / (wins + losses) * 100.0)
    # every fee is paid in USDT: what the account made is what its closed and open trades made
    assert status.unrealized_pnl != 0.0
    assert 10_000.0 + status.realized_pnl + status.unrealized_pnl == pytest.approx(status.equity, abs=1e-6)
    loop.commit()
    curve = [point.equity for point in store.load_equity()]  # one row per candle: nothing thins this store
    assert status.max_drawdown_pct == max_drawdown_percent(curve) > 5.0
    assert status.drawdown_pct == pytest.approx(drawdown_percent(max(curve), curve[-1]), rel=1e-12)
    body = status.to_json()
    assert set(FIGURES) | {"idle_reason", "idle_message"} <= set(body)


def test_a_new_runtime_reports_no_win_rate_and_no_drawdown() -> None:
    status = make_loop(every(24))._snapshot()
    assert (status.closed_trades, status.win_rate_pct, status.drawdown_pct, status.max_drawdown_pct) == (0, None, 0, 0)
    assert status.return_pct == 0.0 and status.realized_pnl == status.unrealized_pnl == 0.0


@pytest.mark.parametrize("forget_meta", [False, True], ids=["from-meta", "state-file-of-an-older-runtime"])
def test_the_figures_survive_a_restart(btc_2018, tmp_path: Path, forget_meta: bool) -> None:
    feed = ReplayFeed([btc_2018], interval_ms=HOUR)
    whole = make_loop(every(24), fixed=0.3)
    whole.run(feed)

    path = tmp_path / "state.db"
    first = make_loop(every(24), fixed=0.3, store=StateStore.open(path))
    first.start()
    for candle in list(feed)[:500]:
        first.process(candle)
    first.commit()
    first.store.close()
    if forget_meta:  # a runtime from before these figures were kept wrote no such keys
        import sqlite3

        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM meta WHERE key IN ('equity_peak', 'max_drawdown_pct')")
    second = make_loop(every(24), fixed=0.3, store=StateStore.open(path))
    second.start()
    assert figures(second)[4] == figures(first)[4] > 0  # closed trades, straight from the stored positions
    second.run(feed)
    assert figures(second) == figures(whole)


def test_refused_entries_are_the_idle_reason_until_an_entry_is_taken(btc_2018, caplog) -> None:
    # Kelly sizing from the signal's confidence: none for the first 300 hours is "no edge", then a full one
    first = int(btc_2018.ts[0])
    clock = Clock()
    loop = make_loop(
        lambda ts: 1.0, confidence_at=lambda ts: 0.0 if ts < first + 300 * HOUR else 1.0, fixed=None, clock=clock
    )
    loop.start()
    candles = iter(ReplayFeed([btc_2018], interval_ms=HOUR))
    with caplog.at_level("INFO", logger="slsbot_runtime"):
        for _ in range(300):
            loop.process(next(candles))
            clock.now += 1.0  # a second of wall time per candle
        refused = loop._snapshot()
        assert refused.phase == "running" and refused.ready
        assert refused.idle_reason == "EntriesRefused"
        first_close = first + 10 * HOUR  # the 10th candle is the first warm one; its close decided the entry
        assert refused.idle_message.startswith(f"entries refused on BTC/USDT since {utc_minute(first_close)} (291 ")
        assert "no edge: 0.25 x full Kelly 0.00% (confidence 0.00)" in refused.idle_message
        assert loop.orders.orders == {}
        loop.process(next(candles))
        taken = loop._snapshot()
    assert taken.idle_reason is None and taken.idle_message is None
    assert len(loop.orders.orders) == 1
    lines = [r.getMessage() for r in caplog.records if "entries" in r.getMessage() or "entry" in r.getMessage()]
    assert all(line.startswith("default/t: ") for line in lines)
    assert lines[0].startswith("default/t: entry refused on BTC/USDT (no_edge): no edge: 0.25 x full Kelly 0.00%")
    summaries = [line for line in lines if " more entries refused on BTC/USDT (no_edge)" in line]
    # 290 more refusals over 290 s of wall time: at most one summary a minute, and the rest said when entries resume
    assert 4 <= len(summaries) <= 5 and len(lines) == 1 + len(summaries) + 1
    assert sum(int(line.split()[1]) for line in summaries) == 290
    assert lines[-1] == f"default/t: entries on BTC/USDT taken again after 291 refused since {utc_minute(first_close)}"


def test_refusals_not_counted_in_a_line_yet_are_when_the_loop_stops(btc_2018, caplog) -> None:
    clock = Clock()  # wall time stands still: after the first line, every refusal waits for its minute
    loop = make_loop(lambda ts: 1.0, confidence_at=lambda ts: 0.0, fixed=None, clock=clock)
    with caplog.at_level("INFO", logger="slsbot_runtime"):
        loop.run(list(ReplayFeed([btc_2018], interval_ms=HOUR))[:100])
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert lines == [
        "default/t: entry refused on BTC/USDT (no_edge): no edge: 0.25 x full Kelly 0.00% (confidence 0.00) gives "
        "0.00% of equity; nothing to bet",
        "default/t: 90 more entries refused on BTC/USDT (no_edge)",
    ]


def test_warming_up_paused_halted_and_finished_say_so(btc_2018) -> None:
    candles = list(ReplayFeed([btc_2018], interval_ms=HOUR))
    loop = make_loop(every(24))
    loop.start()
    for candle in candles[:3]:
        loop.process(candle)
    warming = loop._snapshot()
    assert warming.idle_reason == "WarmingUp" and "BTC/USDT 3 of 10" in warming.idle_message
    for candle in candles[3:20]:
        loop.process(candle)
    assert loop._snapshot().idle_reason is None  # trading: it takes what its signal asks
    loop.pause()
    assert (loop.status.idle_reason, loop.status.idle_message) == (
        "Paused",
        "paused: no new position is opened; exits, cancels and fills go on",
    )
    loop.resume()
    for candle in candles[20:]:
        loop.process(candle)
    loop.finish()
    assert loop.status.idle_reason == "Finished"
    assert loop.status.idle_message == "the feed ended after 800 candles: nothing more to trade"

    halted = make_loop(every(24), policy={**PERMISSIVE, "killSwitch": True})
    halted.start()
    for candle in candles[:50]:
        halted.process(candle)
    status = halted._snapshot()
    assert status.phase == "halted" and status.idle_reason == "Halted"
    assert status.idle_message.startswith("the kill switch is on (riskPolicy killSwitch)")


def test_a_restarted_loop_still_says_its_entries_are_refused(btc_2018, tmp_path: Path) -> None:
    first = int(btc_2018.ts[0])
    candles = list(ReplayFeed([btc_2018], interval_ms=HOUR))

    def confidence(ts: int) -> float:  # a full Kelly bet for 100 hours, then none
        return 1.0 if first + 100 * HOUR <= ts < first + 200 * HOUR else 0.0

    loop = make_loop(every(48), confidence_at=confidence, fixed=None, store=StateStore.open(tmp_path / "state.db"))
    loop.start()
    for candle in candles[:400]:
        loop.process(candle)
    loop.commit()
    before = loop._snapshot()
    assert before.idle_reason == "EntriesRefused" and loop.orders.orders  # it traded, then was refused
    loop.store.close()

    again = make_loop(every(48), confidence_at=confidence, fixed=None, store=StateStore.open(tmp_path / "state.db"))
    again.start()
    assert again.refusals.idle_message() == before.idle_message  # taken back from the state file
    whole = make_loop(every(48), confidence_at=confidence, fixed=None)
    whole.start()
    for candle in candles[:450]:
        again.process(candle)  # the first 400 are replayed: nothing is refused twice
        whole.process(candle)
    assert again._snapshot().idle_message == whole._snapshot().idle_message != before.idle_message
    assert again._snapshot().idle_reason == "EntriesRefused"
