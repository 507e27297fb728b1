"""The lookahead check: no decision may change when later candles are appended.

The deciders are the runtime's own (``app.build_deciders``), for the whole ensemble and for each member alone
(``candidates``), so whatever a member is (a rule, a model, a user component) it is checked the same way. For
every symbol, the history is cut at many points (``count`` evenly spaced, plus ``random`` more drawn with
``seed``), and at each cut ``c``:

* **incremental form**: fresh deciders are fed the candles before ``c`` one at a time (``decide``, as the live
  loop and step-mode backtests do); their decision after each candle must equal the decision a fresh decider
  gave after the same candle when fed the whole history;
* **vectorized form** (where the ensemble has one: ``decide_batch``, as fast mode uses): the decisions computed
  on the candles before ``c`` must equal the first ``c`` decisions computed on the whole history.

Direction and confidence are compared exactly (NaN equals NaN). Any difference fails the check, naming the
member, the symbol, the form, the candle, the cut and the two values. A vectorized signal that reads a later
candle (a shift the wrong way, a centred window, a statistic of the whole history) differs at the last candles
before a cut; an incremental decider can only see what it is fed, so a difference there means it depends on
something beyond the candles (state shared between runs, unseeded randomness).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import build_deciders
from slsbot_runtime.domain.timeframes import utc_minute
from slsbot_runtime.domain.types import Candle
from slsbot_runtime.engine.signals import Decider, EnsembleDecider
from slsbot_runtime.evaluation.candidates import Candidate
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy.registry import ComponentRegistry

INCREMENTAL = "incremental"
VECTORIZED = "vectorized"
#: Cuts leave at least this many candles: fewer say nothing about a strategy.
MIN_CUT = 2

#: ``progress(runs done, runs in all)``: one run is one unit, one symbol, one cut, in one form.
LookaheadProgress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class LookaheadViolation:
    unit: str  # "ensemble" or "ensemble.members[<name>]"
    symbol: str
    form: str  # "incremental" or "vectorized"
    cut_ts: int  # open time of the first candle removed
    candle_ts: int  # open time of the candle whose decision changed
    field: str  # "direction" or "confidence"
    truncated: float  # the decision with the data cut
    full: float  # the decision with the later candles appended

    @property
    def message(self) -> str:
        return (
            f"{self.unit}: {self.symbol} {self.field} after the candle of {utc_minute(self.candle_ts)} is "
            f"{self.truncated!r} when the data ends before {utc_minute(self.cut_ts)} but {self.full!r} when later "
            f"candles are appended ({self.form} form): the decision looks ahead"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "symbol": self.symbol,
            "form": self.form,
            "cut": utc_minute(self.cut_ts),
            "candle": utc_minute(self.candle_ts),
            "field": self.field,
            "truncated": _number(self.truncated),
            "full": _number(self.full),
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class LookaheadReport:
    seed: int
    cuts: dict[str, tuple[int, ...]]  # per symbol: the open times of the first candle removed
    forms: dict[str, tuple[str, ...]]  # per unit: the forms checked
    decisions_compared: int
    violations: tuple[LookaheadViolation, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "seed": self.seed,
            "cuts": {symbol: len(cuts) for symbol, cuts in self.cuts.items()},
            "units": {unit: list(forms) for unit, forms in self.forms.items()},
            "decisions_compared": self.decisions_compared,
            "violations": [violation.to_json() for violation in self.violations],
        }


def cut_points(length: int, *, count: int, random: int, seed: int) -> list[int]:
    """Where to cut a history of ``length`` candles: ``count`` evenly spaced positions and ``random`` more drawn
    from ``numpy.random.default_rng(seed)``, each keeping between MIN_CUT and ``length - 1`` candles, sorted."""
    if length <= MIN_CUT:
        return []
    even = {MIN_CUT + (length - 1 - MIN_CUT) * k // max(count - 1, 1) for k in range(count)} if count else set()
    drawn = np.random.default_rng(seed).integers(MIN_CUT, length, size=random) if random else []
    return sorted(even | {int(cut) for cut in drawn})


def check_lookahead(
    candidates: Sequence[Candidate],
    histories: Sequence[OHLCV],
    *,
    count: int = 20,
    random: int = 10,
    seed: int = 0,
    registry: ComponentRegistry | None = None,
    progress: LookaheadProgress | None = None,
) -> LookaheadReport:
    """Run every candidate's deciders on each symbol's history cut at many points (see the module doc)."""
    cuts = {h.symbol: cut_points(len(h), count=count, random=random, seed=seed) for h in histories}
    total = 2 * len(candidates) * sum(len(c) + 1 for c in cuts.values())
    done = 0
    compared = 0
    forms: dict[str, tuple[str, ...]] = {}
    violations: list[LookaheadViolation] = []
    for candidate in candidates:
        checked = [INCREMENTAL]
        for history in histories:
            symbol_cuts = cuts[history.symbol]
            candles = [history.candle(i) for i in range(len(history))]

            def fresh(history: OHLCV = history, config: RuntimeConfig = candidate.config) -> Decider:
                return _decider(config, history.symbol, registry)

            full = _incremental(fresh(), candles)
            for cut in symbol_cuts:
                compared += cut
                found = _first_difference(_incremental(fresh(), candles[:cut]), full, cut)
                if found is not None:
                    violations.append(_violation(candidate.label, history, INCREMENTAL, cut, *found))
                    break
            done += len(symbol_cuts) + 1
            if progress is not None:
                progress(done, total)
            full_batch = _vectorized(fresh(), history)
            if full_batch is not None:
                if VECTORIZED not in checked:
                    checked.append(VECTORIZED)
                for cut in symbol_cuts:
                    compared += cut
                    part = _vectorized(fresh(), history.slice(0, cut))
                    assert part is not None  # the same deciders, a shorter history
                    found = _first_difference(part, full_batch, cut)
                    if found is not None:
                        violations.append(_violation(candidate.label, history, VECTORIZED, cut, *found))
                        break
            done += len(symbol_cuts) + 1
            if progress is not None:
                progress(done, total)
        forms[candidate.label] = tuple(checked)
    return LookaheadReport(
        seed=seed,
        cuts={h.symbol: tuple(int(h.ts[c]) for c in cuts[h.symbol]) for h in histories},
        forms=forms,
        decisions_compared=compared,
        violations=tuple(violations),
    )


def _decider(config: RuntimeConfig, symbol: str, registry: ComponentRegistry | None) -> Decider:
    alone = config.model_copy(update={"symbols": [symbol]})
    deciders = build_deciders(alone) if registry is None else build_deciders(alone, registry=registry)
    return deciders[symbol]


Decisions = tuple[np.ndarray, np.ndarray]  # direction, confidence after each candle


def _incremental(decider: Decider, candles: Sequence[Candle]) -> Decisions:
    direction = np.empty(len(candles))
    confidence = np.empty(len(candles))
    for i, candle in enumerate(candles):
        decision = decider.decide(candle)
        direction[i] = decision.direction
        confidence[i] = decision.confidence
    return direction, confidence


def _vectorized(decider: Decider, history: OHLCV) -> Decisions | None:
    """The ensemble's ``decide_batch`` with the feature engine's vectorized values; None without that form."""
    if not isinstance(decider, EnsembleDecider):
        return None
    ensemble = decider.ensemble
    if not hasattr(ensemble, "decide_batch") or not ensemble.supports_batch():
        return None
    from slsbot_runtime.features.engine import FeatureEngine

    names = ensemble.required_features
    features = FeatureEngine(names).compute(history) if names else {}
    batch = ensemble.decide_batch(history, features)
    return np.asarray(batch.direction, dtype=np.float64), np.asarray(batch.confidence, dtype=np.float64)


def _first_difference(truncated: Decisions, full: Decisions, cut: int) -> tuple[int, str, float, float] | None:
    """The first candle before ``cut`` where the two disagree: ``(index, field, truncated, full)``."""
    agree = [
        (part == whole[:cut]) | (np.isnan(part) & np.isnan(whole[:cut]))
        for part, whole in zip(truncated, full, strict=True)
    ]
    both = agree[0] & agree[1]
    if both.all():
        return None
    i = int(np.argmin(both))
    k = 0 if not agree[0][i] else 1
    return i, ("direction", "confidence")[k], float(truncated[k][i]), float(full[k][i])


def _violation(
    unit: str, history: OHLCV, form: str, cut: int, index: int, name: str, truncated: float, full: float
) -> LookaheadViolation:
    return LookaheadViolation(
        unit=unit,
        symbol=history.symbol,
        form=form,
        cut_ts=int(history.ts[cut]),
        candle_ts=int(history.ts[index]),
        field=name,
        truncated=truncated,
        full=full,
    )


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None
