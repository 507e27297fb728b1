"""The anomaly detector: an isolation forest over market-state features that scores every candle.

* ``AnomalySettings.from_spec(model, ...)``: a Strategy's ``ml.models`` entry with ``role: anomaly`` (kind
  ``isolationForest``), checked: ``features`` (empty: the four market-state features of ``monitoring.market_state``;
  else names from those and the feature catalogue), ``lookback`` (rows to fit on), ``retrainEvery`` and ``params``
  (``nEstimators`` 100, ``maxSamples`` 256, ``randomState`` 0, ``baselineWindow`` 168). A bad value is a
  ``ConfigError`` naming ``ml.models[<name>].<field>``.
* ``AnomalyDetector``: the features and one fitted forest. ``fit(rows)``; ``update(candle)`` scores one candle
  from features kept incrementally; ``score_history(history)`` scores a whole history at once (the same numbers
  to 1e-9: features agree live and vectorized to rounding, the forest's arithmetic is the same).
* ``AnomalyMonitor``: one symbol's detector over time. It keeps the last ``lookback`` complete feature rows and
  fits on them as soon as it has them, then again at the first candle of every ``retrainEvery`` period of candle
  time (periods counted from the Unix epoch, so ``24h`` refits at the first candle of each UTC day), and at once
  when drift asks for it. A candle is scored *before* it joins the rows, by the forest fitted on the rows before
  it. The forest's random state is fixed, so the same candles always give the same scores: a replay, a restart
  replaying its candles and a backtest decide alike.

Drift: the monitor is its own model registry for ``ModelDriftTracker`` (``model_drift``): the reference is the
training rows of each feature and the forest's out-of-bag scores of them (series ``output``: each row scored by the
trees not grown on it, since a forest scores its own sample low), and a retrain request refits at the candle that
made it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from slsbot.api.base import parse_duration
from slsbot.api.strategy import MLModel, ModelRole
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.domain.ohlcv import OHLCV
from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.engine import ALL_FEATURES, FeatureEngine
from slsbot_runtime.monitoring import market_state
from slsbot_runtime.monitoring.drift import LIVE_WINDOW, MIN_LIVE
from slsbot_runtime.monitoring.forest import FittedForest, ForestParams, fit_forest, in_bag
from slsbot_runtime.monitoring.model_drift import ModelDrift, ModelDriftTracker, ReferenceSample


class AnomalyParams(BaseModel):
    """``params`` of an isolation-forest anomaly model."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    n_estimators: int = Field(default=100, ge=10, le=1000, description="Trees in the forest.")
    max_samples: int = Field(default=256, ge=16, le=4096, description="Rows each tree is grown on.")
    random_state: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed: the same rows give the same forest.")
    baseline_window: int = Field(
        default=market_state.DEFAULT_WINDOW,
        ge=10,
        le=10_000,
        description="Candles the market-state features compare with.",
    )


@dataclass(frozen=True, slots=True)
class AnomalySettings:
    model: str
    features: tuple[str, ...]
    lookback: int
    retrain_ms: int
    forest: ForestParams
    baseline_window: int
    drift_threshold: float

    @classmethod
    def from_spec(cls, model: MLModel, *, interval_ms: int, drift_threshold: float) -> AnomalySettings:
        """The settings of an anomaly model; ConfigError naming the field when they cannot work."""
        where = f"ml.models[{model.name}]"
        try:
            params = AnomalyParams.model_validate(model.params)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            known = ", ".join(to_camel(name) for name in AnomalyParams.model_fields)
            raise ConfigError(f"{where}.params.{field}: {first['msg']}; the parameters are {known}") from None
        features = tuple(dict.fromkeys(model.features)) or market_state.MARKET_STATE_FEATURES
        catalogue = [name for name in features if name not in market_state.MARKET_STATE_FEATURES]
        unknown = [name for name in catalogue if name not in ALL_FEATURES]
        if unknown:
            FeatureEngine(catalogue, field=f"{where}.features")  # raises, with suggestions
        retrain_ms = int(parse_duration(model.retrain_every).total_seconds() * 1000)
        if retrain_ms < interval_ms:
            raise ConfigError(
                f"{where}.retrainEvery: {model.retrain_every} is shorter than one candle ({interval_ms // 1000}s); "
                "the forest would be fitted again on every candle: use a longer period, e.g. 24h"
            )
        return cls(
            model=model.name,
            features=features,
            lookback=model.lookback,
            retrain_ms=retrain_ms,
            forest=ForestParams(params.n_estimators, params.max_samples, params.random_state),
            baseline_window=params.baseline_window,
            drift_threshold=drift_threshold,
        )


class _LiveRows:
    """The detector's features of one symbol, one candle at a time, as a row in the settings' order."""

    __slots__ = ("_catalogue", "_market", "_names", "_values")

    def __init__(self, settings: AnomalySettings) -> None:
        names = settings.features
        self._names = names
        self._market = (
            market_state.MarketStateLive(settings.baseline_window)
            if any(name in market_state.MARKET_STATE_FEATURES for name in names)
            else None
        )
        catalogue = [name for name in names if name not in market_state.MARKET_STATE_FEATURES]
        self._catalogue = FeatureEngine(catalogue).incremental() if catalogue else None
        self._values: dict[str, float] = {}

    def update(self, candle: Candle) -> list[float]:
        values = self._values
        if self._market is not None:
            self._market.update(candle, values)
        if self._catalogue is not None:
            values.update(self._catalogue.update(candle))
        return [values[name] for name in self._names]


class AnomalyDetector:
    """The detector's features and one fitted forest (see the module doc)."""

    def __init__(self, settings: AnomalySettings) -> None:
        self.settings = settings
        self.forest: FittedForest | None = None
        self._live = _LiveRows(settings)
        catalogue = [name for name in settings.features if name not in market_state.MARKET_STATE_FEATURES]
        self._engine = FeatureEngine(catalogue) if catalogue else None

    @property
    def features(self) -> tuple[str, ...]:
        return self.settings.features

    @property
    def warmup(self) -> int:
        """Candles before the first complete row of features."""
        engine = self._engine.warmup if self._engine is not None else 0
        return max(market_state.warmup(self.settings.baseline_window), engine)

    def feature_matrix(self, history: OHLCV) -> np.ndarray:
        """Every candle's features (rows x features, NaN while warming up), computed over the whole history."""
        values: dict[str, np.ndarray] = {}
        if any(name in market_state.MARKET_STATE_FEATURES for name in self.features):
            values.update(market_state.compute(history, self.settings.baseline_window))
        if self._engine is not None:
            values.update(self._engine.compute(history))
        return np.column_stack([values[name] for name in self.features]).astype(np.float64)

    def fit(self, rows: np.ndarray) -> np.ndarray:
        """Fit the forest on ``rows`` (complete feature rows, rows x features) and score with it from now on;
        returns the rows' out-of-bag scores (``FittedForest.out_of_bag_scores``), the reference of its output."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(self.features) or not np.isfinite(rows).all() or len(rows) < 2:
            raise ValueError(f"fit: expected at least 2 finite rows of {len(self.features)} features, got {rows.shape}")
        self.forest, model = fit_forest(rows, self.settings.forest)
        return self.forest.out_of_bag_scores(rows, in_bag(model, len(rows)))

    def features_of(self, candle: Candle) -> list[float]:
        """The next candle's features, from the incremental state (feed every candle in time order)."""
        return self._live.update(candle)

    def update(self, candle: Candle) -> float | None:
        """Score the next candle; None while its features warm up or before the forest is fitted."""
        row = self._live.update(candle)
        if self.forest is None or not all(math.isfinite(value) for value in row):
            return None
        return self.forest.score(row)

    def score_history(self, history: OHLCV) -> np.ndarray:
        """The score of every candle of ``history`` with the fitted forest, NaN where features warm up."""
        if self.forest is None:
            raise ValueError("score_history: fit the detector first")
        rows = self.feature_matrix(history)
        complete = np.isfinite(rows).all(axis=1)
        scores = np.full(len(rows), np.nan)
        scores[complete] = self.forest.score_many(rows[complete])
        return scores


@dataclass(frozen=True, slots=True)
class AnomalyFigures:
    """What a symbol's monitor shows: its last score and fits, and the detector's drift."""

    symbol: str
    score: float | None
    fits: int
    fitted_ts: int | None  # candle whose rows the forest was last fitted on (the newest of them)
    fit_reason: str | None  # first, schedule, or the drift reason
    drift: ModelDrift | None


class AnomalyMonitor:
    """One symbol's anomaly detector over time: rows, refits and drift (see the module doc)."""

    def __init__(self, symbol: str, settings: AnomalySettings) -> None:
        self.symbol = symbol
        self.settings = settings
        self.detector = AnomalyDetector(settings)
        self.last_score: float | None = None
        self.fits = 0
        self.fit_counts: dict[str, int] = {}  # fits by kind: first, schedule, drift
        self.fitted_ts: int | None = None
        self.fit_reason: str | None = None
        self._rows: deque[list[float]] = deque(maxlen=settings.lookback)
        self._period: int | None = None
        self._reference: ReferenceSample | None = None
        self._retrain_reason: str | None = None
        self.drift = ModelDriftTracker(
            self,
            self,
            threshold=settings.drift_threshold,
            window=min(LIVE_WINDOW, settings.lookback),
            min_live=min(MIN_LIVE, settings.lookback),
        )

    # -- what ModelDriftTracker needs from a model registry -----------------------------------------------------

    def reference(self, model: str) -> ReferenceSample | None:
        return self._reference

    def request_retrain(self, model: str, reason: str) -> None:
        self._retrain_reason = reason

    # -- once per candle ----------------------------------------------------------------------------------------

    def update(self, candle: Candle) -> float | None:
        """Score ``candle`` (None while warming up or before the first fit), then learn from it."""
        detector = self.detector
        row = detector.features_of(candle)
        if not all(math.isfinite(value) for value in row):
            self.last_score = None
            return None
        forest = detector.forest
        score = forest.score(row) if forest is not None else None
        self.last_score = score
        self._rows.append(row)
        self.drift.observe(self.settings.model, dict(zip(self.settings.features, row, strict=True)), score)
        reason = self._fit_due(candle.ts)
        if reason is not None:
            self._fit(candle.ts, reason)
        return score

    def _fit_due(self, ts: int) -> str | None:
        if len(self._rows) < self.settings.lookback:
            return None
        if self.detector.forest is None:
            return "first"
        if self._retrain_reason is not None:
            return self._retrain_reason
        if ts // self.settings.retrain_ms != self._period:
            return "schedule"
        return None

    def _fit(self, ts: int, reason: str) -> None:
        rows = np.asarray(self._rows, dtype=np.float64)
        reference_scores = self.detector.fit(rows)
        self.fits += 1
        kind = reason if reason in ("first", "schedule") else "drift"
        self.fit_counts[kind] = self.fit_counts.get(kind, 0) + 1
        self.fitted_ts, self.fit_reason = ts, reason
        self._period = ts // self.settings.retrain_ms
        self._retrain_reason = None
        self._reference = ReferenceSample(
            version=str(self.fits),
            features={name: rows[:, k] for k, name in enumerate(self.settings.features)},
            output=reference_scores,
        )
        self.drift.refresh(self.settings.model)

    def figures(self, refresh_ks: int = 1) -> AnomalyFigures:
        report = self.drift.report(refresh_ks=refresh_ks)
        return AnomalyFigures(
            symbol=self.symbol,
            score=self.last_score,
            fits=self.fits,
            fitted_ts=self.fitted_ts,
            fit_reason=self.fit_reason,
            drift=report.get(self.settings.model),
        )


def anomaly_model(models: Mapping[str, MLModel] | list[MLModel]) -> MLModel | None:
    """The ``ml.models`` entry with role anomaly, if any (the API allows one at most)."""
    entries = models.values() if isinstance(models, Mapping) else models
    return next((m for m in entries if m.role == ModelRole.ANOMALY), None)
