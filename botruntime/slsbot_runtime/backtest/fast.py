"""Fast mode: vectorized decisions, then a loop over trade events only, with the step mode's own pieces.

1. ``vectorized``: every symbol's decisions, targets and warmup for the whole window at once, and for each
   candle the next candle at which the trading loop would act given what is held.
2. A loop over *events* in the loop's candle order (time, then symbol order): a candle where an order rests
   on the book (the paper exchange may fill it) or where ``plan_symbol`` would act. Candles in between are
   skipped: nothing the loop does there changes orders, fills or cash.
3. At each event the loop's own pieces do the work: ``PaperExchange`` fills (next open, spread and
   slippage, fees, volume participation, balances, market rules, a short's collateral and interest),
   ``Ledger`` books, ``plan_symbol`` plans, ``RiskManager.evaluate`` sizes entries and rounds exits, with the
   same client order ids. Partial fills and latency need no special case: while an order rests, every candle
   of its symbol is an event. The exchange is told the closes it would have seen on skipped candles that
   matter (its own symbol's at every event; with shorts, every held symbol's before a fill).
4. The equity after every candle is rebuilt from the fills with numpy, in the ledger's own arithmetic
   (cash plus each position times its last close, in symbol order), so the curve equals the step mode's.
5. ``eligibility.equity_path_blockers`` checks that curve against the per-candle risk limits; if one is
   reached the result is thrown away (``FastModeUnavailable``).
"""

from __future__ import annotations

import heapq
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slsbot.api import RuntimeConfig
from slsbot.api.strategy import SizingMethod
from slsbot_runtime.app import build_deciders
from slsbot_runtime.backtest.eligibility import FastModeUnavailable, equity_path_blockers, static_blockers
from slsbot_runtime.backtest.inputs import interval_ms
from slsbot_runtime.backtest.report import PROGRESS_EVERY, Progress, RunRecord
from slsbot_runtime.backtest.vectorized import batch_decisions, next_decision_tables, targets, warm_mask
from slsbot_runtime.domain.errors import OrderRejected, PermanentExchangeError
from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import QUANTITY_EPSILON, Candle, Fill, OrderRequest, OrderType, Side, split_symbol
from slsbot_runtime.engine.planning import CancelOrder, ExitPosition, ProposeEntry, WorkingOrder, plan_symbol
from slsbot_runtime.engine.signals import Decider
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.execution.client_ids import client_order_id
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.risk.base import RiskAction, TradeProposal
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
    merged: np.ndarray  # position of each candle in the loop's processing order
    merged_at: array  # the same, as an array of ints
    columns: tuple[array, ...]  # ts, open, high, low, close, volume
    direction: array
    confidence: array
    warm: bytes  # 1 where the symbol may enter (exits never wait for the warmup)
    next_decision: dict[int, array]  # held sign -> next candle needing a decision (len = none)

    def __len__(self) -> int:
        return len(self.history)

    def candle(self, i: int) -> Candle:
        ts, open_, high, low, close, volume = self.columns
        return Candle(self.symbol, ts[i], open_[i], high[i], low[i], close[i], volume[i])

    def last_close_before(self, merged_position: int) -> float | None:
        j = int(np.searchsorted(self.merged, merged_position, side="left"))
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
    fills, changes = _simulate(config, tracks, step_ms, progress=events_progress, total=total)
    equity = _equity_path(config, tracks, order, changes)
    reasons = equity_path_blockers(config.risk, order.ts, equity, opening_equity=config.account.paper.starting_balance)
    if reasons:
        raise FastModeUnavailable(reasons)
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
    return _Track(
        symbol=history.symbol,
        history=history,
        merged=positions,
        merged_at=_array(positions, "q"),
        columns=(_array(h.ts, "q"), *(_array(column, "d") for column in (h.open, h.high, h.low, h.close, h.volume))),
        direction=_array(decisions.direction, "d"),
        confidence=_array(decisions.confidence, "d"),
        warm=warm.astype(np.uint8).tobytes(),
        next_decision={held: _array(table, "q") for held, table in tables.items()},
    )


def _simulate(
    config: RuntimeConfig, tracks: list[_Track], step_ms: int, *, progress: Progress | None = None, total: int = 0
) -> tuple[list[Fill], _Changes]:
    """The event loop (see the module doc); the fills in booking order and the cash and positions after each.
    ``progress`` hears how far through the candles (in processing order) the events have gone."""
    paper = config.account.paper
    exchange = PaperExchange(paper, interval_ms=step_ms, allow_short=not config.long_only)
    ledger = Ledger(cash=paper.starting_balance, quote_currency=paper.quote_currency)
    risk = RiskManager(config.risk, config.sizing, config.long_only, allocation_percent=config.allocation_percent)
    fixed = config.sizing.quantity if config.sizing.method == SizingMethod.FIXED_QUANTITY else None
    key = f"{config.namespace}/{config.name}"
    long_only, entries_allowed = config.long_only, not config.paused
    fills: list[Fill] = []
    changes = _Changes([], [], {t.symbol: [] for t in tracks}, {t.symbol: [] for t in tracks})
    resting = [False] * len(tracks)
    heap = []
    for k, track in enumerate(tracks):
        first = track.next_decision[0][0]
        if first < len(track):
            heap.append((track.merged_at[first], k, first))
    heapq.heapify(heap)
    report_at = PROGRESS_EVERY if progress is not None else sys.maxsize

    while heap:
        position, k, i = heapq.heappop(heap)
        if position >= report_at:
            progress(position, total)
            report_at = position + PROGRESS_EVERY
        track = tracks[k]
        symbol = track.symbol
        working: list[WorkingOrder] = []
        if resting[k]:
            candle = track.candle(i)
            if not long_only:  # a short's collateral values every other holding at its last close
                _mark_held_symbols(exchange, tracks, k, position)
            for fill in exchange.on_candle(candle):
                ledger.apply(fill)
                fills.append(fill)
                changes.cash_at.append(position)
                changes.cash.append(ledger.cash)
                changes.quantity_at[symbol].append(position)
                changes.quantity[symbol].append(ledger.quantity(symbol))
            if exchange.has_open_orders(symbol):
                working = [WorkingOrder(o.client_order_id, o.side) for o in exchange.fetch_open_orders(symbol)]
            resting[k] = bool(working)
            close = candle.close
        else:
            close = track.columns[4][i]
            exchange.mark(symbol, close)  # what on_candle does with a candle that has nothing to match
        ledger.mark(symbol, close)
        held = ledger.quantity(symbol)
        if working or track.next_decision[_sign(held)][i] == i:
            actions = plan_symbol(
                direction=track.direction[i],
                position=held,
                working=working,
                long_only=long_only,
                must_flatten=False,
                entries_allowed=entries_allowed and track.warm[i] == 1,
            )
            for action in actions:
                if isinstance(action, CancelOrder):
                    exchange.cancel_order(action.client_order_id, symbol)
                    resting[k] = exchange.has_open_orders(symbol)
                    continue
                rules = exchange.market_rules(symbol)
                if isinstance(action, ExitPosition):
                    # the loop's _exit: the whole position, on the market's step; only its minimums refuse it
                    quantity = _exit_quantity(symbol, close, ledger, rules)
                else:
                    _mark_open_positions(ledger, tracks, k, position)
                    quantity = _entry_quantity(action, track, i, close, ledger, risk, fixed, rules)
                if quantity > QUANTITY_EPSILON:
                    placed = _place(exchange, key, track, i, action.side, rules.floor_amount(quantity), step_ms)
                    resting[k] = resting[k] or placed
        following = i + 1 if resting[k] else track.next_decision[_sign(ledger.quantity(symbol))][i + 1]
        if following < len(track):
            heapq.heappush(heap, (track.merged_at[following], k, following))
    return fills, changes


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


def _entry_quantity(
    action: ProposeEntry,
    track: _Track,
    i: int,
    close: float,
    ledger: Ledger,
    risk: RiskManager,
    fixed: float | None,
    rules: MarketRules,
) -> float:
    """The loop's ``_enter``: the quantity the risk manager sizes, 0 when it refuses."""
    confidence = min(max(track.confidence[i], 0.0), 1.0)
    proposal = TradeProposal(
        track.symbol, action.side, close, confidence, is_entry=True, requested_quantity=fixed, rules=rules
    )
    verdict = risk.evaluate(proposal, ledger.snapshot(track.columns[0][i]))
    return 0.0 if verdict.action == RiskAction.REJECTED else verdict.quantity


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
