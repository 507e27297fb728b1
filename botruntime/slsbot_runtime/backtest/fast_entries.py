"""How fast mode sizes an entry: the loop's ``_enter``, with the inputs the step mode gives the risk manager.

* The signal track record (``engine.track_record``) changes only on the candles ``vectorized.record_changes``
  finds; before an entry at candle ``i`` it is fed those before ``i`` (the loop follows the signal after trading),
  so its win rate and payoff are the step mode's.
* The volatility halt's verdict comes from ``volatility_mask`` (a halted symbol's entry is refused, as the risk
  manager's gate refuses it); the other gates and the sizing are ``RiskManager.evaluate`` itself, fed by
  ``risk_feed``.
* The ensemble's confidence sizes an entry only while the record is too short (``sizing.method: risk``). The
  vectorized confidence agrees with the live one to rounding, not bit for bit, so the entry is sized at
  ``confidence - CONFIDENCE_SLACK`` and at ``+ CONFIDENCE_SLACK``: the size only grows with the confidence, so when
  both give the same answer (the usual case: sizes are whole steps of the market's amount) it is the step mode's.
  When they differ, the symbol's live decider (``app.build_deciders``, as the loop builds it) is fed the symbol's
  candles up to this one and its own confidence sizes the entry.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from slsbot.api import RuntimeConfig
from slsbot.api.strategy import SizingMethod
from slsbot_runtime.app import build_deciders
from slsbot_runtime.backtest.eligibility import FastModeUnavailable
from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.timeframes import utc_minute
from slsbot_runtime.domain.types import PortfolioSnapshot, Side
from slsbot_runtime.engine.signals import Decider
from slsbot_runtime.engine.track_record import SignalTrackRecord
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.risk.base import RiskAction, RiskDecision, RiskRule, TradeProposal
from slsbot_runtime.risk.manager import RiskManager

#: How far the vectorized confidence may be from the live one (they agree to ~1e-15; see the module doc).
CONFIDENCE_SLACK = 1e-9


@dataclass(slots=True)
class SymbolEntries:
    """One symbol's entry inputs: its targets, closes and confidences after each candle, the candles where its
    track record changes, and its volatility halt; and what one run has done with them so far (the record, a
    standing "no edge" refusal, the live decider): build one per run."""

    symbol: str
    history: OHLCV
    targets: array  # ``vectorized.targets`` (``NO_OPINION`` for none)
    closes: array
    directions: array
    confidences: array
    changes: array  # candles where the track record changes (``vectorized.record_changes``)
    halted: bytes | None  # 1 where the volatility halt refuses entries; None without the halt
    record: SignalTrackRecord
    fed: int = 0  # how many of ``changes`` the record has seen
    answer: tuple[float | None, float | None] = (None, None)  # the record's win rate and payoff after ``fed``
    refused_until: int = -1  # the record says "no edge" up to this candle: entries are refused there, whatever
    live: Decider | None = field(default=None)
    live_next: int = 0  # the next candle the live decider is to see


class EntrySizer:
    """``size(...)``: the quantity the step loop's ``_enter`` would order, 0 when the risk manager refuses."""

    def __init__(self, config: RuntimeConfig, risk: RiskManager) -> None:
        self.config = config
        self.risk = risk
        self.fixed = config.sizing.quantity if config.sizing.method == SizingMethod.FIXED_QUANTITY else None
        self.live_candles = 0  # candles the live deciders were fed (to size entries the confidence decides)
        self._live: dict[str, Decider] | None = None

    def size(
        self,
        entries: SymbolEntries,
        i: int,
        side: Side,
        close: float,
        rules: MarketRules,
        portfolio: PortfolioSnapshot,
    ) -> float:
        """Size an entry on ``side`` at candle ``i`` of ``entries``' symbol (its ``close``), for ``portfolio``."""
        if entries.halted is not None and entries.halted[i]:
            return 0.0  # the volatility halt's gate: refused whatever else
        win_rate, payoff = self._record(entries, i)
        confidence = _unit(entries.confidences[i])

        def evaluate(confidence: float) -> RiskDecision:
            proposal = TradeProposal(
                entries.symbol,
                side,
                close,
                confidence,
                is_entry=True,
                win_rate=win_rate,
                payoff_ratio=payoff,
                requested_quantity=self.fixed,
                rules=rules,
            )
            return self.risk.evaluate(proposal, portfolio)

        if self.fixed is not None or win_rate is not None:  # the confidence takes no part in the size
            verdict = evaluate(confidence)
            if win_rate is not None and any(event.rule == RiskRule.NO_EDGE for event in verdict.events):
                entries.refused_until = self._record_holds_until(entries, i)
        else:
            low = evaluate(max(confidence - CONFIDENCE_SLACK, 0.0))
            high = evaluate(min(confidence + CONFIDENCE_SLACK, 1.0))
            same = low.action == high.action and low.quantity == high.quantity
            verdict = low if same else evaluate(self._live_confidence(entries, i))
        return 0.0 if verdict.action == RiskAction.REJECTED else verdict.quantity

    def _record(self, entries: SymbolEntries, i: int) -> tuple[float | None, float | None]:
        """The track record as the loop's is when it sizes an entry at candle ``i``: it has followed the signal
        up to the candle before (``_follow_signal`` comes after ``_trade``)."""
        changes, record, at = entries.changes, entries.record, entries.fed
        if at < len(changes) and changes[at] < i:
            while at < len(changes) and changes[at] < i:
                j = changes[at]
                record.observe(entries.targets[j], entries.closes[j])
                at += 1
            entries.fed = at
            entries.answer = record.win_rate_and_payoff()
        return entries.answer

    @staticmethod
    def _record_holds_until(entries: SymbolEntries, i: int) -> int:
        """The last candle whose entry sees the record that candle ``i``'s sees: the record's next change, or the
        end. Up to there a "no edge" refusal stands (it depends on the record alone: gates refuse first, and
        nothing else sizes), so the loop need not ask again."""
        changes, at = entries.changes, entries.fed
        return changes[at] if at < len(changes) else len(entries.targets)

    def _live_confidence(self, entries: SymbolEntries, i: int) -> float:
        """The live decider's confidence after candle ``i``, fed every candle of the symbol up to it."""
        when = utc_minute(int(entries.history.ts[i]))
        if self.config.ml.signal_models:
            raise FastModeUnavailable(
                [
                    f"sizing.method: the entry on {entries.symbol} at {when} is sized by "
                    "the ensemble's confidence to the last bit, and with ml.models voting fast mode cannot replay the "
                    "live decision; run --mode step, or set sizing.method fixedQuantity"
                ]
            )
        if entries.live is None:
            if self._live is None:
                self._live = build_deciders(self.config)
            entries.live = self._live[entries.symbol]
        decider = entries.live
        decision = None
        for j in range(entries.live_next, i + 1):
            decision = decider.decide(entries.history.candle(j))
        self.live_candles += i + 1 - entries.live_next
        entries.live_next = i + 1
        assert decision is not None  # entries come in time order, each after the last one asked
        if _sign(decision.direction) != _sign(entries.directions[i]):
            raise FastModeUnavailable(
                [
                    f"ensemble: the vectorized decision on {entries.symbol} at {when} "
                    f"({entries.directions[i]:+.6g}) is not the live one ({decision.direction:+.6g}); a member's "
                    "signal_arrays differs from its on_candle"
                ]
            )
        return _unit(decision.confidence)


def _unit(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _sign(value: float) -> int:
    return 1 if value > 0 else (-1 if value < 0 else 0)
