"""``ModelBank``: a runtime's signal models, shared by its symbols: the candles they train on, the features they
read, the retrain schedule, the current version of each, its state, and its prediction for each symbol.

Two paths give the same answers (``tests/unit/slsbot_runtime/ml/test_bank.py``, and the fast/step parity test):

* ``observe(candle)``, per candle in the loop's order (live, step backtests): buffers the candle, starts a
  retrain when a retrain point is reached (``schedule``), takes in a finished one, updates the features
  incrementally and predicts for that symbol with the models in the vote.
* ``run_batch(histories)``, fast mode: the same incremental features over each whole history (the features a
  model reads are the live ones, bit for bit), the same retrain points and candle windows in the loop's candle
  order, each retrain run in-process, and each version's predictions for the candles it decided, vectorized
  (``predictors``: one row or many, the same bits).

Members (``member.ModelMember``) read ``signal(symbol, name)`` and ``in_vote(name)``, or in fast mode
``signal_arrays(symbol, name)`` and ``vote_mask(symbol, name)``. A model's vote is +1 when it gives "up" a
probability p above 0.5, -1 below, with confidence |2p - 1|; flat while its features are not all defined.

Drift (``monitoring.model_drift``): with a ``drift_threshold``, every prediction of a model (in the vote, or out
of it as drifted) is handed with the features it read to a ``ModelDriftTracker``, which compares a rolling window
of them, pooled over the symbols, with the version's reference: a sample of its training rows and its predictions
on its holdout (``Outcome.reference``, or the registry's ``reference.npz`` for a version loaded at start). When a
series' PSI passes ``ml.driftThreshold`` the model leaves the vote as ``drifted`` and its schedule retrains at the
next candle. A version is judged on the candles from its training point on: the older ones a restart replays only
fill the features' live windows, as they were before the restart. Every completed retrain (early or scheduled)
judges the model in use on the newest candles, so it brings the model back and becomes its reference: the new
version's training rows and holdout predictions when it replaces, the same training rows and the kept model's
predictions on the same holdout when it keeps the old version (after a restart, a version's own reference from the
registry). The drift passing (every series back under the threshold) also brings a drifted model back. Both paths
do this candle by candle in the same order, so fast mode and step mode see the same drift. ``drift_status()`` gives
``/status``'s ``drift`` entries of the models.

Live accuracy (``accuracy.LiveAccuracy``, one per model): each prediction (of a drifted model too) waits with its
candle's close until the candle ``horizon`` candles later of its symbol scores it; the share of the last
``accuracy_window`` scored that came true is the model's live accuracy, from ``accuracy_min_scored`` on, against
its version's holdout accuracy at training (``metrics["accuracy"]``). A version coming into use (a replacing retrain,
or a load from the registry) starts it over, and only its predictions from its training point on count (a restart
replays older candles, on some of which it was trained). Both paths score the same predictions in the same order;
nothing of it changes a vote. ``on_accuracy`` hands the figures to the metrics.

By hand: ``request_retrain(name, reason)`` retrains that model's schedule at the next candle, out of schedule;
``set_drifted(name, reason)`` / ``clear_drifted(name)``; ``drift_reference(name)`` reads the registry's reference.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.engine import FeatureEngine
from slsbot_runtime.ml.accuracy import DEFAULT_MIN_SCORED, DEFAULT_WINDOW, LiveAccuracy
from slsbot_runtime.ml.predictors import CalibratedModel, Predictor, StackedModel
from slsbot_runtime.ml.registry import DriftReference, ModelRegistry
from slsbot_runtime.ml.schedule import RetrainClock, enough_candles, model_state
from slsbot_runtime.ml.training import Incumbent, ModelSpec, Outcome, TrainingJob
from slsbot_runtime.monitoring.drift import LIVE_WINDOW, MIN_LIVE
from slsbot_runtime.monitoring.model_drift import ModelDriftTracker, ReferenceSample

log = logging.getLogger(__name__)
FLAT = (0.0, 0.0)
PROGRESS_EVERY = 512  # candles between two progress reports of run_batch (a retrain may sit between them)


class Trainer(Protocol):
    @property
    def busy(self) -> bool: ...

    def submit(self, job: TrainingJob) -> None: ...

    def poll(self) -> list[Outcome] | None: ...

    def wait(self, on_tick: Callable[[], None] | None = None) -> list[Outcome]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class _Model:
    spec: ModelSpec
    accuracy: LiveAccuracy  # the version in use's live accuracy
    version: int | None = None
    model: Predictor | None = None
    trained_at: int | None = None  # the retrain point of the version in use
    checked: int | None = None  # the last retrain point whose retrain completed (replaced or kept)
    failed: str | None = None  # why the last retrain or load failed
    drifted: str | None = None
    reference: ReferenceSample | None = None  # what drift compares the version in use with
    training: bool = False
    metrics: dict[str, float] = field(default_factory=dict)  # the version in use's holdout scores at its training
    decision: str = ""
    retrains: int = 0
    replaced: int = 0


@dataclass(slots=True)
class _Group:
    """Models on one schedule, retrained together (a stacking model with its inputs)."""

    clock: RetrainClock
    names: list[str]
    history: int  # candles per symbol a retrain reads
    warmup: int
    horizon: int
    lookback: int


class ModelBank:
    def __init__(
        self,
        specs: Sequence[ModelSpec],
        symbols: Sequence[str],
        *,
        trainer_factory: Callable[[], Trainer],
        registry: ModelRegistry | None = None,
        wait_for_training: bool = True,
        on_change: Callable[[str, str, bool], None] | None = None,
        on_retrain: Callable[[str, str, float | None], None] | None = None,
        drift_threshold: float | None = None,
        accuracy_window: int = DEFAULT_WINDOW,
        accuracy_min_scored: int = DEFAULT_MIN_SCORED,
        on_accuracy: Callable[[str, float | None, float | None], None] | None = None,
    ) -> None:
        ordered = [s for s in specs if not s.stacking] + [s for s in specs if s.stacking]
        self.specs = {spec.name: spec for spec in ordered}
        self.symbols = tuple(symbols)
        self.registry = registry
        self.wait_for_training = wait_for_training
        self.on_change = on_change  # (model, new state, in vote): metrics
        self.on_retrain = on_retrain  # (model, result: replaced / kept / failed, holdout log loss): metrics
        self.on_accuracy = on_accuracy  # (model, live accuracy, baseline accuracy) when either changes: metrics
        #: Called about every 0.2 s while a replay waits for a retrain (the loop's heartbeat, so /healthz stays 200).
        self.on_wait: Callable[[], None] | None = None
        self._trainer_factory = trainer_factory
        self._trainer: Trainer | None = None
        self.models = {
            name: _Model(
                spec,
                LiveAccuracy(
                    self.symbols, horizon=spec.horizon, window=accuracy_window, min_scored=accuracy_min_scored
                ),
            )
            for name, spec in self.specs.items()
        }
        self._numbers = dict.fromkeys(self.symbols, 0)  # candles seen per symbol (what the accuracy counts in)
        self.features = tuple(dict.fromkeys(f for s in ordered if not s.stacking for f in s.features))
        self._engine = FeatureEngine(self.features, field="ml.models[].features")
        self._groups = self._make_groups(ordered)
        depth = max(group.history for group in self._groups)
        # one more than a retrain reads: a retrain at a symbol's candle time (asked for by drift on another symbol's
        # candle of the same time) leaves out the candles at that time the buffers already hold
        self._buffers: dict[str, deque[Candle]] = {s: deque(maxlen=depth + 1) for s in self.symbols}
        self._live = {s: self._engine.incremental() for s in self.symbols}
        self._signals: dict[str, dict[str, tuple[float, float]]] = {s: {} for s in self.symbols}
        self._states = {name: ("missing", False) for name in self.models}
        self._now: int | None = None
        self._opened = False
        self._asked: dict[str, str] = {}  # model -> reason for an early retrain
        self._batch: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self._column_cache: dict[tuple[str, ...], np.ndarray] = {}
        self._shown = False
        #: Drift of each model's inputs and output against its version's reference (None: not watched).
        # the live window and the least a version is judged on are candle counts per symbol: pooled over the
        # symbols, 500 values of eight symbols would be 62 hours of one regime, and a slow feature would always drift
        self.drift = (
            None
            if drift_threshold is None
            else ModelDriftTracker(
                self,
                _DriftRetrain(self),
                threshold=drift_threshold,
                window=LIVE_WINDOW * len(self.symbols),
                min_live=MIN_LIVE * len(self.symbols),
            )
        )

    def _make_groups(self, ordered: list[ModelSpec]) -> list[_Group]:
        by_schedule: dict[int, list[ModelSpec]] = {}
        for spec in ordered:
            by_schedule.setdefault(spec.retrain_every_ms, []).append(spec)
        groups = []
        for every, members in by_schedule.items():
            needs = []
            for spec in members:
                inputs = [self.specs[name] for name in spec.inputs]
                needs.append((spec.history_needed(inputs), spec.history_needed(inputs) - spec.lookback))
            groups.append(
                _Group(
                    RetrainClock(every),
                    [spec.name for spec in members],
                    history=max(n for n, _ in needs),
                    warmup=max(w for _, w in needs),
                    horizon=max(spec.horizon for spec in members),
                    lookback=max(spec.lookback for spec in members),
                )
            )
        return groups

    @property
    def history_candles(self) -> int:
        """Candles per symbol a retrain reads (what a live runtime fetches again when it starts)."""
        return max(group.history for group in self._groups)

    # -- the drift checks' handles ----------------------------------------------------------------------------

    def request_retrain(self, name: str, reason: str) -> None:
        """Retrain ``name`` (with the models on its schedule) at the next candle, before its schedule says so."""
        if name not in self.models:
            raise KeyError(f"no model {name}; known: {', '.join(self.models)}")
        self._asked[name] = reason

    def set_drifted(self, name: str, reason: str) -> None:
        """Take ``name`` out of the vote as drifted until ``clear_drifted`` or its next replacing retrain."""
        self.models[name].drifted = reason
        self._refresh_states()

    def clear_drifted(self, name: str) -> None:
        self.models[name].drifted = None
        self._refresh_states()

    def reference(self, model: str) -> ReferenceSample | None:
        """The drift tracker's reference of ``model``: the version in use's (``monitoring.model_drift``)."""
        return self.models[model].reference

    def drift_status(self, refresh_ks: int = 1) -> dict[str, dict[str, Any]]:
        """``/status``'s ``drift`` entries of the models (series pooled over the symbols), bringing the KS test up to
        date for ``refresh_ks`` series (the costly part: one per status publish)."""
        if self.drift is None:
            return {}
        return {name: drift.to_json() for name, drift in self.drift.report(refresh_ks).items()}

    def drift_reference(self, name: str) -> DriftReference | None:
        """The registry's reference data of the version in use (None without a registry or a version)."""
        model = self.models[name]
        if self.registry is None or model.version is None:
            return None
        return self.registry.drift_reference(name, model.version)

    # -- the step path ----------------------------------------------------------------------------------------

    def observe(self, candle: Candle) -> None:
        """One candle of one symbol, in the loop's order; before any member of that symbol is asked."""
        if not self._opened:
            self.open()
        self._collect()
        self._retrain_due(candle.ts, self._retrain_from_buffers)
        symbol = candle.symbol
        self._buffers[symbol].append(candle)
        values = self._live[symbol].update(candle)
        self._now = candle.ts
        self._refresh_states()
        number = self._score(symbol, candle.close)
        vector = np.array([values[name] for name in self.features])
        self._signals[symbol] = self._predict(vector, symbol, number, candle.close)

    def _retrain_due(self, ts: int, retrain: Callable[[_Group, int, str], bool]) -> None:
        """Retrain each schedule whose retrain point ``ts`` reached, or that was asked to retrain (drift). A request
        stays until its retrain starts: made while the previous retrain still runs, it waits for it (nothing is built
        or logged meanwhile); made with too few candles seen (a replay's first weeks), it is served at the first candle
        with enough. One for models that are all pinned is dropped."""
        for group in self._groups:
            point = group.clock.due(ts)
            asked = [name for name in group.names if name in self._asked]
            if point is None and asked:
                if self._trainer is not None and self._trainer.busy:
                    continue  # an early retrain waits for the one that runs
                point = ts
            if point is not None:
                reason = "schedule" if not asked else "asked: " + "; ".join(self._asked[n] for n in asked)
                if retrain(group, point, reason):
                    for name in asked:
                        del self._asked[name]

    def signal(self, symbol: str, name: str) -> tuple[float, float]:
        return self._signals[symbol].get(name, FLAT)

    def in_vote(self, name: str) -> bool:
        return self._states[name][1]

    def _score(self, symbol: str, close: float) -> int:
        """The next candle of ``symbol``: score each model's prediction it decides (live accuracy); its number."""
        number = self._numbers[symbol] = self._numbers[symbol] + 1
        for name, record in self.models.items():
            accuracy = record.accuracy
            if accuracy.candle(symbol, number, close) and self.on_accuracy is not None:
                self.on_accuracy(name, accuracy.value, record.metrics.get("accuracy"))
        return number

    def _predict(self, vector: np.ndarray, symbol: str, number: int, close: float) -> dict[str, tuple[float, float]]:
        """The votes of the models in the vote for candle ``number`` of ``symbol`` from its feature vector; each
        prediction (of a drifted model too, which does not vote) waits for its outcome (live accuracy) and goes to
        the drift tracker with the features it read."""
        signals: dict[str, tuple[float, float]] = {}
        scores: dict[tuple[str, int], float] = {}
        finite = np.isfinite(vector)
        drift = self.drift
        for name, record in self.models.items():
            model = record.model
            in_vote = self._states[name][1]
            if model is None or not (in_vote or (record.drifted is not None and drift is not None)):
                continue
            columns = self._columns_of(model)
            if not finite[columns].all():
                continue
            if isinstance(model, StackedModel):
                inputs = []
                for input_name, version, source in model.inputs:
                    score = scores.get((input_name, version))
                    if score is None:
                        score = float(source.base.score(vector[self._columns_of(source)][None, :])[0])
                    inputs.append(score)
                p = float(model.meta.raw_proba(np.array([inputs]))[0])
            else:
                score_row = model.base.score(vector[columns][None, :])
                scores[(name, record.version or 0)] = float(score_row[0])
                p = float(_calibrated(model, score_row)[0])
            if in_vote:
                signals[name] = vote_of(p)
            # a candle before the version's training point (a restart replays them, its training window among them)
            # is not judged: neither its accuracy (it may have learnt that candle's outcome) nor its drift
            early = record.trained_at is not None and self._now is not None and self._now < record.trained_at
            if not early:
                record.accuracy.predicted(symbol, number, close, p)
            if drift is not None:
                features = model.features
                # an early candle's features fill the live window as they did before the restart
                values = dict(zip(features, vector[columns].tolist(), strict=True))
                drift.observe(name, values, None if early else p, judged=not early)
                if not early and record.drifted is not None and not drift.drifted(name):
                    log.info("model %s: the drift is over, every series is within ml.driftThreshold again", name)
                    record.drifted = None
                    self._refresh_states()
        return signals

    def _columns_of(self, model: Predictor) -> np.ndarray:
        """Where a model's features sit in the bank's feature vector."""
        key = model.features
        found = self._column_cache.get(key)
        if found is None:
            position = {name: j for j, name in enumerate(self.features)}
            found = self._column_cache[key] = np.array([position[f] for f in key], dtype=np.int64)
        return found

    # -- retraining -------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Load each model's pinned or newest approved version from the registry (a restart goes on with it)."""
        self._opened = True
        if self.registry is None:
            self._refresh_states()
            return
        for name, record in self.models.items():
            spec = record.spec
            version = spec.pinned_version or self.registry.newest_approved(name)
            if version is None:
                if spec.pinned_version is not None:
                    record.failed = f"pinned version {spec.pinned_version} is not in the registry"
                continue
            try:
                record.model = self.registry.load(name, version)
                info = self.registry.info(name, version)
            except Exception as error:
                record.failed = f"could not load version {version}: {type(error).__name__}: {error}"[:300]
                continue
            record.version = version
            record.reference = self._registry_reference(name, version)
            record.trained_at = record.checked = int(info["point_ms"])
            record.metrics = {k: v for k, v in info.get("metrics", {}).items() if isinstance(v, int | float)}
            record.decision = f"loaded from the registry: {info.get('decision', '')}"
            self._new_version(name, record)
            if self.drift is not None and self._retrained_for_drift(name):
                self.drift.mark_acted(name)  # its drift, if it lasts, is the one that retrain was asked for
        for group in self._groups:
            points = [self.models[n].trained_at for n in group.names if self.models[n].trained_at is not None]
            if points:
                group.clock.last_point = max(points)
        self._refresh_states()

    def _retrained_for_drift(self, name: str) -> bool:
        """Whether the model's newest retrain in the registry (approved or not) was one its own drift asked for."""
        assert self.registry is not None
        versions = self.registry.versions(name)
        try:
            reason = str(self.registry.info(name, versions[-1]).get("reason") or "") if versions else ""
        except (OSError, ValueError):
            return False
        return f"drift: model {name}," in reason

    def _registry_reference(self, name: str, version: int) -> ReferenceSample | None:
        if self.drift is None or self.registry is None:
            return None
        try:
            found = self.registry.drift_reference(name, version)
        except Exception as error:  # an older version without one: its drift is not watched until a retrain
            log.warning(
                "model %s v%d: no drift reference (%s); drift is watched from its next version", name, version, error
            )
            return None
        info = self.registry.info(name, version)
        return _reference(name, int(info["point_ms"]), found.features, found.train_features, found.holdout_predictions)

    def _retrain_from_buffers(self, group: _Group, point: int, reason: str) -> bool:
        """The step path's retrain: on the candles the buffers hold before ``point``. The windows are built only when
        the buffers' lengths (what the windows would hold at most) are enough: a request waiting for candles is asked
        again at every candle, and building the windows costs milliseconds."""
        most = [min(len(self._buffers[symbol]), group.history) for symbol in self.symbols]
        if not enough_candles(most, warmup=group.warmup, horizon=group.horizon, lookback=group.lookback):
            return False  # what _retrain would answer for the windows
        windows = _windows(self._buffers, self.symbols, point, group.history)
        return self._retrain(group, point, reason, windows, wait=self.wait_for_training)

    def _retrain(self, group: _Group, point: int, reason: str, windows: tuple[OHLCV, ...], *, wait: bool) -> bool:
        """Retrain ``group``'s unpinned models at ``point`` on ``windows`` (one per symbol), if they hold enough
        candles and no retrain still runs; with ``wait``, take in the outcome before returning. True when it started, or
        never can (every model pinned); False when not now (too few candles, the previous retrain still runs): a
        request for it waits."""
        names = [n for n in group.names if self.models[n].spec.pinned_version is None]
        if not names:
            return True
        counts = [len(w) for w in windows]
        if not enough_candles(counts, warmup=group.warmup, horizon=group.horizon, lookback=group.lookback):
            return False
        trainer = self.trainer
        if trainer.busy:
            log.info("models %s: the previous retrain still runs, skipping the one at %s", names, _iso(point))
            return False
        incumbents = {
            n: Incumbent(self.models[n].version or 0, self.models[n].model)  # type: ignore[arg-type]
            for n in names
            if self.models[n].model is not None
        }
        job = TrainingJob(point, windows, tuple(self.specs[n] for n in names), incumbents, reason)
        for name in names:
            self.models[name].training = True
        trainer.submit(job)
        if wait:
            self._apply(trainer.wait(self.on_wait))
        return True

    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            self._trainer = self._trainer_factory()
        return self._trainer

    def _collect(self) -> None:
        if self._trainer is not None and self._trainer.busy:
            done = self._trainer.poll()
            if done is not None:
                self._apply(done)

    def _apply(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            record = self.models[outcome.name]
            record.training = False
            record.retrains += 1
            if self.on_retrain is not None:
                result = "failed" if not outcome.ok else ("replaced" if outcome.replaces else "kept")
                self.on_retrain(outcome.name, result, outcome.metrics.get("log_loss") if outcome.ok else None)
            if not outcome.ok:
                record.failed = outcome.error
                record.decision = f"retrain at {_iso(outcome.point)} failed: {outcome.error}"
                log.warning("model %s: %s", outcome.name, record.decision)
                continue
            record.failed = None
            record.checked = outcome.point
            record.decision = outcome.decision
            if outcome.replaces:
                record.model, record.version = outcome.model, outcome.version
                record.trained_at, record.metrics = outcome.point, dict(outcome.metrics)
                record.drifted = None
                record.replaced += 1
                self._new_version(outcome.name, record)

            if self.drift is not None and outcome.reference:
                # the model in use was just judged on the newest candles: drift is measured from this window now
                predictions = outcome.reference.get("holdout_proba" if outcome.replaces else "incumbent_holdout_proba")
                if predictions is not None:
                    record.reference = _reference(
                        outcome.name, outcome.point, outcome.features, outcome.reference["train_features"], predictions
                    )
                    record.drifted = None
            log.info("model %s v%s at %s: %s", outcome.name, outcome.version, _iso(outcome.point), outcome.decision)
        self._refresh_states()

    def _new_version(self, name: str, record: _Model) -> None:
        """A version came into use: its live accuracy starts from nothing, its baseline is its own holdout's."""
        record.accuracy.reset()
        if self.on_accuracy is not None:
            self.on_accuracy(name, None, record.metrics.get("accuracy"))

    def _refresh_states(self) -> None:
        for name, record in self.models.items():
            state = model_state(
                has_model=record.model is not None,
                training=record.training,
                failed=record.failed is not None,
                drifted=record.drifted is not None,
                pinned=record.spec.pinned_version is not None,
                now_ms=self._now,
                checked_ms=record.checked,
                stale_after_ms=record.spec.stale_after_ms,
            )
            old = self._states[name]
            if state != old or not self._shown:
                self._states[name] = (state.state, state.in_vote)
                if state.state != old[0] and {state.state, old[0]} != {"training", "ready"}:
                    log.info(
                        "model %s: %s (%s)", name, state.state, "in the vote" if state.in_vote else "out of the vote"
                    )
                if self.on_change is not None:
                    self.on_change(name, state.state, state.in_vote)
        self._shown = True

    # -- status -----------------------------------------------------------------------------------------------

    def status(self) -> dict[str, dict[str, Any]]:
        """``/status``'s ``models``: per model its version, trained_at, state, in_vote, holdout log loss, and its live
        accuracy (None below the minimum), the version's holdout accuracy and the scored predictions behind it."""
        out = {}
        for name, record in self.models.items():
            state, in_vote = self._states[name]
            accuracy = record.accuracy
            out[name] = {
                "version": record.version,
                "trained_at": None if record.trained_at is None else _iso(record.trained_at),
                "state": state,
                "in_vote": in_vote,
                "metric": {"log_loss": record.metrics.get("log_loss")},
                "accuracy": accuracy.value,
                "baseline_accuracy": record.metrics.get("accuracy"),
                "accuracy_scored": accuracy.scored,
                "retrains": record.retrains,
                "replaced": record.replaced,
                "decision": record.decision,
                "reason": record.failed or record.drifted,
            }
        return out

    def out_of_vote(self) -> list[str]:
        return [name for name, (_, in_vote) in self._states.items() if not in_vote]

    def close(self) -> None:
        if self._trainer is not None:
            self._trainer.close()
            self._trainer = None

    # -- the fast path ----------------------------------------------------------------------------------------

    def run_batch(self, histories: Sequence[OHLCV], progress: Callable[[int, int], None] | None = None) -> None:
        """Every symbol's signals and votes over ``histories`` at once, as ``observe`` gives them candle by candle in
        the loop's order (open time, then symbol order): the same retrain points (run in-process), the same
        incremental features, the same one-row predictions and the same drift checks, so the same bits."""
        self.open()
        by_symbol = {h.symbol: h for h in histories}
        histories = [by_symbol[s] for s in self.symbols if s in by_symbol]
        rows = [self._feature_rows(h) for h in histories]
        ts = np.concatenate([h.ts for h in histories]).astype(np.int64)
        which = np.concatenate([np.full(len(h), k, dtype=np.int64) for k, h in enumerate(histories)])
        index = np.concatenate([np.arange(len(h)) for h in histories])
        order = np.argsort(ts, kind="stable")
        names = list(self.models)
        out = {
            name: [(np.zeros(len(h)), np.zeros(len(h)), np.zeros(len(h), dtype=bool)) for h in histories]
            for name in names
        }
        states = self._states

        def retrain(group: _Group, point: int, reason: str) -> bool:
            windows = tuple(_history_window(h, point, group.history) for h in histories)
            return self._retrain_batch(group, point, windows, reason)

        total = len(order)
        for done, position in enumerate(order.tolist()):
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, total)  # how far through the candles, retrains included
            k, i, candle_ts = int(which[position]), int(index[position]), int(ts[position])
            self._retrain_due(candle_ts, retrain)
            self._now = candle_ts
            self._refresh_states()
            symbol = histories[k].symbol
            close = float(histories[k].close[i])
            signals = self._predict(rows[k][i], symbol, self._score(symbol, close), close)
            for name in names:
                direction, confidence, mask = out[name][k]
                mask[i] = states[name][1] and self.models[name].model is not None
                vote = signals.get(name)
                if vote is not None:
                    direction[i], confidence[i] = vote
        self._batch = {history.symbol: {name: out[name][k] for name in names} for k, history in enumerate(histories)}

    def _retrain_batch(self, group: _Group, point: int, windows: tuple[OHLCV, ...], reason: str) -> bool:
        """The fast path's retrain: on the histories' candles before ``point``, always waited for."""
        return self._retrain(group, point, reason, windows, wait=True)

    def _feature_rows(self, history: OHLCV) -> np.ndarray:
        """The live engine's values over the whole history, one row per candle (what ``observe`` feeds the models)."""
        engine = self._engine.incremental()
        rows = np.empty((len(history), len(self.features)))
        names = self.features
        for i in range(len(history)):
            values = engine.update(history.candle(i))
            rows[i] = [values[name] for name in names]
        return rows

    def signal_arrays(self, symbol: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        direction, confidence, _ = self._batch[symbol][name]
        return direction, confidence

    def vote_mask(self, symbol: str, name: str) -> np.ndarray:
        return self._batch[symbol][name][2]

    def has_batch(self, symbol: str) -> bool:
        return symbol in self._batch


def vote_of(p: float) -> tuple[float, float]:
    """A model's vote for a probability of "up": the side it favours and |2p - 1|."""
    if p > 0.5:
        return 1.0, 2.0 * p - 1.0
    if p < 0.5:
        return -1.0, 1.0 - 2.0 * p
    return FLAT


def _calibrated(model: CalibratedModel, scores: np.ndarray) -> np.ndarray:
    p = model.calibrator(scores)
    return np.where((p > 1.0) & (p <= 1.0 + 1e-5), 1.0, p)


def _windows(buffers: dict[str, deque[Candle]], symbols: tuple[str, ...], point: int, depth: int) -> tuple[OHLCV, ...]:
    windows = []
    for symbol in symbols:
        candles = [c for c in buffers[symbol] if c.ts < point][-depth:]
        windows.append(
            OHLCV(
                symbol,
                np.array([c.ts for c in candles], dtype=np.int64),
                *(
                    np.array([getattr(c, f) for c in candles], dtype=np.float64)
                    for f in ("open", "high", "low", "close", "volume")
                ),
            )
        )
    return tuple(windows)


def _history_window(history: OHLCV, point: int, depth: int) -> OHLCV:
    end = int(np.searchsorted(history.ts, point, side="left"))
    window = history.slice(max(0, end - depth), end)
    return OHLCV(
        window.symbol,
        *(np.array(a) for a in (window.ts, window.open, window.high, window.low, window.close, window.volume)),
    )


class _DriftRetrain:
    """The drift tracker's retrain requests: the model leaves the vote as drifted and retrains at the next candle."""

    def __init__(self, bank: ModelBank) -> None:
        self.bank = bank

    def request_retrain(self, model: str, reason: str) -> None:
        log.warning("model %s: %s; out of the vote, retraining at the next candle", model, reason)
        self.bank.set_drifted(model, reason)
        self.bank.request_retrain(model, reason)


def _reference(
    name: str, point: int, features: Sequence[str], train_features: np.ndarray, predictions: np.ndarray
) -> ReferenceSample:
    """A version's drift reference: each feature's training values, and its predictions on its holdout."""
    train = np.asarray(train_features, dtype=np.float64)
    return ReferenceSample(
        version=f"{name}@{_iso(point)}",
        features={feature: train[:, j] for j, feature in enumerate(features)},
        output=np.asarray(predictions, dtype=np.float64),
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
