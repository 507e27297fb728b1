"""Fast mode: vectorized decisions, then a loop over trade events only, with the step mode's own pieces.

1. ``vectorized``: every symbol's decisions, targets and warmup for the whole window at once, and for each
   candle the next candle at which the trading loop would act given what is held; the candles where the signal
   track record changes; ``volatility_mask``: where the volatility halt refuses entries.
2. A loop over *events* in the loop's candle order (time, then symbol order): a candle where an order rests
   on the book (the paper exchange may fill it), where ``plan_symbol`` would act, or where the risk manager's
   ``must_flatten`` changes and while it holds (every candle of a symbol with something to close). Candles in
   between are skipped: nothing the loop does there changes orders, fills or cash.
3. At each event the loop's own pieces do the work: ``PaperExchange`` fills (next open, spread and
   slippage, fees, volume participation, balances, market rules, a short's collateral and interest),
   ``Ledger`` books, ``plan_symbol`` plans, ``RiskManager.evaluate`` sizes entries and rounds exits, with the
   same client order ids and the same inputs (``fast_entries``: the track record, the halt, the confidence).
   Partial fills and latency need no special case: while an order rests, every candle of its symbol is an event.
   The exchange is told the closes it would have seen on skipped candles that matter (its own symbol's at every
   event; with shorts, every held symbol's before a fill).
4. The risk manager is fed, in order, the equity of every candle where its state can change (``risk_feed``), so
   its breaker levels, loss limits and cooldowns are the step mode's whenever they are asked.
5. The equity after every candle is rebuilt from the fills with numpy, in the ledger's own arithmetic
   (cash plus each position times its last close, in symbol order), so the curve equals the step mode's.
"""

from __future__ import annotations

import heapq
import sys
import time
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import build_deciders
from slsbot_runtime.backtest.eligibility import FastModeUnavailable, static_blockers
from slsbot_runtime.backtest.fast_entries import EntrySizer, SymbolEntries
from slsbot_runtime.backtest.inputs import interval_ms
from slsbot_runtime.backtest.report import PROGRESS_EVERY, Progress, RunRecord
from slsbot_runtime.backtest.risk_feed import Holding, RiskFeed
from slsbot_runtime.backtest.vectorized import batch_decisions, next_decision_tables, record_changes, targets, warm_mask
from slsbot_runtime.backtest.volatility_mask import volatility_halts
from slsbot_runtime.domain.errors import OrderRejected, PermanentExchangeError
from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import QUANTITY_EPSILON, Candle, Fill, OrderRequest, OrderType, Side, split_symbol
from slsbot_runtime.engine.planning import CancelOrder, ExitPosition, WorkingOrder, plan_symbol
from slsbot_runtime.engine.signals import Decider
from slsbot_runtime.engine.track_record import SignalTrackRecord
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.execution.client_ids import client_order_id
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.risk.sizing import exit_on_market


@dataclass(slots=True)
class _Track:
    """One symbol's candles, decisions and event tables. Only event candles are read, one value at a time.

    The per-candle columns are ``array.array``s: reading one value gives a Python number at once (no numpy
    scalar to convert), and the garbage collector has nothing to walk in them (lists of 100,000s of numbers
    made every full collection during the run cost several milliseconds).
    """

    symbol: str
    history: OHLCV
    merged_at: array  # position of each candle in the loop's processing order
    columns: tuple[array, ...]  # ts, open, high, low, close, volume
    direction: array
    confidence: array
    warm: bytes  # 1 where the symbol may enter (exits never wait for the warmup)
    next_decision: dict[int, array]  # held sign -> next candle needing a decision (len = none)
    entries: SymbolEntries  # what sizing an entry needs (track record, volatility halt, confidences)

    def __len__(self) -> int:
        return len(self.history)

    def candle(self, i: int) -> Candle:
        ts, open_, high, low, close, volume = self.columns
        return Candle(self.symbol, ts[i], open_[i], high[i], low[i], close[i], volume[i])

    def last_close_before(self, merged_position: int) -> float | None:
        j = bisect_left(self.merged_at, merged_position)
        return self.columns[4][j - 1] if j > 0 else None


def _array(values: np.ndarray, code: str) -> array:
    """A numpy column as an ``array.array`` of the same values (``q``: int64, ``d``: float64), in one copy
    (``array(code, some_bytes)`` is some 50 times slower than ``frombytes``)."""
    column = array(code)
    column.frombytes(np.ascontiguousarray(values, dtype=np.int64 if code == "q" else np.float64).view(np.uint8))
    return column


@dataclass(slots=True)
class _Changes:
    """Cash and positions after each fill, keyed by the processing position of the candle it happened on."""

    cash_at: list[int]
    cash: list[float]
    quantity_at: dict[str, list[int]]
    quantity: dict[str, list[float]]


def run_fast(config: RuntimeConfig, histories: Sequence[OHLCV], *, progress: Progress | None = None) -> RunRecord:
    """The step mode's result for ``config`` over ``histories``, or FastModeUnavailable saying why not."""
    blockers = static_blockers(config)
    if blockers:
        raise FastModeUnavailable(blockers)
    started = time.perf_counter()
    step_ms = interval_ms(config)
    order = _processing_order(histories)
    models = None
    if config.ml.signal_models:  # retrained in-process as the run walks forward, at the step mode's retrain points
        from slsbot_runtime.ml.wiring import build_model_bank

        models = build_model_bank(config, fast=True)
    total = len(order.ts)
    events_progress = progress
    units = total  # what the bar counts: the candles, twice with models (their pass, then the events)
    if models is not None:
        units = 2 * total
        # the models' pass (features, retrains, predictions candle by candle) is most of the run: the first half of
        # the bar, the events the second
        models_progress = None
        if progress is not None:
            models_progress = lambda done, _total: progress(done, units)  # noqa: E731
            events_progress = lambda done, _total: progress(total + done, units)  # noqa: E731
        models.run_batch(histories, progress=models_progress)
    deciders = build_deciders(config, models=models)
    tracks = [
        _track(config, history, deciders[history.symbol], order.positions[k], step_ms)
        for k, history in enumerate(histories)
    ]
    fills, changes = _Events(config, tracks, order, step_ms, progress=events_progress, total=total).run()
    equity = _equity_path(config, tracks, order, changes)
    if progress is not None:
        progress(units, units)
    return RunRecord("fast", fills, order.ts, equity, time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class _Order:
    ts: np.ndarray  # open time of every candle in processing order
    symbol_index: np.ndarray  # which history each one comes from
    positions: list[np.ndarray]  # per history: each candle's processing position


def _processing_order(histories: Sequence[OHLCV]) -> _Order:
    """The replay feed's order: open time, then the order of the symbols (``heapq.merge`` is stable)."""
    all_ts = np.concatenate([h.ts for h in histories]).astype(np.int64)
    which = np.concatenate([np.full(len(h), k, dtype=np.int64) for k, h in enumerate(histories)])
    bounds = np.cumsum([0, *(len(h) for h in histories)])
    if bool(np.all(all_ts[1:] >= all_ts[:-1])):  # already in order (one symbol): the stable sort is the identity
        rank = np.arange(len(all_ts), dtype=np.int64)
        return _Order(all_ts, which, [rank[bounds[k] : bounds[k + 1]] for k in range(len(histories))])
    ordering = np.argsort(all_ts, kind="stable")
    rank = np.empty(len(ordering), dtype=np.int64)
    rank[ordering] = np.arange(len(ordering))
    positions = [rank[bounds[k] : bounds[k + 1]] for k in range(len(histories))]
    return _Order(all_ts[ordering], which[ordering], positions)


def _track(config: RuntimeConfig, history: OHLCV, decider: Decider, positions: np.ndarray, step_ms: int) -> _Track:
    decisions = batch_decisions(decider, history)
    warm = warm_mask(history.ts, interval_ms=step_ms, warmup_candles=config.market_data.warmup_candles)
    target = targets(decisions.direction, long_only=config.long_only)
    tables = next_decision_tables(target, warm, entries_allowed=not config.paused)
    h = history
    halt = config.risk.volatility_halt
    entries = SymbolEntries(
        symbol=history.symbol,
        history=history,
        targets=array("b", target.tobytes()),
        closes=_array(h.close, "d"),
        directions=_array(decisions.direction, "d"),
        confidences=_array(decisions.confidence, "d"),
        changes=_array(record_changes(target), "q"),
        halted=volatility_halts(h.ts, h.close, halt).astype(np.uint8).tobytes() if halt.enabled else None,
        record=SignalTrackRecord(2 * config.account.paper.fee_rate),  # the loop's round_trip_cost (app.prepare_runtime)
    )
    return _Track(
        symbol=history.symbol,
        history=history,
        merged_at=_array(positions, "q"),
        columns=(_array(h.ts, "q"), *(_array(column, "d") for column in (h.open, h.high, h.low, h.close, h.volume))),
        direction=_array(decisions.direction, "d"),
        confidence=_array(decisions.confidence, "d"),
        warm=warm.astype(np.uint8).tobytes(),
        next_decision={held: _array(table, "q") for held, table in tables.items()},
        entries=entries,
    )


class _Events:
    """The event loop (see the module doc): ``run()`` gives the fills in booking order and the cash and positions
    after each. ``progress`` hears how far through the candles (in processing order) the events have gone."""

    def __init__(
        self,
        config: RuntimeConfig,
        tracks: list[_Track],
        order: _Order,
        step_ms: int,
        *,
        progress: Progress | None = None,
        total: int = 0,
    ) -> None:
        paper = config.account.paper
        self.tracks = tracks
        self.order = order
        self.step_ms = step_ms
        self.progress = progress
        self.total = total
        self.exchange = PaperExchange(paper, interval_ms=step_ms, allow_short=not config.long_only)
        self.ledger = Ledger(cash=paper.starting_balance, quote_currency=paper.quote_currency)
        risk = RiskManager(
            config.risk, config.sizing, config.long_only, allocation_percent=config.allocation_percent
        )  # as app.prepare_runtime builds the loop's
        self.risk = RiskFeed(risk, config.risk, order.ts, opening_equity=paper.starting_balance)
        self.sizer = EntrySizer(config, risk)
        self.key = f"{config.namespace}/{config.name}"
        self.long_only, self.entries_allowed = config.long_only, not config.paused
        self.fills: list[Fill] = []
        self.changes = _Changes([], [], {t.symbol: [] for t in tracks}, {t.symbol: [] for t in tracks})
        self.resting = [False] * len(tracks)
        self.scheduled: list[int | None] = [None] * len(tracks)  # each symbol's next event (one at a time)
        self.heap: list[tuple[int, int, int]] = []  # (position, symbol index or -1 for a wake-up, candle)
        self.index = {track.symbol: k for k, track in enumerate(tracks)}
        self._holdings: list[Holding] = []
        self._holdings_version = -1
        self._wake_at = -1  # the candle of the last wake-up queued (see _await_release)

    def run(self) -> tuple[list[Fill], _Changes]:
        for k, track in enumerate(self.tracks):
            self._schedule(k, track.next_decision[0][0])
        heap, scheduled, progress = self.heap, self.scheduled, self.progress
        report_at = PROGRESS_EVERY if progress is not None else sys.maxsize
        while heap:
            position, k, i = heapq.heappop(heap)
            if k >= 0 and scheduled[k] != i:
                continue  # replaced by an earlier event of the same symbol
            if position >= report_at:
                progress(position, self.total)
                report_at = position + PROGRESS_EVERY
            changed = self.risk.advance(position, self.ledger.cash, self._held())
            if changed is not None:  # must_flatten changed on a candle before this one: act there first
                heapq.heappush(heap, (position, k, i))
                self._flatten_changed(changed, current=-1)
            elif k < 0:
                self._wake(position)
            else:
                self._process(position, k, i)
        return self.fills, self.changes

    def _schedule(self, k: int, i: int) -> None:
        """Make candle ``i`` symbol ``k``'s next event unless an earlier one is due (an extra event is harmless:
        a candle where nothing is to be done does nothing)."""
        track = self.tracks[k]
        current = self.scheduled[k]
        if i < len(track) and (current is None or i < current):
            self.scheduled[k] = i
            heapq.heappush(self.heap, (track.merged_at[i], k, i))

    def _process(self, position: int, k: int, i: int) -> None:
        """One event: the loop's ``process`` for candle ``i`` of symbol ``k``."""
        self.scheduled[k] = None
        track, exchange, ledger = self.tracks[k], self.exchange, self.ledger
        symbol = track.symbol
        working: list[WorkingOrder] = []
        if self.resting[k]:
            candle = track.candle(i)
            if not self.long_only:  # a short's collateral values every other holding at its last close
                _mark_held_symbols(exchange, self.tracks, k, position)
            for fill in exchange.on_candle(candle):
                ledger.apply(fill)
                self.fills.append(fill)
                self.changes.cash_at.append(position)
                self.changes.cash.append(ledger.cash)
                self.changes.quantity_at[symbol].append(position)
                self.changes.quantity[symbol].append(ledger.quantity(symbol))
            if exchange.has_open_orders(symbol):
                working = [WorkingOrder(o.client_order_id, o.side) for o in exchange.fetch_open_orders(symbol)]
            self.resting[k] = bool(working)
            close = candle.close
        else:
            close = track.columns[4][i]
            exchange.mark(symbol, close)  # what on_candle does with a candle that has nothing to match
        ledger.mark(symbol, close)
        _mark_open_positions(ledger, self.tracks, k, position)
        if self.risk.settle(position, ledger.equity()):  # the loop's risk.observe, where it can change anything
            self._flatten_changed(position, current=k)
        flatten = self.risk.must_flatten
        held = ledger.quantity(symbol)
        if working or (_sign(held) != 0 if flatten else track.next_decision[_sign(held)][i] == i):
            actions = plan_symbol(
                direction=track.direction[i],
                position=held,
                working=working,
                long_only=self.long_only,
                must_flatten=flatten,
                entries_allowed=self.entries_allowed and track.warm[i] == 1,
            )
            for action in actions:
                if isinstance(action, CancelOrder):
                    exchange.cancel_order(action.client_order_id, symbol)
                    self.resting[k] = exchange.has_open_orders(symbol)
                    continue
                rules = exchange.market_rules(symbol)
                if isinstance(action, ExitPosition):
                    # the loop's _exit: the whole position, on the market's step; only its minimums refuse it
                    quantity = _exit_quantity(symbol, close, ledger, rules)
                else:
                    portfolio = ledger.snapshot(track.columns[0][i])
                    quantity = self.sizer.size(track.entries, i, action.side, close, rules, portfolio)
                if quantity > QUANTITY_EPSILON:
                    quantity = rules.floor_amount(quantity)
                    placed = _place(exchange, self.key, track, i, action.side, quantity, self.step_ms)
                    self.resting[k] = self.resting[k] or placed
        sign = _sign(ledger.quantity(symbol))
        if self.resting[k]:
            self._schedule(k, i + 1)
        elif not flatten:
            # flat, an entry refused for want of an edge: the same refusal until the track record changes
            after = min(max(i, track.entries.refused_until), len(track) - 1) if sign == 0 else i
            self._schedule(k, track.next_decision[sign][after + 1])
        elif sign != 0:  # flattening: every candle until the position is closed
            self._schedule(k, i + 1)
        else:
            self._await_release(position)

    def _flatten_changed(self, position: int, *, current: int) -> None:
        """``must_flatten`` changed on the candle at ``position``: every other symbol acts from its next candle
        (flattening: those holding something or with an order on the book; released: wherever they would act), and
        a wake-up waits for the release."""
        flatten = self.risk.must_flatten
        for k, track in enumerate(self.tracks):
            if k == current:
                continue  # it is acting on this candle now
            j = bisect_left(track.merged_at, position)
            if j >= len(track):
                continue
            sign = _sign(self.ledger.quantity(track.symbol))
            if self.resting[k]:
                self._schedule(k, j)
            elif flatten:
                if sign != 0:
                    self._schedule(k, j)
            else:
                self._schedule(k, track.next_decision[sign][j])
        self._await_release(position)

    def _wake(self, position: int) -> None:
        """A flattenAndHalt level's cooldown ends on the candle at ``position``: let the risk manager see it (unless
        the candle is an event of its own, which does) so that the symbols resume from there."""
        k = int(self.order.symbol_index[position])
        track = self.tracks[k]
        if self.scheduled[k] == bisect_left(track.merged_at, position):
            return
        _mark_open_positions(self.ledger, self.tracks, -1, position + 1)
        if self.risk.settle(position, self.ledger.equity()):
            self._flatten_changed(position, current=-1)
        self._await_release(position)

    def _await_release(self, position: int) -> None:
        """While a flattenAndHalt level holds, keep a wake-up on the candle where its cooldown ends (after
        ``position``): the breaker lets go there, and no symbol may have anything else to do until then. (Another
        such level tripped later may hold on: then the next one's end.)"""
        if self.risk.must_flatten:
            release = self.risk.release_position()
            if release is not None and release > position and release != self._wake_at:
                self._wake_at = release
                heapq.heappush(self.heap, (release, -1, 0))

    def _held(self) -> list[Holding]:
        """What the account holds, in symbol order (the ledger's equity order), for the risk feed."""
        ledger = self.ledger
        if ledger.trade_count != self._holdings_version:
            self._holdings_version = ledger.trade_count
            self._holdings = []
            for symbol, row in sorted(ledger.positions.items()):
                if row.quantity:
                    track = self.tracks[self.index[symbol]]
                    self._holdings.append(Holding(row.quantity, track.merged_at, track.columns[4]))
        return self._holdings


def _mark_open_positions(ledger: Ledger, tracks: list[_Track], current: int, position: int) -> None:
    """Give every other held symbol its last close before this candle, as the loop's ledger has it."""
    for k, track in enumerate(tracks):
        if k == current:
            continue
        row = ledger.positions.get(track.symbol)
        if row is not None and row.quantity:
            close = track.last_close_before(position)
            if close is not None:
                ledger.mark(track.symbol, close)


def _mark_held_symbols(exchange: PaperExchange, tracks: list[_Track], current: int, position: int) -> None:
    """Give the exchange the last close before this candle of every other symbol it holds (long or short), as
    the loop's exchange has it from its ``on_candle`` calls."""
    for k, track in enumerate(tracks):
        if k != current and exchange.balance(split_symbol(track.symbol)[0]) != 0.0:
            close = track.last_close_before(position)
            if close is not None:
                exchange.mark(track.symbol, close)


def _sign(quantity: float) -> int:
    """The held side as ``plan_symbol`` sees it."""
    if abs(quantity) <= QUANTITY_EPSILON:
        return 0
    return 1 if quantity > 0 else -1


def _exit_quantity(symbol: str, close: float, ledger: Ledger, rules: MarketRules) -> float:
    """The loop's ``_exit``: the whole position as ``RiskManager.evaluate`` approves an exit (on the market's step;
    0 for dust below its minimums), without the journal entry nobody reads here."""
    held = abs(ledger.quantity(symbol))
    return exit_on_market(held, close, rules)[0] if held > QUANTITY_EPSILON else 0.0


def _place(exchange: PaperExchange, key: str, track: _Track, i: int, side: Side, quantity: float, step_ms: int) -> bool:
    """The order manager's intent and send: the same client order id, created at the candle's close, for
    ``quantity`` already on the market's step. True when the order rests on the book."""
    if quantity <= 0.0:
        return False  # the order manager stores it as rejected and never sends it
    ts = track.columns[0][i]
    request = OrderRequest(
        client_order_id(key, track.symbol, ts, 0),
        track.symbol,
        side,
        quantity,
        OrderType.MARKET,
        created_ts=ts + step_ms,
    )
    try:
        order = exchange.place_order(request)
    except (OrderRejected, PermanentExchangeError):
        return False  # the loop marks the order rejected and goes on; it never reaches the book
    return not order.status.is_terminal


def _equity_path(config: RuntimeConfig, tracks: list[_Track], order: _Order, changes: _Changes) -> np.ndarray:
    """``Ledger.equity()`` after every processed candle: cash plus each position at its last close."""
    count = len(order.ts)
    everywhere = np.arange(count)
    equity = _step_function(changes.cash_at, changes.cash, everywhere, config.account.paper.starting_balance)
    for k in sorted(range(len(tracks)), key=lambda index: tracks[index].symbol):
        track = tracks[k]
        if not changes.quantity_at[track.symbol]:
            continue
        held = _step_function(changes.quantity_at[track.symbol], changes.quantity[track.symbol], everywhere, 0.0)
        seen = np.cumsum(order.symbol_index == k)
        closes = track.history.close
        last_close = np.where(seen > 0, closes[np.maximum(seen - 1, 0)], 0.0)
        equity = equity + held * last_close
    return equity


def _step_function(at: list[int], values: list[float], where: np.ndarray, before: float) -> np.ndarray:
    """The last value set at or before each position in ``where`` (``before`` until the first)."""
    if not at:
        return np.full(len(where), before, dtype=np.float64)
    state = np.searchsorted(np.asarray(at, dtype=np.int64), where, side="right") - 1
    table = np.asarray([before, *values], dtype=np.float64)
    return table[state + 1]
