"""The risk manager: turns a RiskPolicy into decisions on proposed trades. Pure: no I/O, no clock.

The engine calls ``on_candle`` once per candle (time, equity, closes) and ``evaluate`` once per proposed trade,
after ``on_candle`` for the same candle. Time only ever comes in as candle timestamps in milliseconds, so a
replay of the same candles and proposals gives the same decisions. See docs/concepts/risk.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from math import isfinite
from typing import Any

from slsbot.api.riskpolicy import BreakerAction, RiskPolicySpec
from slsbot.api.strategy import Sizing, SizingMethod
from slsbot_runtime.domain.equity import drawdown_percent
from slsbot_runtime.domain.errors import DataError
from slsbot_runtime.domain.timeframes import utc_minute
from slsbot_runtime.domain.types import PortfolioSnapshot, Side
from slsbot_runtime.risk.anomaly import AnomalyGuard
from slsbot_runtime.risk.base import (
    JournalEntry,
    RiskAction,
    RiskDecision,
    RiskEvent,
    RiskRule,
    RiskState,
    TradeProposal,
    breaker_rule,
)
from slsbot_runtime.risk.breaker import BreakerLevel, CircuitBreaker, breaker_levels
from slsbot_runtime.risk.headroom import HeadroomLimits
from slsbot_runtime.risk.journal import DEFAULT_JOURNAL_SIZE, DecisionJournal
from slsbot_runtime.risk.sizing import BreakerReduction, SizingLimits, exit_on_market, size_entry
from slsbot_runtime.risk.snapshot import SNAPSHOT_VERSION, parse_snapshot
from slsbot_runtime.risk.snapshot_text import SORTED_JSON, json_number
from slsbot_runtime.risk.volatility import VolatilityHalt

DAY_MS = 86_400_000
# read once: Python 3.11 reads an enum member through a Python-level hook, and these come with every proposal
_APPROVED, _SELL = RiskAction.APPROVED, Side.SELL


class RiskManager:
    """Enforces one RiskPolicy for one strategy (or one account: the engine decides whose equity it sees).

    ``allocation_percent`` is the share of the equity the strategy trades with (the Strategy's allocationPercent,
    or a controller's override): entries are sized and capped against ``equity x allocation / 100``; at 0 no entry
    is opened (the loop then closes what is held, ``closes_positions``). Loss limits and the breaker still watch
    the whole equity. Change it with ``set_allocation``, from the thread that calls ``evaluate``."""

    def __init__(
        self,
        policy: RiskPolicySpec,
        sizing: Sizing | None = None,
        long_only: bool = True,
        *,
        journal_size: int = DEFAULT_JOURNAL_SIZE,
        allocation_percent: float = 100.0,
    ) -> None:
        sizing = sizing or Sizing()
        self.policy = policy
        # the limits read on every candle and every entry, as plain attributes: a pydantic model's attribute read goes
        # through its __getattr__ hook (tens of ns). The policy is taken as it is now; a new policy is a new manager.
        self._kill_switch = policy.kill_switch
        self._daily_loss_limit = policy.daily_loss_limit_percent
        self._max_drawdown = policy.max_drawdown_percent
        self.long_only = long_only
        self.allocation_percent = 100.0
        #: True at an allocation of 0: nothing to trade with, so every position is closed (the normal exit path)
        #: and no entry is opened. An attribute, not a property: the loop reads it on every candle.
        self.closes_positions = False
        self.set_allocation(allocation_percent)
        self.limits = SizingLimits(
            min_percent=policy.per_trade.min_percent,
            max_percent=policy.per_trade.max_percent,
            kelly_fraction=policy.kelly_fraction,
            max_symbol_exposure_percent=policy.max_symbol_exposure_percent,
            max_total_exposure_percent=policy.max_total_exposure_percent,
            max_leverage=policy.max_leverage,
            fixed_quantity=sizing.quantity if sizing.method == SizingMethod.FIXED_QUANTITY else None,
        )
        self._breaker = CircuitBreaker(breaker_levels(policy.circuit_breaker))
        #: Breaker levels tripped or released since this manager (or its restored breaker) began: compare it with a
        #: value read before to know whether ``tripped_breaker_levels`` changed, without building anything. A plain
        #: attribute, kept equal to the breaker's count (the loop reads it on every candle).
        self.breaker_changes = self._breaker.changes
        self._volatility = VolatilityHalt.from_spec(policy.volatility_halt)
        self._anomaly = AnomalyGuard.from_spec(policy.anomaly)
        self._journal = DecisionJournal(journal_size)
        self._ts: int | None = None
        self._equity: float | None = None  # after the last candle; before the first, the opening equity if set
        self._peak: float | None = None
        self._day: int | None = None
        self._day_start: float | None = None  # the UTC day's opening equity: the equity at 00:00
        self._daily_limit_hit = False
        #: The account's or global headroom the control plane pushed (risk.headroom); None until one is (always in a
        #: backtest), and then nothing of it is looked at: not on a candle, not on an entry.
        self._headroom: HeadroomLimits | None = None

    def set_headroom(self, headroom: HeadroomLimits | None) -> None:
        """Enforce ``headroom`` on new entries from now on (None: none). Its kill switch acts as the policy's: every
        position closed, no entry opened, until a headroom without it replaces it or it expires. The kill switch is
        read here, not per candle: call again (with the same limits) once they expire."""
        self._headroom = headroom
        self._kill_switch = self.policy.kill_switch or (headroom is not None and headroom.kill_switch)

    @property
    def kill_switch(self) -> bool:
        """True while a kill switch is on: the policy's, or the one of the headroom pushed down."""
        return self._kill_switch

    @property
    def max_drawdown_percent(self) -> float:
        """The policy's maxDrawdownPercent: no entry is opened at this drawdown from the peak."""
        return self._max_drawdown

    @property
    def headroom(self) -> HeadroomLimits | None:
        return self._headroom

    def set_opening_equity(self, equity: float) -> None:
        """The account's equity before the first candle (the starting cash): the first UTC day's loss is
        measured from it. Without it the first day opens at the first candle's equity, the best guess left.

        Raises ValueError once a candle has been taken in (the day's opening is known then) or for a value
        that is not a finite number.
        """
        if self._ts is not None:
            raise ValueError(
                f"set_opening_equity: a candle was already taken in at {self._ts}; the opening equity is the "
                "equity before the first candle"
            )
        if not math.isfinite(equity):
            raise ValueError(f"set_opening_equity: opening equity {equity!r} must be a finite number")
        self._equity = float(equity)

    def set_allocation(self, percent: float) -> None:
        """Trade with ``percent`` (0..100) of the equity from the next entry on. Raises ValueError, with nothing
        changed, for a value outside 0..100 or not a number."""
        if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0.0 <= percent <= 100.0:
            raise ValueError(f"allocation_percent: {percent!r} must be a number from 0 to 100")
        self.allocation_percent = float(percent)
        self.closes_positions = self.allocation_percent <= 0.0

    def allocated_capital(self, equity: float) -> float:
        """What entries are sized against: ``equity x allocation / 100``."""
        return equity * (self.allocation_percent / 100.0)

    # --- once per candle -------------------------------------------------------------------------------------

    def on_candle(
        self,
        ts: int,
        equity: float,
        closes: Mapping[str, float] | None = None,
        anomaly: Mapping[str, float | None] | None = None,
    ) -> RiskState:
        """Take in the account after candle ``ts`` (open time, ms UTC): equity, each symbol's close and, with an
        anomaly detector, each symbol's anomaly score for the candle (None while the detector warms up).

        Updates the peak and drawdown, the UTC day and its opening equity (the equity after the last candle
        before it: a loss in the day's first candle counts), the daily-loss latch, the breaker levels, the
        per-symbol volatility halt and the anomaly rule. Candles must come in time order; the same ``ts`` may be
        given again (say once per symbol) and a close already seen for a symbol is not counted twice.
        Raises DataError, with nothing changed, on a timestamp going back or a non-finite or non-positive value.
        """
        self.observe(ts, equity, closes, anomaly)
        return self.state()

    def observe(
        self,
        ts: int,
        equity: float,
        closes: Mapping[str, float] | None = None,
        anomaly: Mapping[str, float | None] | None = None,
    ) -> bool:
        """``on_candle`` without building the ``RiskState``, answering ``must_flatten`` after the candle: for a caller
        that needs that every candle and the whole state only now and then (the trading loop)."""
        # every candle of the loop comes through here: the checks and the daily loss without a call each
        if type(ts) is not int and (isinstance(ts, bool) or not isinstance(ts, int)):
            raise DataError(f"on_candle ts: {ts!r} is not an integer; pass the candle open time in ms UTC")
        if self._ts is not None and ts < self._ts:
            raise DataError(f"on_candle ts: {ts} is before the last candle {self._ts}; feed candles in time order")
        if not isfinite(equity):
            raise DataError(f"on_candle equity: {equity!r} is not a finite number; pass the account equity")
        if closes:
            for close in closes.values():
                if not (isfinite(close) and close > 0):
                    symbol = next(s for s, c in closes.items() if c is close)
                    raise DataError(f"on_candle closes[{symbol!r}]: {close!r} is not a positive price")
        day = ts // DAY_MS
        if day != self._day:
            opening = self._equity if self._equity is not None else equity  # the equity at 00:00
            self._day, self._day_start, self._daily_limit_hit = day, opening, False
        self._ts, self._equity = ts, equity
        peak = self._peak
        if peak is None or equity > peak:  # max(peak, equity)
            self._peak = equity
        if not self._daily_limit_hit:
            start = self._day_start  # _loss_percent(start, equity) >= the limit, written out (no max() call)
            down = start - equity if start is not None and start > 0 else 0.0
            loss = down / start * 100.0 if down > 0.0 else 0.0  # (down > 0 only with a positive start)
            if loss >= self._daily_loss_limit:
                self._daily_limit_hit = True
        self._breaker.update(ts, equity)
        self.breaker_changes = self._breaker.changes
        if closes and self._volatility.enabled:  # a call less on every candle when it is off
            self._volatility.observe(ts, closes)
        if anomaly:
            self._anomaly.observe(ts, anomaly)
        return (  # must_flatten, written out (a call less per candle)
            self._kill_switch
            or (self._breaker.tripped and self._breaker.must_flatten())
            or (self._anomaly.halted_until is not None and self._anomaly.must_flatten(ts))
        )

    @property
    def day_start_equity(self) -> float | None:
        """The current UTC day's opening equity (None before the first candle)."""
        return self._day_start

    @property
    def last_ts(self) -> int | None:
        """Open time of the last candle taken in (None before the first)."""
        return self._ts

    def state(self) -> RiskState:
        """What the manager knows as of the last candle; the engine flattens when ``must_flatten`` is set."""
        equity = self._equity if self._equity is not None else 0.0
        breaker = self._breaker
        level = breaker.current_level()
        drawdown = self._drawdown(equity)
        entries_allowed = not (
            self._kill_switch
            or breaker.entry_stopping_level() is not None
            or drawdown >= self._max_drawdown
            or self._daily_limit_hit
            or self._anomaly.halted_at(self._ts if self._ts is not None else 0)
        )
        ts = self._ts if self._ts is not None else 0
        return RiskState(
            ts=ts,
            equity=equity,
            peak_equity=self._peak if self._peak is not None else 0.0,
            drawdown_percent=drawdown,
            day_start_equity=self._day_start if self._day_start is not None else 0.0,
            daily_loss_percent=self._daily_loss(equity),
            breaker_level=0 if level is None else level.number,
            breaker_action=None if level is None else level.action,
            size_multiplier=breaker.size_multiplier(),
            must_flatten=self.must_flatten,
            entries_allowed=entries_allowed,
            halted_symbols=self._volatility.halted_symbols(ts),
            anomaly_halted_until=self._anomaly.halted_until if self._anomaly.halted_at(ts) else None,
        )

    @property
    def must_flatten(self) -> bool:
        """True while every position must be closed: the kill switch, a tripped flattenAndHalt level, or an anomaly
        halt with action flattenAndHalt."""
        return (
            self._kill_switch
            or (self._breaker.tripped and self._breaker.must_flatten())  # no call while none is tripped
            or (self._anomaly.halted_until is not None and self._anomaly.must_flatten(self._ts or 0))
        )

    def tripped_breaker_levels(self) -> dict[int, str]:
        """Each tripped breaker level's number -> what it is and until when it holds, for the log."""
        breaker = self._breaker
        described = {}
        for number, trip in sorted(breaker.tripped.items()):
            level = breaker.levels[number - 1]
            described[number] = (
                f"level {number} ({level.action} at {level.drawdown_percent:.2f}% drawdown, tripped at "
                f"{utc_minute(trip.tripped_ts)}, held at least until {utc_minute(trip.until_ts)})"
            )
        return described

    def halt_message(self) -> str | None:
        """Why every position must be closed now (the kill switch, a flattenAndHalt level); None when not."""
        if self._kill_switch:
            return f"{self._kill_switch_source()}: every position is closed, no entry is opened"
        level = self._breaker.flatten_level()
        if level is None:
            if self._anomaly.must_flatten(self._ts or 0):
                return f"risk halt: {self._anomaly.halt_message(self._ts or 0)}; every position is closed"
            return None
        equity = self._equity if self._equity is not None else 0.0
        return f"risk halt: {self._breaker_message(level, equity)}; every position is closed"

    @property
    def breaker_level(self) -> int:
        """The most severe tripped breaker level, 1..3 in increasing drawdown order; 0 when none is."""
        level = self._breaker.current_level()
        return 0 if level is None else level.number

    # --- once per proposed trade -----------------------------------------------------------------------------

    def evaluate(self, proposal: TradeProposal, portfolio: PortfolioSnapshot) -> RiskDecision:
        """Approve, reduce or reject one proposed trade; the decision is journaled and counted.

        Exits and reductions (``is_entry=False``) are never blocked by a risk rule: they get the requested
        quantity, or the whole position when none is given. Entries go through the checks in the order of
        docs/concepts/risk.md and are then sized. The manager's state is not changed, only the journal.
        """
        if proposal.is_entry:
            decision = self._evaluate_entry(proposal, portfolio)
        else:
            decision = self._evaluate_exit(proposal, portfolio)
        self._journal.record(portfolio.ts, proposal, decision)
        return decision

    def _evaluate_exit(self, proposal: TradeProposal, portfolio: PortfolioSnapshot) -> RiskDecision:
        requested = proposal.requested_quantity
        if requested is not None and not (math.isfinite(requested) and requested > 0):
            message = f"requested_quantity: {requested!r} must be a positive number, or None to close all"
            return _rejected(RiskEvent(RiskRule.INVALID_PROPOSAL, message))
        if requested is None:
            held = portfolio.positions.get(proposal.symbol)
            requested = abs(held.quantity) if held is not None else 0.0
        if proposal.rules is None or requested <= 0:
            return RiskDecision(_APPROVED, requested)
        # no risk rule holds an exit, but the market's step and minimums are no risk rule
        quantity, problem = exit_on_market(requested, proposal.price, proposal.rules)
        if problem is not None:
            message = f"exit of {requested:.8g} {proposal.symbol} cannot be sent, the position stays: {problem}"
            return _rejected(RiskEvent(RiskRule.MARKET_MINIMUM, message))
        return RiskDecision(_APPROVED, quantity)

    def _evaluate_entry(self, proposal: TradeProposal, portfolio: PortfolioSnapshot) -> RiskDecision:
        problem = _invalid_entry(proposal, portfolio)
        if problem is not None:
            return _rejected(RiskEvent(RiskRule.INVALID_PROPOSAL, problem))
        events = self._entry_gates(proposal, portfolio)
        if events:
            return RiskDecision(RiskAction.REJECTED, 0.0, tuple(events))
        capital = None if self.allocation_percent >= 100.0 else self.allocated_capital(portfolio.equity)
        sized = size_entry(proposal, portfolio, self.limits, self._breaker_reduction(), capital)
        if sized.rejected:
            return RiskDecision(RiskAction.REJECTED, 0.0, sized.events)
        headroom = self._headroom
        if headroom is not None:
            cut = headroom.cut(proposal.symbol, proposal.price, sized.quantity, proposal.rules)
            events = sized.events + cut.events
            if cut.refused:
                return RiskDecision(RiskAction.REJECTED, 0.0, events)
            headroom.use(proposal.symbol, cut.quantity * proposal.price)
            action = RiskAction.REDUCED if sized.reduced or cut.events else _APPROVED
            return RiskDecision(action, cut.quantity, events)
        action = RiskAction.REDUCED if sized.reduced else _APPROVED
        return RiskDecision(action, sized.quantity, sized.events)

    def _kill_switch_source(self) -> str:
        headroom = self._headroom
        if self.policy.kill_switch or headroom is None:
            return "the kill switch is on (riskPolicy killSwitch)"
        pushed = headroom.headroom
        reason = pushed.reason or "no reason"
        return f"the kill switch of the {pushed.scope} RiskPolicy {pushed.policy!r} is on ({reason})"

    def _entry_gates(self, proposal: TradeProposal, portfolio: PortfolioSnapshot) -> list[RiskEvent]:
        """Every rule that forbids this entry right now, in the documented order."""
        events: list[RiskEvent] = []
        equity = portfolio.equity
        if self.allocation_percent <= 0.0:
            message = "allocation is 0% of the account's capital: no new entries, open positions are closed"
            events.append(RiskEvent(RiskRule.ALLOCATION, message))
        if self._kill_switch:
            message = f"{self._kill_switch_source()}: no new entries, every position is to be closed"
            events.append(RiskEvent(RiskRule.KILL_SWITCH, message))
        if self._headroom is not None:
            events.extend(self._headroom.gates())
        stopping = self._breaker.entry_stopping_level()
        if stopping is not None:
            events.append(RiskEvent(breaker_rule(stopping.number), self._breaker_message(stopping, equity)))
        drawdown = self._drawdown(equity)
        if drawdown >= self._max_drawdown:
            message = (
                f"drawdown {drawdown:.2f}% from the peak {self._peak_with(equity):.2f} reached the "
                f"{self._max_drawdown:.2f}% maximum; entries resume when equity recovers"
            )
            events.append(RiskEvent(RiskRule.MAX_DRAWDOWN, message))
        day_start = self._day_start_at(portfolio.ts)
        if day_start is not None and self._daily_limit_reached(portfolio.ts, day_start, equity):
            message = (
                f"the {self._daily_loss_limit:.2f}% daily loss limit was reached today (day start "
                f"{day_start:.2f}, equity now {equity:.2f}, {_loss_percent(day_start, equity):.2f}% down); "
                "entries resume at 00:00 UTC"
            )
            events.append(RiskEvent(RiskRule.DAILY_LOSS, message))
        if self.long_only and proposal.side is _SELL:
            message = f"short entry on {proposal.symbol} refused: the strategy is long-only"
            events.append(RiskEvent(RiskRule.LONG_ONLY, message))
        halted_until = self._volatility.halted_until(proposal.symbol, portfolio.ts)
        if halted_until is not None:
            zscore = self._volatility.zscore(proposal.symbol) or 0.0
            message = (
                f"{proposal.symbol} volatility z-score {zscore:.2f} (threshold "
                f"{self._volatility.threshold:.2f}): entries halted until {utc_minute(halted_until)}"
            )
            events.append(RiskEvent(RiskRule.VOLATILITY_HALT, message))
        anomaly = self._anomaly
        if anomaly.scores:
            veto = anomaly.veto(proposal.symbol)
            if veto is not None:
                events.append(RiskEvent(RiskRule.ANOMALY, veto))
            halt = anomaly.halt_message(portfolio.ts)
            if halt is not None:
                events.append(RiskEvent(RiskRule.ANOMALY_HALT, halt))
        return events

    def _breaker_message(self, level: BreakerLevel, equity: float) -> str:
        trip = self._breaker.tripped[level.number]
        return (
            f"breaker level {level.number} ({level.action} at {level.drawdown_percent:.2f}% drawdown) tripped at "
            f"{utc_minute(trip.tripped_ts)}; drawdown now {self._breaker.drawdown_of(equity):.2f}%; no entries until "
            f"{utc_minute(trip.until_ts)} and the drawdown is back below {level.drawdown_percent:.2f}%"
        )

    def _breaker_reduction(self) -> BreakerReduction | None:
        level = self._breaker.reducing_level()
        if level is None:
            return None
        description = (
            f"breaker level {level.number} ({BreakerAction.REDUCE_SIZE} at {level.drawdown_percent:.2f}% drawdown)"
        )
        return BreakerReduction(breaker_rule(level.number), description, level.size_multiplier)

    # --- the anomaly rule ------------------------------------------------------------------------------------

    def anomaly_score(self, symbol: str) -> float | None:
        """The latest anomaly score taken in for ``symbol`` (None without one)."""
        return self._anomaly.score(symbol)

    def anomaly_scores(self) -> dict[str, float | None]:
        """Each symbol's latest anomaly score, for the status."""
        return {symbol: score for symbol, (_, score) in sorted(self._anomaly.scores.items())}

    @property
    def anomaly_halts(self) -> int:
        """Anomaly halts started since this manager (or its restored guard) began."""
        return self._anomaly.changes

    # --- equity arithmetic -----------------------------------------------------------------------------------

    def _peak_with(self, equity: float) -> float:
        peak = self._peak
        return equity if peak is None or equity > peak else peak  # max(peak, equity), without the builtin's call

    def _drawdown(self, equity: float) -> float:
        return drawdown_percent(self._peak_with(equity), equity)

    def _daily_loss(self, equity: float) -> float:
        return _loss_percent(self._day_start, equity)

    def _day_start_at(self, ts: int) -> float | None:
        """The opening equity of the UTC day of ``ts``: the current day's, or, for a later day than the last
        candle's, the equity after that candle (nothing has moved it since). None before any candle."""
        if self._day is None or ts // DAY_MS < self._day:
            return None
        return self._day_start if ts // DAY_MS == self._day else self._equity

    def _daily_limit_reached(self, ts: int, day_start: float, equity: float) -> bool:
        """Latched since a candle today crossed the limit, or crossed now by ``equity``."""
        latched = self._daily_limit_hit and ts // DAY_MS == self._day
        return latched or _loss_percent(day_start, equity) >= self._daily_loss_limit

    def reset_peak(self, equity: float) -> None:
        """Operator action: accept the losses so far and measure drawdown from ``equity`` again.

        The way back after the hard max-drawdown limit, which never releases by itself on a flat book.
        Tripped breaker levels keep their cooldowns and release at the next candle once it has passed.
        """
        if not math.isfinite(equity) or equity <= 0:
            raise ValueError(f"reset_peak equity: {equity!r} must be a positive number")
        self._peak = equity
        self._breaker.peak = equity

    # --- journal and counters --------------------------------------------------------------------------------

    def journal(self, limit: int | None = None) -> list[JournalEntry]:
        """The most recent decisions, oldest first (bounded by ``journal_size``)."""
        return self._journal.entries(limit)

    def rule_counts(self) -> dict[str, int]:
        """Events per rule since start, for metrics (``slsbot_risk_events_total{rule=...}``)."""
        return self._journal.rule_counts()

    def action_counts(self) -> dict[str, int]:
        """Decisions per action (approved, reduced, rejected) since start, for metrics."""
        return self._journal.action_counts()

    # --- persistence -----------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The state that shapes future decisions, as a plain JSON-able dict (see ``restore``): what
        ``RiskSnapshot`` dumps to JSON, built directly since the loop writes it at every commit."""
        return {**self._snapshot_head(), "volatility": self._volatility.snapshot(), "anomaly": self._anomaly.snapshot()}

    def snapshot_json(self) -> str:
        """``json.dumps(self.snapshot(), sort_keys=True)``, written out: the text the trading loop stores at every
        commit. The volatility windows' text is kept as their values come in (a test compares the two)."""
        breaker = self._breaker
        if breaker.tripped:
            breaker_text = SORTED_JSON.encode(breaker.snapshot())
        else:
            breaker_text = f'{{"peak": {json_number(_float(breaker.peak))}, "tripped": []}}'
        anomaly = self._anomaly
        if anomaly.scores or anomaly.halted_until is not None:
            anomaly_text = SORTED_JSON.encode(anomaly.snapshot())
        else:
            anomaly_text = '{"halted_until": null, "symbols": {}, "tripped_symbol": null, "tripped_ts": null}'
        return (
            f'{{"anomaly": {anomaly_text}, "breaker": {breaker_text}, '
            f'"daily_limit_hit": {"true" if self._daily_limit_hit else "false"}, '
            f'"day": {json_number(self._day)}, "day_start_equity": {json_number(_float(self._day_start))}, '
            f'"equity": {json_number(_float(self._equity))}, "peak_equity": {json_number(_float(self._peak))}, '
            f'"ts": {json_number(self._ts)}, "version": {SNAPSHOT_VERSION}, '
            f'"volatility": {self._volatility.snapshot_text()}}}'
        )

    def _snapshot_head(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "ts": self._ts,
            "equity": _float(self._equity),
            "peak_equity": _float(self._peak),
            "day": self._day,
            "day_start_equity": _float(self._day_start),
            "daily_limit_hit": self._daily_limit_hit,
            "breaker": self._breaker.snapshot(),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Put back a ``snapshot()``: the next decisions are the ones the snapshotted manager would make.

        Raises StateError naming the bad field, with the manager unchanged. Not restoring is also safe:
        replaying the candles from the start (or from ``HISTORY_WINDOWS * window`` candles back, for the
        volatility windows, and from the equity peak, for drawdown) rebuilds the same state.
        """
        snapshot = parse_snapshot(dict(data) if isinstance(data, Mapping) else data)
        breaker = self._breaker.restored(snapshot.breaker)
        volatility = self._volatility.restored(snapshot.volatility)
        anomaly = self._anomaly.restored(snapshot.anomaly)
        self._ts, self._equity, self._peak = snapshot.ts, snapshot.equity, snapshot.peak_equity
        self._day, self._day_start = snapshot.day, snapshot.day_start_equity
        self._daily_limit_hit = snapshot.daily_limit_hit
        self._breaker, self._volatility, self._anomaly = breaker, volatility, anomaly
        self.breaker_changes = breaker.changes


def _loss_percent(start: float | None, equity: float) -> float:
    """How far ``equity`` is below ``start``, in percent of it; 0 above it or without a positive start."""
    if start is None or start <= 0:
        return 0.0
    down = start - equity
    return (0.0 if down < 0.0 else down) / start * 100.0  # max(down, 0.0), without the builtin's call


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _rejected(event: RiskEvent) -> RiskDecision:
    return RiskDecision(RiskAction.REJECTED, 0.0, (event,))


def _invalid_entry(proposal: TradeProposal, portfolio: PortfolioSnapshot) -> str | None:
    """What is wrong with an entry proposal, naming the field and the fix; None when it is well formed."""
    if not (math.isfinite(proposal.price) and proposal.price > 0):
        return f"price: {proposal.price!r} must be a positive number, the price the entry is sized at"
    if not (0.0 <= proposal.confidence <= 1.0):
        return f"confidence: {proposal.confidence!r} must be between 0 and 1"
    if proposal.win_rate is not None and not (0.0 <= proposal.win_rate <= 1.0):
        return f"win_rate: {proposal.win_rate!r} must be between 0 and 1, or None to size from confidence"
    if proposal.payoff_ratio is not None and not (math.isfinite(proposal.payoff_ratio) and proposal.payoff_ratio > 0):
        return f"payoff_ratio: {proposal.payoff_ratio!r} must be a positive number, or None"
    requested = proposal.requested_quantity
    if requested is not None and not (math.isfinite(requested) and requested > 0):
        return f"requested_quantity: {requested!r} must be a positive number, or None"
    if not (math.isfinite(portfolio.equity) and portfolio.equity > 0):
        return f"portfolio.equity: {portfolio.equity!r} must be positive to size an entry"
    return None
