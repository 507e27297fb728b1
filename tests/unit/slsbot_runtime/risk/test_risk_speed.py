"""The risk manager sits in the live decision path (p99 budget 5 ms for ensemble plus risk): keep it cheap."""

from __future__ import annotations

import time

from slsbot.api import RiskPolicySpec
from slsbot_runtime.domain.types import PortfolioSnapshot, Position, Side
from slsbot_runtime.risk.base import TradeProposal
from slsbot_runtime.risk.manager import RiskManager

HOUR = 3_600_000
SYMBOLS = [f"C{i}/USDT" for i in range(8)]
BUDGET_SECONDS = 0.0005  # per call, on average; measured about 12 us per evaluate, 100 us per 8-symbol candle


def test_on_candle_and_evaluate_stay_well_under_half_a_millisecond() -> None:
    risk = RiskManager(RiskPolicySpec(), None, True)
    positions = {symbol: Position(symbol, 1.0, 100.0) for symbol in SYMBOLS[:4]}
    candles, decisions = 0.0, 0.0
    rounds = 600  # past the 24 + 240 candles the volatility windows need, so the full path is timed
    for i in range(rounds):
        closes = {symbol: 100.0 + ((i * (k + 3)) % 17) * 0.1 for k, symbol in enumerate(SYMBOLS)}
        started = time.perf_counter()
        risk.on_candle(i * HOUR, 10_000.0, closes)
        candles += time.perf_counter() - started
        portfolio = PortfolioSnapshot(ts=i * HOUR, cash=6_000.0, equity=10_000.0, positions=positions, prices=closes)
        proposal = TradeProposal(SYMBOLS[i % 8], Side.BUY, closes[SYMBOLS[i % 8]], 0.5, True)
        started = time.perf_counter()
        risk.evaluate(proposal, portfolio)
        decisions += time.perf_counter() - started
    assert len(risk.snapshot()["volatility"][SYMBOLS[0]]["history"]) == 240
    assert candles / rounds < BUDGET_SECONDS
    assert decisions / rounds < BUDGET_SECONDS
