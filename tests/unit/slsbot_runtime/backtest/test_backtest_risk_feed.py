"""Fast mode's risk feed against the risk manager fed every candle, as the loop feeds it: over real candles of three
symbols and an account that trades at random events, the fed manager answers every entry exactly as the reference,
holds the same state, and ``must_flatten`` changes on the same candles."""

from __future__ import annotations

import numpy as np
import pytest

from slsbot.api.riskpolicy import RiskPolicySpec
from slsbot.api.strategy import Sizing
from slsbot_runtime.backtest.risk_feed import Holding, RiskFeed, day_edges
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.domain.types import PortfolioSnapshot, Position, Side
from slsbot_runtime.exchange.market_defaults import default_market_rules
from slsbot_runtime.risk.base import TradeProposal
from slsbot_runtime.risk.manager import DAY_MS, RiskManager

H = 3_600_000
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
POLICY = RiskPolicySpec.model_validate(
    {
        "perTrade": {"minPercent": 1, "maxPercent": 20},
        "maxDrawdownPercent": 12,
        "dailyLossLimitPercent": 2,
        "circuitBreaker": {
            "levels": [
                {"action": "reduceSize", "drawdownPercent": 2, "sizeMultiplier": 0.5, "cooldown": "6h"},
                {"action": "stopEntries", "drawdownPercent": 4, "cooldown": "12h"},
                {"action": "flattenAndHalt", "drawdownPercent": 6, "cooldown": "1d"},
            ]
        },
    }
)


@pytest.fixture(scope="module")
def market(market_data_dir):
    folder = market_data_dir / "binance-spot-1h-2024"
    histories = [load_history(folder, s, "1h", interval_ms=H).slice(0, 3_000) for s in SYMBOLS]
    ts = np.concatenate([h.ts for h in histories])
    which = np.concatenate([np.full(len(h), k) for k, h in enumerate(histories)])
    order = np.lexsort((which, ts))  # time, then symbol order: the replay feed's
    positions = [np.flatnonzero(which[order] == k) for k in range(len(histories))]
    return histories, ts[order], which[order], positions


def test_the_fed_manager_answers_and_flattens_as_the_one_fed_every_candle(market):
    histories, ts, which, positions = market
    closes = [h.close for h in histories]
    rng = np.random.default_rng(2)
    events = np.sort(rng.choice(len(ts), size=700, replace=False))
    reference = RiskManager(POLICY, Sizing(), False)
    reference.set_opening_equity(100_000.0)
    fed = RiskManager(POLICY, Sizing(), False)
    feed = RiskFeed(fed, POLICY, ts, opening_equity=100_000.0)
    cash, held = 100_000.0, {}
    last = [np.nan] * len(SYMBOLS)
    seen = [0] * len(SYMBOLS)
    reference_flips, flips, compared = [], [], 0
    flatten = False
    next_event = 0
    for p in range(len(ts)):
        k = int(which[p])
        last[k] = float(closes[k][seen[k]])
        seen[k] += 1
        at_event = next_event < len(events) and events[next_event] == p
        if at_event:  # the feed looks at the candles up to this one with the holdings it had since the last event
            holdings = [_holding(s, held, positions, closes) for s in sorted(held)]
            while (flip := feed.advance(p, cash, holdings)) is not None:
                flips.append(flip)
            if feed.must_flatten:  # what the loop does then: close everything (here at once, at the last closes)
                for symbol, quantity in held.items():
                    cash += quantity * last[SYMBOLS.index(symbol)]
                held = {}
            elif rng.random() < 0.5:  # trade: buy or sell a random amount of this symbol at its close, 0.1% fee
                quantity = float(rng.choice([-1, 1]) * rng.uniform(0.1, 1.5) * 30_000 / last[k])
                cash -= quantity * last[k] + abs(quantity * last[k]) * 0.001
                held[SYMBOLS[k]] = held.get(SYMBOLS[k], 0.0) + quantity
        equity = cash
        for symbol in sorted(held):
            if held[symbol]:
                equity += held[symbol] * last[SYMBOLS.index(symbol)]
        reference.observe(int(ts[p]), equity)
        if reference.must_flatten != flatten:
            flatten = reference.must_flatten
            reference_flips.append(p)
        if at_event:
            next_event += 1
            if feed.settle(p, equity):
                flips.append(p)
            assert feed.must_flatten == reference.must_flatten, p
            assert _state(fed) == _state(reference), p
            portfolio = _portfolio(int(ts[p]), cash, equity, held, last)
            for symbol in SYMBOLS:
                proposal = _entry(symbol, last[SYMBOLS.index(symbol)])
                assert fed.evaluate(proposal, portfolio) == reference.evaluate(proposal, portfolio), p
                compared += 1
    holdings = [_holding(s, held, positions, closes) for s in sorted(held)]
    while (flip := feed.advance(len(ts), cash, holdings)) is not None:  # and on to the end
        flips.append(flip)
    assert flips == reference_flips
    assert len(reference_flips) >= 2, "the run must trip flattenAndHalt and release it"
    assert feed.feeds < len(ts) / 3, "the feed skips the candles that change nothing"
    actions = reference.action_counts()
    assert actions.get("rejected", 0) > 100 and actions.get("reduced", 0) > 30 and compared > 1_000
    rules = reference.rule_counts()
    assert {"daily_loss", "max_drawdown", "breaker_level_2", "breaker_level_3"} <= set(rules), rules


def _holding(symbol: str, held: dict[str, float], positions, closes) -> Holding:
    k = SYMBOLS.index(symbol)
    return Holding(held[symbol], positions[k].tolist(), closes[k].tolist())


def _state(risk: RiskManager) -> dict:
    snapshot = risk.snapshot()
    for moving in ("ts", "equity"):  # the clock and the last equity: the only things a skipped candle changes
        snapshot.pop(moving)
    return snapshot


def _portfolio(ts: int, cash: float, equity: float, held: dict[str, float], last: list[float]) -> PortfolioSnapshot:
    positions = {s: Position(s, q, last[SYMBOLS.index(s)], 0.0) for s, q in held.items() if abs(q) > 1e-12}
    return PortfolioSnapshot(ts, cash, equity, positions, {s: last[i] for i, s in enumerate(SYMBOLS)})


def _entry(symbol: str, price: float) -> TradeProposal:
    return TradeProposal(symbol, Side.BUY, price, 0.3, is_entry=True, rules=default_market_rules(symbol))


def test_day_edges_are_each_days_first_candle_and_the_one_before():
    ts = np.array([0, H, 2 * H, DAY_MS, DAY_MS, DAY_MS + H, 3 * DAY_MS + 5 * H])
    assert day_edges(ts).tolist() == [0, 2, 3, 5, 6]
    assert day_edges(np.array([], dtype=np.int64)).tolist() == []
