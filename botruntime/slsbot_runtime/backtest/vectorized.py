"""The vectorized half of fast mode: for one symbol's whole history, the decision at every candle, the
position each decision targets, whether the symbol may trade, and the next candle at which the loop would act.

The deciders are the runtime's own (``app.build_deciders``); each is asked for the vectorized twin of what it
does candle by candle: a component's ``signal_arrays``, an ensemble's ``decide_batch``. A member without a
twin, or one that reads feature-engine values (equal live and vectorized to rounding, not bit for bit), makes
fast mode unavailable, naming the member.

Targets follow ``engine.planning.target_sign`` and warmup follows ``data.gaps.GapTracker``: a symbol takes
entries once ``warmupCandles`` candles have been seen since the start or since the last gap; exits never wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from slsbot_runtime.backtest.eligibility import FastModeUnavailable
from slsbot_runtime.engine.signals import ComponentDecider, Decider, EnsembleDecider
from slsbot_runtime.features.base import OHLCV

#: ``target`` code for "no opinion" (a direction of exactly 0, or NaN): keep what is held.
NO_OPINION = 2
HELD_SIGNS = (-1, 0, 1)


@dataclass(frozen=True, slots=True)
class Decisions:
    direction: np.ndarray  # float64, what the decider returns after each candle
    confidence: np.ndarray  # float64


def batch_decisions(decider: Decider, history: OHLCV) -> Decisions:
    """What ``decider.decide`` would return after each candle of ``history``, computed at once."""
    if isinstance(decider, ComponentDecider):
        component = decider.component
        _refuse_features({component.id: component.required_features})
        arrays = component.signal_arrays(history, {})
        if arrays is None:
            raise FastModeUnavailable([f"ensemble.members: {component.id} has no vectorized signals"])
        return Decisions(*(np.asarray(a, dtype=np.float64) for a in arrays))
    if isinstance(decider, EnsembleDecider):
        ensemble = decider.ensemble
        members = getattr(ensemble, "members", ())
        _refuse_features({m.name: getattr(m.component, "required_features", ()) for m in members})
        try:
            decided = ensemble.decide_batch(history, {})
        except ValueError as error:  # a member without a vectorized form; the message names it
            raise FastModeUnavailable([f"ensemble.members: {error}"]) from None
        return Decisions(
            np.asarray(decided.direction, dtype=np.float64), np.asarray(decided.confidence, dtype=np.float64)
        )
    raise FastModeUnavailable([f"ensemble: the decider {type(decider).__name__} has no vectorized twin"])


def _refuse_features(required: Mapping[str, tuple[str, ...]]) -> None:
    """Members reading the feature engine: its live and vectorized values agree to rounding, not bit for bit,
    so a threshold could fall differently; fast mode would not be exact."""
    readers = [name for name, names in required.items() if names]
    if readers:
        raise FastModeUnavailable(
            [
                f"ensemble.members[{name}]: reads feature-engine values, whose live and vectorized forms agree "
                "to rounding only"
                for name in readers
            ]
        )


def targets(direction: np.ndarray, *, long_only: bool) -> np.ndarray:
    """``engine.planning.target_sign`` for every candle (never ``must_flatten``): 1, 0, -1 or NO_OPINION."""
    with np.errstate(invalid="ignore"):
        short = 0 if long_only else -1
        return np.where(direction > 0, 1, np.where(direction < 0, short, NO_OPINION)).astype(np.int8)


def warm_mask(ts: np.ndarray, *, interval_ms: int, warmup_candles: int) -> np.ndarray:
    """``GapTracker.is_warm`` after each candle: enough candles since the start or the last gap."""
    n = len(ts)
    restart = np.ones(n, dtype=bool)
    if n > 1:
        restart[1:] = np.diff(ts) > interval_ms
    index = np.arange(n)
    since = index - np.maximum.accumulate(np.where(restart, index, 0)) + 1
    return since >= warmup_candles


def next_true(mask: np.ndarray) -> np.ndarray:
    """For every i, the first j >= i with ``mask[j]``, or ``len(mask)``; one extra entry at the end."""
    n = len(mask)
    at = np.where(mask, np.arange(n), n)
    out = np.empty(n + 1, dtype=np.int64)
    out[n] = n
    out[:n] = np.minimum.accumulate(at[::-1])[::-1]
    return out


def next_decision_tables(target: np.ndarray, warm: np.ndarray, *, entries_allowed: bool) -> dict[int, np.ndarray]:
    """Per held sign (-1, 0, 1): the next candle at which ``plan_symbol`` would act with no order working
    (``next_true``'s int64 array, one entry longer than the history).

    It acts when the decision has an opinion that differs from what is held; when flat (an entry), only where
    the symbol is warm and entries are allowed. Exits do not wait for the warmup (``data.gaps``).
    """
    tables = {}
    acting = target != NO_OPINION
    for held in HELD_SIGNS:
        mask = acting & (target != held)
        if held == 0:
            mask = mask & warm if entries_allowed else np.zeros_like(mask)
        tables[held] = next_true(mask)
    return tables


def record_changes(target: np.ndarray) -> np.ndarray:
    """The candles at which ``engine.track_record.SignalTrackRecord.observe`` changes the record, given the
    ``targets`` it is shown after each candle: an opinion other than the side it follows (the last opinion, flat
    before the first). Everywhere else ``observe`` returns at once, so feeding the record these candles alone (with
    their targets and closes) leaves it exactly as feeding it all of them."""
    n = len(target)
    opinion = target != NO_OPINION
    last = np.maximum.accumulate(np.where(opinion, np.arange(n), -1))
    side = np.where(last >= 0, target[np.maximum(last, 0)], 0)
    before = np.concatenate(([0], side[:-1])) if n else side
    return np.flatnonzero(opinion & (target != before))


def next_decisions(target: np.ndarray, warm: np.ndarray, *, entries_allowed: bool) -> dict[int, list[int]]:
    """``next_decision_tables`` as lists."""
    return {
        held: table.tolist()
        for held, table in next_decision_tables(target, warm, entries_allowed=entries_allowed).items()
    }
