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

A candidate with signal models (``ml.models``) gets a model bank of its own per run, as a backtest does
(``ModelBank``, trained in-process): in the incremental form the bank sees each candle before the members
(``observe``: it retrains when a retrain point passes, on the candles before it), in the vectorized form it runs
over the history at once first (``run_batch``, as fast mode does). The bank is built for the one symbol checked, so
its models train on that symbol's candles. A truncated history must therefore retrain at the same points on the
same candles and give the same decisions; a model that trains or predicts on later candles changes its past
decisions when they are appended. Retraining is the check's cost, so runs share what they trained
(``RememberingTrainer``): a retrain is reused only when the run's whole sequence of retrains up to it (points,
candle windows, models) is byte for byte the one that produced it, which is what a fresh training would be given;
any other retrain is trained anew.

Direction and confidence are compared exactly (NaN equals NaN). Any difference fails the check, naming the
member, the symbol, the form, the candle, the cut and the two values. A vectorized signal that reads a later
candle (a shift the wrong way, a centred window, a statistic of the whole history) differs at the last candles
before a cut; an incremental decider can only see what it is fed, so a difference there means it depends on
something beyond the candles (state shared between runs, unseeded randomness).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import build_deciders
from slsbot_runtime.domain.timeframes import utc_minute
from slsbot_runtime.domain.types import Candle
from slsbot_runtime.engine.signals import Decider, EnsembleDecider
from slsbot_runtime.evaluation.candidates import Candidate
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy.registry import ComponentRegistry

if TYPE_CHECKING:  # the ml package loads scikit-learn: imported when a candidate has models
    from slsbot_runtime.ml.bank import ModelBank, Trainer
    from slsbot_runtime.ml.training import Outcome, TrainingJob

INCREMENTAL = "incremental"
VECTORIZED = "vectorized"
#: Cuts leave at least this many candles: fewer say nothing about a strategy.
MIN_CUT = 2

#: ``progress(runs done, runs in all)``: one run is one unit, one symbol, one cut, in one form.
LookaheadProgress = Callable[[int, int], None]
#: ``bank_factory(config, symbol, trainer_factory)``: the model bank of a config with signal models, for one symbol.
BankFactory = Callable[[RuntimeConfig, str, Callable[[], "Trainer"]], "ModelBank"]


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
    bank_factory: BankFactory | None = None,
) -> LookaheadReport:
    """Run every candidate's deciders on each symbol's history cut at many points (see the module doc).
    ``bank_factory`` builds the model bank of a candidate with signal models (``model_bank`` by default)."""
    cuts = {h.symbol: cut_points(len(h), count=count, random=random, seed=seed) for h in histories}
    trained: dict[bytes, list[Outcome]] = {}  # what RememberingTrainers share, for this check only
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

            def fresh(history: OHLCV = history, config: RuntimeConfig = candidate.config) -> _Run:
                return _run(config, history.symbol, registry, bank_factory or model_bank, trained)

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


def model_bank(config: RuntimeConfig, symbol: str, trainer_factory: Callable[[], Trainer]) -> ModelBank:
    """The bank of ``config``'s signal models for ``symbol`` alone, trained by ``trainer_factory``'s trainer, with
    no registry, drift watched: what a backtest's bank is, for one symbol."""
    from slsbot_runtime.ml.wiring import backtest_bank, model_specs

    return backtest_bank(config, model_specs(config), (symbol,), trainer_factory)


class RememberingTrainer:
    """Trains in the caller (``InProcessTrainer``), and shares what it trained with the other runs of one check
    through ``trained``. Each job is keyed by the hash of every job this trainer was given up to it (point, each
    candle window's bytes, the models' specs, the reason): a run whose retrains so far are exactly another run's gets
    that run's models, versions included, which are what training them again would give (training is seeded and
    single-threaded); a run whose retrains differ in anything is trained anew."""

    def __init__(self, trained: dict[bytes, list[Outcome]]) -> None:
        from slsbot_runtime.ml.worker import CountingStore, InProcessTrainer

        self.trained = trained
        self._inner = InProcessTrainer(CountingStore())
        self._chain = hashlib.sha256()
        self._done: list[Outcome] | None = None

    @property
    def busy(self) -> bool:
        return False

    def submit(self, job: TrainingJob) -> None:
        self._chain.update(_job_bytes(job))
        key = self._chain.digest()
        done = self.trained.get(key)
        if done is None:
            self._inner.submit(job)
            done = self.trained[key] = self._inner.wait()
        self._done = done

    def poll(self) -> list[Outcome] | None:
        done, self._done = self._done, None
        return done

    def wait(self, on_tick: Callable[[], None] | None = None) -> list[Outcome]:
        done = self.poll()
        assert done is not None, "no job submitted"
        return done

    def close(self) -> None:
        pass


def _job_bytes(job: TrainingJob) -> bytes:
    digest = hashlib.sha256(f"{job.point}|{job.reason}|{job.models!r}".encode())
    for window in job.windows:
        digest.update(window.symbol.encode())
        for column in (window.ts, window.open, window.high, window.low, window.close, window.volume):
            digest.update(np.ascontiguousarray(column).tobytes())
    return digest.digest()


@dataclass(frozen=True, slots=True)
class _Run:
    """One run's decider for one symbol, and the model bank it reads (None without signal models)."""

    decider: Decider
    models: ModelBank | None


def _run(
    config: RuntimeConfig,
    symbol: str,
    registry: ComponentRegistry | None,
    bank_factory: BankFactory,
    trained: dict[bytes, list[Outcome]],
) -> _Run:
    alone = config.model_copy(update={"symbols": [symbol]})
    models = None
    if alone.ml.signal_models:
        models = bank_factory(alone, symbol, lambda: RememberingTrainer(trained))
    chosen = {} if registry is None else {"registry": registry}
    deciders = build_deciders(alone, models=models, **chosen)
    return _Run(deciders[symbol], models)


Decisions = tuple[np.ndarray, np.ndarray]  # direction, confidence after each candle


def _incremental(run: _Run, candles: Sequence[Candle]) -> Decisions:
    decider = run.decider
    direction = np.empty(len(candles))
    confidence = np.empty(len(candles))
    for i, candle in enumerate(candles):
        decision = decider.decide(candle)
        direction[i] = decision.direction
        confidence[i] = decision.confidence
    return direction, confidence


def _vectorized(run: _Run, history: OHLCV) -> Decisions | None:
    """The ensemble's ``decide_batch`` with the feature engine's vectorized values (after the model bank's
    ``run_batch`` over the same history); None without that form."""
    decider = run.decider
    if not isinstance(decider, EnsembleDecider):
        return None
    ensemble = decider.ensemble
    if not hasattr(ensemble, "decide_batch") or not ensemble.supports_batch():
        return None
    from slsbot_runtime.features.engine import FeatureEngine

    if run.models is not None:
        run.models.run_batch([history])
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
